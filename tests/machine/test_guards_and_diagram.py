"""Guards on real facts (the point of no return, the dsregcmd display bug, deadlines) and the diagram."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from migrator.cli import app
from migrator.facts import (
    DcFacts,
    DeviceFacts,
    HelloState,
    OsFacts,
    PathSettings,
    TpmFacts,
    UserFacts,
    evaluate_policy,
    path,
)
from migrator.machine.context import DeviceContext, UserContext
from migrator.machine.guards import GuardInput, check, has_dsregcmd_display_bug
from migrator.machine.plan import policy_plan
from migrator.machine.table import device_rows, user_rows
from migrator.playbook import load_playbook
from migrator.store import AuditEntry, Store, content_hash

NOW = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
SID = "S-1-5-21-1-2-3-1104"
BOOK = load_playbook("cert-trust-to-cloud-kerberos")


def _facts(
    *,
    cloud: bool = True,
    cert_elsewhere: bool = False,
    dc: bool | None = True,
    build: int = 22631,
    ubr: int = 4602,
    tpm: TpmFacts | None = None,
) -> DeviceFacts:
    values = (
        {"Enabled": 1, "UseCloudTrustForOnPremAuth": 1} if cloud else {"Enabled": 1, "UseCertificateForOnPremAuth": 1}
    )
    users = {SID: {"UseCertificateForOnPremAuth": 1}} if cert_elsewhere else {}
    return DeviceFacts(
        name="PC-1",
        join_type="hybrid",
        os=OsFacts(build=build, ubr=ubr),
        policy=evaluate_policy(values, {}, [], user_sids=[])
        if not users
        else evaluate_policy(values, users, [], user_sids=[]),
        users=(UserFacts(sid=SID, name="CORP\\a", has_hello=True, signed_in=True),),
        dc=DcFacts(checked=dc is not None, reachable=dc),
        tpm=tpm or TpmFacts(present=True, ready=True),
    )


def _input(facts: DeviceFacts, *, fresh: bool = True, hello: HelloState | None = None, **context: Any) -> GuardInput:
    return GuardInput(BOOK, NOW, facts, fresh, None, DeviceContext(), UserContext(sid=SID, **context), (), hello, True)


def test_point_of_no_return_guards_read_fresh_facts_only() -> None:
    """Policy, DC and container guards hold on fresh facts and fail on the same facts from an earlier visit."""
    good = _input(_facts(), key_id="{A}")
    for guard in (
        "policy_is_cloud",
        "no_cert_trust_any_source",
        "user_policy_is_cloud",
        "dc_line_of_sight",
        "security_device_ok",
        "container_unchanged",
    ):
        assert check(guard, good), guard
        assert not check(guard, _input(_facts(), fresh=False, key_id="{A}")), guard


def test_a_certificate_policy_anywhere_blocks_the_delete() -> None:
    """UseCertificateForOnPremAuth in a user's GPO hive (ignored for the device) still fails the guard."""
    assert not check("no_cert_trust_any_source", _input(_facts(cert_elsewhere=True)))
    assert not check("policy_is_cloud", _input(_facts(cloud=False)))
    assert not check("dc_line_of_sight", _input(_facts(dc=False)))
    assert not check("dc_line_of_sight", _input(_facts(dc=None)))
    assert not check("container_unchanged", _input(_facts()))  # no key id recorded


def test_no_delete_without_a_tpm_known_usable_where_one_is_required() -> None:
    """RequireSecurityDevice from the playbook (or the device) needs a TPM read as usable: absent, not ready and
    unknown (Get-Tpm failed) all refuse the point of no return; a playbook that allows software keys does not care.
    The path decision parks a device with no usable TPM as ineligible before anything changes."""
    absent = TpmFacts(present=False, ready=False)
    unready = TpmFacts(present=True, ready=False)
    unknown = TpmFacts(error="Access denied.")
    assert BOOK.policy.require_security_device
    for tpm in (absent, unready, unknown):
        assert not check("security_device_ok", _input(_facts(tpm=tpm), key_id="{A}")), tpm
    soft = BOOK.model_copy(update={"policy": BOOK.policy.model_copy(update={"require_security_device": False})})
    known = UserContext(sid=SID, key_id="{A}")
    relaxed = GuardInput(soft, NOW, _facts(tpm=unknown), True, None, DeviceContext(), known, (), None, True)
    assert check("security_device_ok", relaxed)
    device_requires = _facts(tpm=unknown).model_copy(
        update={
            "policy": evaluate_policy(
                {"Enabled": 1, "UseCloudTrustForOnPremAuth": 1, "RequireSecurityDevice": 1}, {}, [], user_sids=[]
            )
        }
    )
    strict_device = GuardInput(soft, NOW, device_requires, True, None, DeviceContext(), known, (), None, True)
    assert not check("security_device_ok", strict_device)
    wants_tpm = PathSettings(require_security_device=True)
    no_tpm = _facts(tpm=absent)
    assert path(no_tpm).path == "cloud"  # the device itself does not require one yet
    decision = path(no_tpm, wants_tpm)
    assert decision.path == "ineligible" and any("no usable TPM" in r for r in decision.reasons)
    unsure = path(_facts(tpm=unknown), wants_tpm)
    assert unsure.path == "cloud" and any("TPM state unknown" in r for r in unsure.reasons)


