"""The HTML report: self-contained, every section present, every hostile value escaped."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from typer.testing import CliRunner

from migrator.cli import app
from migrator.report import collect_report, render_html
from migrator.report.model import iso
from migrator.store import AuditEntry, AuditHead
from tests.report.conftest import HOSTILE_DEVICE, HOSTILE_ERROR, HOSTILE_USER, PASSKEY_WARNING, TRACEBACK, Fleet

runner = CliRunner()
SECTIONS = ("waves", "counts", "attention", "failures", "rollback", "entra-keys", "timelines", "audit", "diagram")


class _Document(HTMLParser):
    """Collects the tags, attributes and text of a document, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []
        self.text: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += attrs
        self.ids |= {value for name, value in attrs if name == "id" and value}

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(document: str) -> _Document:
    parsed = _Document()
    parsed.feed(document)
    parsed.close()
    return parsed


def _html(fleet: Fleet) -> str:
    return render_html(collect_report(fleet.store, now=fleet.clock))


def test_every_section_is_there(fleet: Fleet) -> None:
    """Waves, counts, attention, failures, rollback, Entra keys, timelines, audit and diagram each have a section."""
    parsed = _parse(_html(fleet))
    assert set(SECTIONS) <= parsed.ids
    assert "section" in parsed.tags and "details" in parsed.tags and "svg" in parsed.tags


def test_hostile_names_are_text_never_markup(fleet: Fleet) -> None:
    """A device named <script>alert(1)</script>, a user named like an img tag and a hostile event reach the page
    as text: no script or img element exists, and the raw names are in the text a browser shows."""
    document = _html(fleet)
    assert "<script" not in document.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in document
    parsed = _parse(document)
    assert "script" not in parsed.tags and "img" not in parsed.tags and "i" not in parsed.tags
    assert not any(name.startswith("on") for name, _ in parsed.attributes)
    text = "".join(parsed.text)
    assert HOSTILE_DEVICE in text and HOSTILE_USER in text and HOSTILE_ERROR in text
    assert "<b>k</b>" in text  # the hostile key id is shown as typed


def test_the_file_needs_no_server_and_runs_no_script(fleet: Fleet) -> None:
    """Inline CSS only, no external reference, a CSP that forbids scripts and remote loads."""
    document = _html(fleet)
    assert "default-src 'none'" in document
    parsed = _parse(document)
    assert "link" not in parsed.tags and "script" not in parsed.tags and "iframe" not in parsed.tags
    for name, value in parsed.attributes:
        if name in ("href", "src"):
            assert value is not None and value.startswith("#"), (name, value)
    assert not re.search(r"url\((?!#)", document)  # no CSS fetch (marker references are in-document)


def test_wave_summary_shows_ticket_playbook_hash_times_and_approvals(fleet: Fleet) -> None:
    """The summary names ticket, playbook and its hash, state, start, and the recorded approval."""
    document = _html(fleet)
    pilot = fleet.store.get_wave("pilot")
    for text in ("CHG0042", "to-cloud-kerberos", pilot.playbook_hash, "running", "halted"):
        assert text in document
    assert "change.manager@contoso (wave.approve)" in document
    first = min(t.at for t in fleet.store.export_wave_transitions("pilot"))
    assert f"<td>{iso(first)}</td>" in document  # started: the pilot's first transition


def test_failures_list_devices_with_reasons(fleet: Fleet) -> None:
    """Failed devices appear with their reason and time of failure."""
    text = "".join(_parse(_html(fleet)).text)
    assert "confirm_policy: certificate trust policy from GPO wins over cloud trust" in text
    assert HOSTILE_ERROR in text


def test_deleted_containers_leave_keys_in_entra_and_passkeys_are_warned(fleet: Fleet) -> None:
    """Each container migrator deleted is listed with the Entra ID key note: device, wave, user, SID, NgcKeyId,
    when, and the warning recorded with the delete (bob's, on Windows 11: passkeys); erin's delete recorded no
    warning: 'not recorded'. Carol's container was found already gone, alice's kept: neither is listed."""
    document = _html(fleet)
    section = document[document.index('id="entra-keys"') : document.index('id="timelines"')]
    assert "the old Hello key stays registered in Entra ID" in section
    assert "until an admin removes it" in section
    assert "carol" not in section and "alice" not in section
    rows = {row.split("</td>")[2]: row for row in section.split("<tr>")[2:]}
    assert set(rows) == {"<td>CONTOSO\\bob", "<td>CONTOSO\\erin"}
    bob = rows["<td>CONTOSO\\bob"]
    for text in ("PC-CERT-02", "pilot", "S-1-5-21-1-1002", "k-bob", "2025-03-03T", f"WARNING: {PASSKEY_WARNING}"):
        assert text in bob
    erin = rows["<td>CONTOSO\\erin"]
    assert "PC-RB-06" in erin and "k-rin" in erin and "not recorded" in erin and "WARNING" not in erin
    assert "not attempted" in bob and "0 removed, 2 left in Entra ID" in section  # no cleanup was run


