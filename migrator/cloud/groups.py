"""Entra ID group membership of device objects through Microsoft Graph, for the ``intune-group`` policy channel.

Theory of operation
-------------------
Intune assigns a Windows Hello for Business profile (settings catalog, PassportForWork CSP) to Entra groups; a
device gets the profiles assigned to the groups its Entra device object is in, at its next check-in (MS docs,
"Assign device profiles in Microsoft Intune"). :class:`GraphGroupWriter` is one tenant's
:class:`~migrator.engine.channels.GroupWriter`:

* :meth:`~GraphGroupWriter.read`: each group by object id, with its members (``GET groups/{id}/members``, paged: a
  group that does not exist answers 404), and each device's Entra device object by ``displayName`` (the computer
  name Windows registers) and its Intune ``managedDevice`` (``azureADDeviceId eq``). A device with no object, two
  objects of that name (a stale duplicate: which one Intune targets cannot be told), or no managedDevice is a
  problem the channel refuses before anything changes. Device objects are read once per channel and kept: their
  ids do not change; group members are read afresh every time (what an in-doubt change is resolved by).
* :meth:`~GraphGroupWriter.set_membership`: one ``POST groups/{id}/members/$ref`` or ``DELETE
  groups/{id}/members/{object id}/$ref`` per device not already as wanted (Graph adds up to 20 members per PATCH,
  but answers a PATCH as a whole: per device the answer says what happened to it). Graph answers 400 for a member
  already there and 404 for one that is not: the group is read again and the device recorded as already so when
  the read says so; a change is never sent blindly twice.
* :meth:`~GraphGroupWriter.settle`: ``POST managedDevices/{id}/syncDevice`` per device, so it checks in now
  rather than within about 8 hours (MS docs, "Sync devices to get the latest policies and actions").

Requests: per batch one (paged) members read per group, per device two reads the first time it is seen, one
change per group it moves between, and one sync.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

from migrator.cloud.client import GraphClient
from migrator.directory.groups import ComputerAccount, Group, MembershipChange
from migrator.engine.channels import GroupWriter, Roles
from migrator.errors import CloudNotFound, CloudProtocolError


@dataclass(frozen=True)
class EntraGroup(Group):
    """An Entra group: ``dn`` is its object id."""

    @property
    def key(self) -> str:
        return self.dn.casefold()


@dataclass(frozen=True)
class EntraDevice:
    object_id: str  # the Entra device object's id (what group members name)
    device_id: str  # its deviceId (what Intune's azureADDeviceId names)
    managed_id: str  # the Intune managedDevice id (syncDevice)


class GraphGroupWriter(GroupWriter):
    """One tenant's groups for the intune-group channel (see the module docstring)."""

    def __init__(self, graph: GraphClient, cache: dict[str, EntraDevice]) -> None:
        self.graph = graph
        self.target = f"entra:{graph.tenant}"
        self._devices = cache  # case-folded name -> device, shared by the channel's writers
        self._start = graph.requests

    @property
    def requests(self) -> int:
        return self.graph.requests - self._start

    def __enter__(self) -> GraphGroupWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        return None  # the channel owns the Graph client (one per wave), not the writer

    def _members(self, group: Group) -> frozenset[str]:
        return frozenset(str(m.get("id", "")).casefold() for m in self.graph.group_members(group.dn))

    def _device(self, name: str, problems: list[str]) -> EntraDevice | None:
        known = self._devices.get(name.casefold())
        if known is not None:
            return known
        found = self.graph.entra_devices_named(name)
        if not found:
            problems.append(f"no Entra device object named {name} in the tenant {self.graph.tenant}")
            return None
        if len(found) > 1:
            ids = ", ".join(sorted(str(d.get("id")) for d in found))
            problems.append(f"{len(found)} Entra device objects are named {name} ({ids}): delete the stale one")
            return None
        device_id = str(found[0].get("deviceId") or "")
        managed = self.graph.managed_device(device_id) if device_id else None
        if managed is None:
            problems.append(f"{name} is not managed by Intune (no managedDevice for deviceId {device_id or '?'})")
            return None
        device = EntraDevice(str(found[0]["id"]), device_id, str(managed["id"]))
        self._devices[name.casefold()] = device
        return device

    def read(
        self, roles: Roles, names: Sequence[str], problems: list[str]
    ) -> tuple[dict[str, Group], dict[str, ComputerAccount]]:
        groups: dict[str, Group] = {}
        members: dict[str, frozenset[str]] = {}
        for role, (group_id, _member) in roles.items():
            group = EntraGroup(group_id, group_id, self.target)
            try:
                members[role] = self._members(group)
            except CloudNotFound:
                problems.append(f"group {group_id!r} does not exist in the tenant {self.graph.tenant}")
                continue
            groups[role] = group
        computers: dict[str, ComputerAccount] = {}
        for name in names:
            device = self._device(name, problems)
            if device is None:
                continue
            inside = frozenset(groups[r].key for r, ids in members.items() if device.object_id.casefold() in ids)
            computers[name.casefold()] = ComputerAccount(name, device.object_id, inside)
        return groups, computers

    def set_membership(self, group: Group, members: Sequence[ComputerAccount], *, member: bool) -> MembershipChange:
        change = MembershipChange(group, member)
        for device in members:
            if device.is_in(group) == member:
                change.already.append(device.name)
                continue
            change.modifies += 1
            try:
                if member:
                    self.graph.add_group_member(group.dn, device.dn)
                else:
                    self.graph.remove_group_member(group.dn, device.dn)
            except (CloudProtocolError, CloudNotFound) as err:
                # 400 "already exist" / 404 on the member: someone changed the group since it was read. Read it
                # again; the device is as wanted, or the refusal was about something else.
                if (device.dn.casefold() in self._members(group)) != member:
                    raise CloudProtocolError(
                        self.graph.tenant,
                        f"{'adding' if member else 'removing'} {device.name} {'to' if member else 'from'} group "
                        f"{group.dn} was refused, and re-reading the group shows it still to do: {err}",
                    ) from None
                change.already.append(device.name)
            else:
                change.changed.append(device.name)
        return change

    def settle(self, names: Sequence[str]) -> None:
        for name in names:
            device = self._devices.get(name.casefold())
            if device is not None:  # read by this channel before any change (read comes first)
                self.graph.sync_device(device.managed_id)
