"""certutil -DeleteHelloContainer: only the user's own context deletes, exactly once."""

from __future__ import annotations

from tests.lab.native.conftest import Fleet, out_lines, sample_lines


def test_admin_gets_nte_perm_and_nothing_is_deleted(fleet: Fleet) -> None:
    """Over WinRM the admin has no access to the user's container: NTE_PERM, exit code = the HRESULT."""
    result = fleet.run(fleet.hybrid, fleet.admin(fleet.hybrid), "certutil", "-deletehellocontainer")
    assert out_lines(result) == sample_lines("certutil_deletehellocontainer_errors.txt")
    assert result.exit_code == -2146893808
    assert fleet.alice.container is not None and fleet.alice.counters.container_deletions == 0


def test_system_gets_nte_perm(fleet: Fleet) -> None:
    """SYSTEM is not the user either."""
    result = fleet.run(fleet.hybrid, fleet.lab.system_principal(), "certutil.exe", "-DeleteHelloContainer")
    assert result.exit_code == -2146893808 and fleet.alice.container is not None


def test_user_deletes_once_then_keyset_does_not_exist(fleet: Fleet) -> None:
    """As the user: the sample's two success lines, counted once; a second run finds no keyset."""
    alice = fleet.as_user(fleet.hybrid, fleet.alice)
    first = fleet.run(fleet.hybrid, alice, "C:\\Windows\\System32\\certutil.exe", "-DeleteHelloContainer")
    assert first.exit_code == 0
    assert out_lines(first) == [line for line in sample_lines("certutil_deletehellocontainer_success.txt") if line]
    assert fleet.alice.container is None and fleet.alice.counters.container_deletions == 1
    second = fleet.run(fleet.hybrid, alice, "certutil", "-deletehellocontainer")
    assert out_lines(second) == [
        "CertUtil: -DeleteHelloContainer command FAILED: 0x80090016 (-2146893802 NTE_BAD_KEYSET)",
        "CertUtil: Keyset does not exist",
    ]
    assert second.exit_code == -2146893802
    assert fleet.alice.counters.container_deletions == 1
    assert any(e.event_id == 312 for e in fleet.hybrid.events)


def test_usage_and_unknown_verbs(fleet: Fleet) -> None:
    """certutil -? lists the verb with its published help text; an unknown verb fails with E_INVALIDARG."""
    admin = fleet.admin(fleet.hybrid)
    usage = fleet.run(fleet.hybrid, admin, "certutil", "-?")
    assert usage.exit_code == 0
    help_lines = sample_lines("certutil_help_deletehellocontainer.txt")
    assert all(line in out_lines(usage) for line in help_lines)
    unknown = fleet.run(fleet.hybrid, admin, "certutil", "-frobnicate")
    assert unknown.exit_code == -2147024809 and "CertUtil: Unknown arg: -frobnicate" in unknown.stdout