def test_rollback_shows_what_was_restored_and_what_could_not_be(fleet: Fleet) -> None:
    """The rolled-back device lists the restored policy values with the restore step's actions and says erin's
    deleted container cannot be restored."""
    document = _html(fleet)
    section = document[document.index('id="rollback"') : document.index('id="entra-keys"')]
    assert "PC-RB-06" in section and "UseCertificateForOnPremAuth" in section
    assert "1 (DWord)" in section and "absent (the value is removed)" in section
    assert "<td>set</td>" in section and "<td>removed</td>" in section
    assert "Not restorable: the Hello container of CONTOSO\\erin was deleted" in section
    assert "re-provisions under the restored policy" in section


def _device_block(document: str, device: str) -> str:
    block = document[document.index(f"<summary>{device}") :]
    return block[: block.index("</details>")]


def test_timelines_hold_transitions_and_journal(fleet: Fleet) -> None:
    """A device's timeline lists its transitions (device and user) and journal entries with their status; the
    users table says whose container was deleted, and when."""
    block = _device_block(_html(fleet), "PC-CERT-02")
    assert "pending → preflight" in block
    assert "journal delete_hello_container (attempt 1)" in block and "done" in block
    assert "user CONTOSO\\bob: deleting → prompted" in block and "container_deleted" in block
    assert "user CONTOSO\\bob: verifying → migrated" in block
    bob = block[block.index("<td>CONTOSO\\bob</td>") :]
    assert bob[: bob.index("</tr>")].count("2025-03-03T") == 1  # the deletion time in "container deleted"


def test_device_pages_show_the_traceback_of_an_error_and_since_when_a_device_is_silent(fleet: Fleet) -> None:
    """An error device's page is open and shows the traceback; a device that does not answer says since when."""
    document = _html(fleet)
    assert "<details open><summary>PC-BUG-09" in document
    bug = _device_block(document, "PC-BUG-09")
    assert "<pre>" in bug and "KeyError: &#x27;session&#x27;" in bug and "Traceback (most recent call last)" in bug
    assert TRACEBACK.splitlines()[0] in "".join(_parse(bug).text)
    assert "No answer since 2025-03-10T" in _device_block(document, "PC-DOWN-07")
    assert "No answer since" not in _device_block(document, "PC-WAIT-05")


def test_attention_lists_error_and_silent_devices_with_their_reasons(fleet: Fleet) -> None:
    """Needs attention: the error summary and that resume retries it; since when a silent device has not
    answered."""
    document = _html(fleet)
    section = document[document.index('id="attention"') : document.index('id="failures"')]
    assert (
        "internal error: KeyError: &#x27;session&#x27;; `migrator resume` retries it once the cause is fixed" in section
    )
    assert "no answer since 2025-03-10T" in section and "Traceback" not in section


def test_audit_verification_and_head_hash_are_shown(fleet: Fleet) -> None:
    """The audit section says the chain verifies and shows the head the store computes, as the anchor line
    `audit verify --anchor` takes."""
    document = _html(fleet)
    head = fleet.store.verify_audit().head
    section = document[document.index('id="audit"') : document.index('id="diagram"')]
    assert "verifies" in section and head.hash in section and head.anchor in section
    assert AuditHead.find_all(document)[-1] == head


def test_a_tampered_audit_log_is_reported(fleet: Fleet) -> None:
    """An audit row edited behind the store's back makes the report say the chain does NOT verify."""
    fleet.store.append_audit(AuditEntry(actor="a", action="b"))
    with fleet.store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_no_update")
        conn.exec_driver_sql("UPDATE audit SET actor = 'mallory' WHERE id = 1")
    document = _html(fleet)
    assert "does NOT verify" in document and "hash mismatch" in document


def test_diagram_is_the_machines_table(fleet: Fleet) -> None:
    """The diagram is drawn from the machine's transition table (every row for a report of every wave), as
    mermaid and SVG, device and user machines."""
    document = _html(fleet)
    section = document[document.index('id="diagram"') :]
    assert "Drawn from the state machine&#x27;s transition table (every legal transition)" in section
    assert "stateDiagram-v2" in section and "rolling_back --&gt; rolled_back : restored" in section
    assert "<svg" in section and "marker-end" in section and "user machine" in section


def test_empty_store_renders_every_section_with_none(empty_store: Fleet) -> None:
    """A store without waves still renders a complete page that says there is nothing yet."""
    document = render_html(collect_report(empty_store.store))
    parsed = _parse(document)
    assert set(SECTIONS) <= parsed.ids
    assert "No wave is recorded in this store." in document
    assert "No device is enrolled." in document
    assert "verifies" in document


def test_cli_writes_the_html_file(fleet: Fleet, tmp_path: Path) -> None:
    """`migrator report --format html --out F` writes the file and says where."""
    out = tmp_path / "reports" / "pilot.html"
    result = runner.invoke(
        app, ["report", "--state", str(fleet.state_dir), "--format", "html", "--wave", "pilot", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    document = out.read_text(encoding="utf-8")
    assert document.startswith("<!DOCTYPE html>") and "PC-CERT-02" in document
    assert "PC-RB-06" not in document  # another wave
    assert str(out) in result.stderr
    assert [p.name for p in out.parent.iterdir()] == ["pilot.html"]  # no temporary file left behind
