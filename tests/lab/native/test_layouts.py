"""The lab's whoami and certutil -store output against the layout samples in tests/lab/outputs (by shape:
labels, titles, column headers and the column-width rule, never by value)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from migrator.lab import boundary
from migrator.lab.model import Certificate, ScheduledTask, TaskAction
from migrator.lab.native.reg import NOT_FOUND as reg_not_found
from tests.lab.conftest import T0
from tests.lab.native.conftest import Fleet, out_lines

OUTPUTS = Path(__file__).resolve().parents[1] / "outputs"


def _sample(name: str) -> list[str]:
    text = (OUTPUTS / name).read_text(encoding="utf-8")
    return [line for line in text.splitlines() if not line.startswith(("# ", "## "))]


def _label(line: str) -> str:
    """What stays the same whatever the values: the text before ':' / ' = ', or the line's fixed words."""
    match = re.match(r"^(\s*[^:=]+?)(?::| = )", line)
    if match:
        return match.group(1)
    return re.sub(r"\d+", "N", line)


def _widths_follow_the_rule(lines: list[str]) -> None:
    """Each column is as wide as its widest cell (header included); the last column is not padded."""
    underline = next(index for index, line in enumerate(lines) if line.startswith("="))
    widths = [len(part) for part in lines[underline].split(" ")]
    rows = [lines[underline - 1], *[line for line in lines[underline + 1 :] if line]]
    starts = [sum(widths[:i]) + i for i in range(len(widths))]
    for column, (start, width) in enumerate(zip(starts, widths, strict=True)):
        cells = [row[start : start + width].rstrip() for row in rows]
        assert max(len(cell) for cell in cells) == width or column == len(widths) - 1, (column, cells)
    assert all(line == line.rstrip() for line in rows)


def test_certutil_user_store_has_the_sample_layout(fleet: Fleet) -> None:
    """certutil -user -store my as a certificate-trust user: the sample's lines, label for label."""
    assert fleet.bob.container is not None
    fleet.bob.certificates.append(
        Certificate(
            thumbprint="0A1B2C3D4E5F60718293A4B5C6D7E8F901234567",
            subject="CN=Bob",
            issuer="CN=CORP-CA",
            template="WHFBAuthentication",
            not_before=T0,
            not_after=T0 + timedelta(days=365),
            hello_key_id=fleet.bob.container.key_id,
        )
    )
    bob = fleet.as_user(fleet.hybrid, fleet.bob)
    lab = out_lines(fleet.run(fleet.hybrid, bob, "certutil", "-user", "-store", "my"))
    assert [_label(line) for line in lab] == [_label(line) for line in _sample("certutil_store_my.txt")]


def test_certutil_empty_store_matches_the_sample(fleet: Fleet) -> None:
    """A store without certificates: title and completion line only (the WinRM admin's own store)."""
    admin = fleet.admin(fleet.hybrid)
    assert out_lines(fleet.run(fleet.hybrid, admin, "certutil", "-user", "-store", "my")) == _sample(
        "certutil_store_empty.txt"
    )


def test_whoami_groups_has_the_sample_layout(fleet: Fleet) -> None:
    """whoami /groups as the WinRM admin: the sample's title block, headers, groups and column rule."""
    lab = out_lines(fleet.run(fleet.hybrid, fleet.admin(fleet.hybrid), "whoami", "/groups"))
    sample = _sample("whoami_groups.txt")
    assert lab[:4] == sample[:4]
    assert lab[4].split() == sample[4].split()
    _widths_follow_the_rule(lab)
    _widths_follow_the_rule(sample)
    first_column = len(sample[5].split(" ")[0])
    assert [line[:first_column].split("\\")[-1].rstrip() for line in sample[6:]] == [
        line.split("  ")[0]
        .split("\\")[-1]
        .split(" Well-known")[0]
        .split(" Alias")[0]
        .split(" Group")[0]
        .split(" Label")[0]
        for line in lab[6:]
    ]