def test_cloud_tgt_verification_knows_the_dsregcmd_display_bug() -> None:
    """On 19044 UBR 2130-2485 dsregcmd's OnPremTgt is ignored and klist cloud_debug decides; elsewhere dsregcmd."""
    assert has_dsregcmd_display_bug(19044, 2130) and has_dsregcmd_display_bug(19043, 2485)
    assert not has_dsregcmd_display_bug(19044, 2486) and not has_dsregcmd_display_bug(19045, 2200)
    bug = _facts(build=19044, ubr=2300)
    said_no = HelloState(
        status="completed", user=SID, ngc_set=True, ngc_key_id="{B}", on_prem_tgt=False, cloud_primary_tgt=True
    )
    assert check("cloud_tgt_verified", _input(bug, hello=said_no, key_id="{A}", deleted=True))
    assert not check("cloud_tgt_verified", _input(_facts(), hello=said_no, key_id="{A}", deleted=True))
    old_key = said_no.model_copy(update={"ngc_key_id": "{a}", "on_prem_tgt": True})
    assert not check("cloud_tgt_verified", _input(_facts(), hello=old_key, key_id="{A}", deleted=True))


def test_deadlines_come_from_the_phase_start() -> None:
    """A waiting phase is past its deadline only once since + deadline_seconds has passed."""
    since = NOW - timedelta(days=7, seconds=1)
    assert check("deadline_passed", _input(_facts(), since=since, deadline_seconds=7 * 86400))
    assert not check("deadline_passed", _input(_facts(), since=NOW, deadline_seconds=7 * 86400))


def test_diagram_command_draws_every_row_of_the_playbook() -> None:
    """migrator diagram prints mermaid (default) and dot with an edge per row; the point of no return shows."""
    runner = CliRunner()
    mermaid = runner.invoke(app, ["diagram", "--playbook", "cert-trust-to-cloud-kerberos"])
    assert mermaid.exit_code == 0 and "stateDiagram-v2" in mermaid.output
    assert "point of no return" in mermaid.output
    notes = [line for line in mermaid.output.splitlines() if "note right of" in line]
    for row in [*device_rows(BOOK), *user_rows(BOOK)]:
        # Each row is an edge, or (a row many states share) named in its machine's note.
        assert f": {row.trigger}" in mermaid.output or any(row.trigger in note for note in notes), row.trigger
    dot = runner.invoke(app, ["diagram", "--format", "dot"])
    assert dot.exit_code == 0 and dot.output.count("digraph") == 2
    assert runner.invoke(app, ["diagram", "--format", "svg"]).exit_code == 2


def test_audit_verify_names_a_tampered_entry(tmp_path: Path) -> None:
    """Exit 0 on an intact chain; after an edit behind the store's back, exit 1 naming the entry."""
    with Store.open(tmp_path) as store:
        store.create_wave("w", playbook_name="p", playbook_hash=content_hash("p"), change_ticket="CHG-1")
        store.enroll("w", ["PC-1"])
        for n in range(3):
            store.append_audit(AuditEntry("CORP\\admin", f"step {n}", device="PC-1", after={"n": n}))
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify", "--state", str(tmp_path)])
    assert ok.exit_code == 0 and "intact: 3 entries" in ok.output
    db = sqlite3.connect(tmp_path / "migrator.db")
    db.executescript("DROP TRIGGER audit_no_update; UPDATE audit SET action = 'nothing to see' WHERE id = 2;")
    db.close()
    bad = runner.invoke(app, ["audit", "verify", "--state", str(tmp_path)])
    assert bad.exit_code == 1 and "entry 2" in bad.output and "TAMPERED" in bad.output
    assert runner.invoke(app, ["audit", "verify", "--state", str(tmp_path / "none")]).exit_code == 2


def test_policy_value_names_are_read_without_regard_to_case() -> None:
    """The registry does not care about case: a hand-written usecertificateforonpremauth is certificate trust,
    blocks the point of no return, and the plan removes it (and writes cloud trust once, not twice)."""
    policy = evaluate_policy({"enabled": 1, "usecertificateforonpremauth": 1, "USECLOUDTRUSTFORONPREMAUTH": 1}, {}, [])
    assert policy.effective == "cert" and policy.cert_trust_any_source
    facts = _facts().model_copy(update={"policy": policy})
    assert not check("no_cert_trust_any_source", _input(facts))
    plan = policy_plan(facts, BOOK)
    assert [(p.name, p.remove) for p in plan] == [
        ("UseCertificateForOnPremAuth", True),
        ("RequireSecurityDevice", False),
    ]
