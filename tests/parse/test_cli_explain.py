"""Tests of ``migrator explain dsregcmd|klist|nltest`` through Typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from migrator.cli import app
from tests.parse._samples import sample_path

runner = CliRunner()

DSREG_KEYS = {
    "azure_ad_joined",
    "domain_joined",
    "join_type",
    "device_id",
    "tenant_id",
    "tenant_name",
    "ngc_set",
    "ngc_key_id",
    "azure_ad_prt",
    "on_prem_tgt",
    "cloud_tgt",
    "kerb_top_level_names",
    "prerequisites",
    "unknown_fields",
    "verdict",
    "reasons",
}


def test_dsregcmd_json_contract() -> None:
    """``--json`` prints exactly the contract keys with booleans and the verdict."""
    path = sample_path("dsregcmd_hybrid_certtrust_willnotprovision_qa591928.txt")
    result = runner.invoke(app, ["explain", "dsregcmd", str(path), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert set(document) == DSREG_KEYS
    assert document["azure_ad_joined"] is True
    assert document["domain_joined"] is True
    assert document["join_type"] == "hybrid"
    assert document["ngc_set"] is False
    assert document["azure_ad_prt"] is True
    assert document["on_prem_tgt"] is None
    assert document["prerequisites"]["CertEnrollment"] == "enrollment authority"
    assert document["prerequisites"]["SessionIsNotRemote"] is True
    assert document["unknown_fields"] == {}
    assert document["verdict"] == "no-hello-container"
    assert all(isinstance(reason, str) for reason in document["reasons"])


def test_dsregcmd_json_from_utf16_file(tmp_path: Path) -> None:
    """A UTF-16 capture (PowerShell 5.1 redirection) is read transparently."""
    text = sample_path("dsregcmd_msdocs_user_state.txt").read_text(encoding="utf-8")
    target = tmp_path / "status.txt"
    target.write_bytes(text.replace("\n", "\r\n").encode("utf-16"))
    result = runner.invoke(app, ["explain", "dsregcmd", str(target), "--json"])
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["ngc_set"] is True
    assert document["ngc_key_id"] == "{FA0DB076-A5D7-4844-82D8-50A2FB42EC7B}"
    assert document["verdict"] == "key-or-cert-needs-migration"


def test_dsregcmd_readable_rendering() -> None:
    """Without ``--json`` a table of facts, the verdict and the reasons are printed."""
    path = sample_path("dsregcmd_domainjoined_hybridjoin_failed_system_ws2022.txt")
    result = runner.invoke(app, ["explain", "dsregcmd", str(path)])
    assert result.exit_code == 0
    assert "join_type" in result.stdout
    assert "verdict: not-eligible" in result.stdout
    assert "AzureAdJoined : NO" in result.stdout


@pytest.mark.parametrize("command", ["dsregcmd", "klist", "nltest"])
def test_missing_file_exits_2_naming_it(command: str, tmp_path: Path) -> None:
    """A missing file is a clear error naming the file, exit code 2."""
    missing = tmp_path / "nope.txt"
    result = runner.invoke(app, ["explain", command, str(missing)])
    assert result.exit_code == 2
    assert str(missing) in result.stderr
    assert "cannot read" in result.stderr


def test_directory_is_unreadable(tmp_path: Path) -> None:
    """A directory given as FILE is unreadable: exit code 2."""
    result = runner.invoke(app, ["explain", "dsregcmd", str(tmp_path), "--json"])
    assert result.exit_code == 2
    assert str(tmp_path) in result.stderr


@pytest.mark.parametrize("command", ["dsregcmd", "klist", "nltest"])
def test_unparseable_content_is_unknown_exit_0(command: str, tmp_path: Path) -> None:
    """Content that is not the tool's output gives verdict unknown, with a reason, exit 0."""
    target = tmp_path / "junk.bin"
    target.write_bytes(b"\x00\x01\x02 not an output \xff\xfe")
    result = runner.invoke(app, ["explain", command, str(target), "--json"])
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["verdict"] == "unknown"
    assert document["reasons"]


def test_klist_json() -> None:
    """klist JSON carries the tickets, cloud TGT flag, verdict and reasons."""
    path = sample_path("klist_get_cifs_cloud_tgt_entrajoined.txt")
    result = runner.invoke(app, ["explain", "klist", str(path), "--json"])
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["has_cloud_tgt"] is True
    assert document["logon_id"] == "0:0x14c5c3f"
    assert [t["server"] for t in document["tickets"]] == [
        "krbtgt/KERBEROS.MICROSOFTONLINE.COM",
        "cifs/entraazfiles1.file.core.windows.net",
    ]
    assert document["tickets"][0]["ticket_flags"] == "0x40810000"
    assert document["failure"] is None
    assert document["verdict"] == "cloud-tgt-present"


def test_klist_failure_json_and_rendering(tmp_path: Path) -> None:
    """A WinRM klist failure gives the typed code and the 'run in the user's session' reason."""
    target = tmp_path / "klist.txt"
    target.write_text(
        "Current LogonId is 0:0xc7fbc\n"
        "Error calling API LsaCallAuthenticationPackage (ShowTickets substatus): 1312\n\n"
        "klist failed with 0xc000005f/-1073741729: A specified logon session does not exist. "
        "It may already have been terminated.\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["explain", "klist", str(target), "--json"])
    document = json.loads(result.stdout)
    assert document["failure"] == {
        "code": "0xc000005f",
        "signed": -1073741729,
        "name": "STATUS_NO_SUCH_LOGON_SESSION",
        "message": "A specified logon session does not exist. It may already have been terminated.",
    }
    assert document["api_errors"][0]["substatus_name"] == "ERROR_NO_SUCH_LOGON_SESSION"
    assert document["verdict"] == "klist-failed"
    rendered = runner.invoke(app, ["explain", "klist", str(target)])
    assert rendered.exit_code == 0
    assert "verdict: klist-failed" in rendered.stdout


def test_nltest_json() -> None:
    """nltest JSON says whether a DC is in sight and why not."""
    path = sample_path("nltest_dsgetdc_failure_1355_variants.txt")
    result = runner.invoke(app, ["explain", "nltest", str(path), "--json"])
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["dc_line_of_sight"] is False
    assert document["failures"][0] == {
        "operation": "DC name",
        "status": 1355,
        "hex": "0x54b",
        "name": "ERROR_NO_SUCH_DOMAIN",
        "message": "The specified domain either does not exist or could not be contacted.",
    }
    assert document["verdict"] == "dc-unreachable"
    rendered = runner.invoke(app, ["explain", "nltest", str(sample_path("nltest_dsgetdc_success_msdocs.txt"))])
    assert rendered.exit_code == 0
    assert "verdict: dc-reachable" in rendered.stdout