def test_whoami_all_has_the_sections_in_order(fleet: Fleet) -> None:
    """whoami /all: USER, GROUP, PRIVILEGES and USER CLAIMS INFORMATION, each with its title block."""
    lab = out_lines(fleet.run(fleet.hybrid, fleet.admin(fleet.hybrid), "whoami", "/all"))
    sample = [line for line in _sample("whoami_all_sections.txt")]
    titles = [line for line in sample if line.endswith("INFORMATION")]
    assert [line for line in lab if line.endswith("INFORMATION")] == titles
    for title in titles:
        at = lab.index(title)
        assert lab[at - 1 : at + 3] == ["", title, "-" * len(title), ""]
    assert lab[-5:] == sample[-5:]


def test_ipconfig_all_has_the_sample_layout(fleet: Fleet) -> None:
    """ipconfig /all: the sample's labels in the sample's order, each dotted out to the same column."""
    lab = out_lines(fleet.run(fleet.hybrid, fleet.admin(fleet.hybrid), "ipconfig", "/all"))
    assert [_label(line) for line in lab] == [_label(line) for line in _sample("ipconfig_all.txt")]


def test_schtasks_verbose_list_has_the_sample_layout(fleet: Fleet) -> None:
    """schtasks /query /v /fo list: the sample's labels, in order, padded to 38 columns."""
    fleet.hybrid.tasks.append(
        ScheduledTask(name="lab-schtasks", path="\\lab\\", user_id="SYSTEM", logon_type="ServiceAccount",
                      actions=[TaskAction(execute="cmd.exe", arguments="/c ver")])
    )  # fmt: skip
    admin = fleet.admin(fleet.hybrid)
    lab = out_lines(
        fleet.run(fleet.hybrid, admin, "schtasks", "/query", "/tn", "\\lab\\lab-schtasks", "/v", "/fo", "list")
    )
    sample = _sample("schtasks_query_v_list.txt")
    assert [line[:38] for line in lab] == [line[:38] for line in sample]
    assert lab[2:] == [line.replace("PC-0001", fleet.hybrid.name) for line in sample[2:]]


def test_whoami_groups_of_a_signed_in_user_follow_the_session(fleet: Fleet) -> None:
    """A console user's token has CONSOLE LOGON, medium integrity and the user's domain groups."""
    alice = fleet.as_user(fleet.hybrid, fleet.alice)
    lines = out_lines(fleet.run(fleet.hybrid, alice, "whoami", "/groups"))
    names = [line.split("  ")[0] for line in lines[6:]]
    assert "CONSOLE LOGON" in names and "NT AUTHORITY\\INTERACTIVE" in names
    assert "CORP\\Domain Users" in names and names[-1] == "Mandatory Label\\Medium Mandatory Level"
    assert "BUILTIN\\Administrators" not in names
    _widths_follow_the_rule(lines)


def test_reg_query_has_the_sample_layout(fleet: Fleet) -> None:
    """reg query on the policy key: the sample's key line, value lines and subkey line, label for label."""
    device = fleet.hybrid
    device.registry.set_value("HKLM\\SOFTWARE\\Policies\\Microsoft\\PassportForWork\\PINComplexity", "Digits", 1)
    lab = out_lines(
        fleet.run(device, fleet.admin(device), "reg", "query", "HKLM\\SOFTWARE\\Policies\\Microsoft\\PassportForWork")
    )
    sample = _sample("reg_query.txt")
    assert lab[:2] == sample[:2] and lab[-2:] == sample[-2:]
    values = [line.split("    ")[1:] for line in lab[2:-3]]
    assert ["Enabled", "REG_DWORD", "0x1"] in values and ["UseCloudTrustForOnPremAuth", "REG_DWORD", "0x1"] in values
    missing = fleet.run(device, fleet.admin(device), "reg", "query", "HKLM\\SOFTWARE\\Policies\\Microsoft\\Nope")
    assert (missing.exit_code, out_lines(missing, "stderr")) == (1, [reg_not_found])
    parent = fleet.run(device, fleet.admin(device), "reg", "query", "HKLM\\SOFTWARE")
    assert parent.exit_code == boundary.EXIT_CODE
