"""Group membership changes over LDAP with ldap3, answered with AD's result codes."""

from __future__ import annotations

import ldap3
import pytest

from tests.lab.directory.conftest import CORP, CORP_DN, RunningDirectory

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

GROUP = f"CN=Hello Cloud Trust Computers,OU=Groups,{CORP_DN}"


def _a_computer(lab: RunningDirectory) -> str:
    name = next(d.name for d in lab.fleet.devices if d.domain == CORP)
    entry = lab.directory().tree.find_account(name)
    assert entry is not None
    return entry.dn


def _members(connection: ldap3.Connection) -> list[str]:
    connection.search(GROUP, "(objectClass=group)", ldap3.BASE, attributes=["member"])
    return list(connection.entries[0].member.values)


def test_member_add_then_delete_is_seen_by_searches(lab_directory: RunningDirectory) -> None:
    """An admin adds a computer to a group and removes it; member and memberOf follow."""
    connection = lab_directory.admin()
    computer = _a_computer(lab_directory)
    assert connection.modify(GROUP, {"member": [(ldap3.MODIFY_ADD, [computer])]}), connection.result
    assert computer in _members(connection)
    connection.search(computer, "(objectClass=computer)", ldap3.BASE, attributes=["memberOf"])
    assert GROUP in connection.entries[0].memberOf.values
    assert connection.modify(GROUP, {"member": [(ldap3.MODIFY_DELETE, [computer])]}), connection.result
    assert computer not in _members(connection)
    connection.unbind()


def test_adding_a_present_member_is_entry_already_exists(lab_directory: RunningDirectory) -> None:
    """A duplicate add answers entryAlreadyExists (68), as AD; the group is unchanged."""
    connection = lab_directory.admin()
    computer = _a_computer(lab_directory)
    assert connection.modify(GROUP, {"member": [(ldap3.MODIFY_ADD, [computer])]})
    assert not connection.modify(GROUP, {"member": [(ldap3.MODIFY_ADD, [computer])]})
    assert connection.result["result"] == 68
    assert _members(connection).count(computer) == 1
    connection.modify(GROUP, {"member": [(ldap3.MODIFY_DELETE, [computer])]})
    connection.unbind()


def test_deleting_a_missing_member_is_unwilling_to_perform(lab_directory: RunningDirectory) -> None:
    """Removing a member that is not there answers unwillingToPerform (53, AD's WILL_NOT_PERFORM)."""
    connection = lab_directory.admin()
    assert not connection.modify(GROUP, {"member": [(ldap3.MODIFY_DELETE, [_a_computer(lab_directory)])]})
    assert connection.result["result"] == 53
    assert "WILL_NOT_PERFORM" in connection.result["message"]
    connection.unbind()


def test_one_modify_is_all_or_nothing(lab_directory: RunningDirectory) -> None:
    """A request whose second change fails leaves the first undone, as AD applies a modify atomically."""
    connection = lab_directory.admin()
    computer = _a_computer(lab_directory)
    missing = f"CN=Nobody,OU=Staff,{CORP_DN}"
    assert not connection.modify(GROUP, {"member": [(ldap3.MODIFY_ADD, [computer, missing])]})
    assert connection.result["result"] == 32
    assert computer not in _members(connection)
    connection.unbind()


def test_a_user_without_rights_is_refused(lab_directory: RunningDirectory) -> None:
    """A plain domain user may bind and read, but not change a group: insufficientAccessRights (50)."""
    user = next(u for d in lab_directory.fleet.devices for u in d.users if u.domain == "CORP" and not u.privileged)
    entry = lab_directory.directory().tree.find_account(user.sam)
    assert entry is not None
    lab_directory.server.set_password(entry, CORP, "User-Passw0rd")
    connection = ldap3.Connection(
        lab_directory.ldap(), user=f"CORP\\{user.sam}", password="User-Passw0rd", authentication=ldap3.NTLM
    )
    assert connection.bind(), connection.result
    assert connection.search(GROUP, "(objectClass=group)", ldap3.BASE)
    assert not connection.modify(GROUP, {"member": [(ldap3.MODIFY_ADD, [_a_computer(lab_directory)])]})
    assert connection.result["result"] == 50
    connection.unbind()


def test_anonymous_modify_needs_a_bind(lab_directory: RunningDirectory) -> None:
    """Without a bind, a modify is operationsError 000004DC."""
    connection = ldap3.Connection(lab_directory.ldap(), auto_bind=True)
    assert not connection.modify(GROUP, {"member": [(ldap3.MODIFY_ADD, [_a_computer(lab_directory)])]})
    assert connection.result["result"] == 1
    connection.unbind()


def test_what_is_not_modelled_is_refused_clearly(lab_directory: RunningDirectory) -> None:
    """Other attributes, add, delete, modDN and compare answer unwillingToPerform 'not modelled by the lab'."""
    connection = lab_directory.admin()
    assert not connection.modify(GROUP, {"description": [(ldap3.MODIFY_REPLACE, ["x"])]})
    assert (connection.result["result"], "not modelled by the lab" in connection.result["message"]) == (53, True)
    assert not connection.add(f"CN=New,OU=Groups,{CORP_DN}", "group")
    assert (connection.result["result"], "not modelled by the lab" in connection.result["message"]) == (53, True)
    assert not connection.delete(GROUP)
    assert connection.result["result"] == 53
    assert not connection.modify_dn(GROUP, "CN=Renamed")
    assert connection.result["result"] == 53
    connection.unbind()
