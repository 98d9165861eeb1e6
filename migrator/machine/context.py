"""What the machine remembers about a device and each of its users between visits: typed, persisted as JSON.

The funnel persists the context with the state it belongs to, in the same transaction (store schema 2); a visit
rebuilds it from the store. Both are frozen dataclasses: a handler builds the next one with
``dataclasses.replace`` (which the type checker checks field by field) and hands it to
:meth:`~migrator.machine.core.DeviceMachine.fire`; the machine keeps it only once the funnel has persisted it.

Reports read the outcomes recorded here (a container deleted, when, which key, with what warning) instead of
guessing from step names or JSON keys: :func:`load_user` is how they read a stored user context.

Stores written before these models (plain dicts with the same keys) load as they are; unknown keys from an older
or newer version are ignored rather than refused, so a store never becomes unreadable to ``status``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import TypeAdapter

from migrator.machine.plan import PlanItem

Phase = Literal["identify", "dc", "sign_in", "reprovision"]


@dataclass(frozen=True)
class DeviceContext:
    path: str | None = None  # the trust path preflight found: key, cert, cloud, ineligible
    reasons: tuple[str, ...] = ()  # why (ineligible, off the playbook's path...)
    reason: str | None = None  # the one line reports show for a final or parked device
    plan: tuple[PlanItem, ...] = ()
    plan_done: int = 0  # how many plan items are written
    tracked_sids: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    policy_since: datetime | None = None  # external channel: when the first refresh was asked for
    unreachable_since: datetime | None = None  # the first failure of the current unreachable spell
    return_to: str | None = None  # where to carry on after waiting for the device, an error or a retry
    traceback: str | None = None  # error state: the unexpected exception's traceback (secrets redacted)
    applied: int | None = None  # the last journal entry whose answer moved the device
    restored: tuple[str, ...] = ()  # rollback: the values put back (path\\name: action)


@dataclass(frozen=True)
class NoCloudTgt:
    """A sign-in with Windows Hello after the change that brought no partial TGT (for the reminder and reason)."""

    at: datetime
    prt: bool | None = None  # whether the session had an Entra PRT


@dataclass(frozen=True)
class UserContext:
    sid: str = ""
    trust: str | None = None  # the trust of the user's container at preflight (key, cert, cloud)
    needs_delete: bool = False  # cert path, or key path with reset_key_trust_containers
    key_id: str | None = None  # NgcKeyId of the container recorded before the point of no return
    protected_groups: tuple[str, ...] = ()  # groups of the token Entra Kerberos refuses (Domain Admins...)
    deleted: bool = False  # the recorded container is gone (deleted by us, or found gone)
    deleted_by_us: bool = False  # we deleted it (the guarded delete or the at-logon task), not found gone
    deleted_at: datetime | None = None
    delete_warning: str | None = None  # recorded with the delete (e.g. Windows 11 passkeys in the container)
    task_armed: bool = False  # an at-logon delete task is registered for the user
    deadline_due: bool = False  # armed and past the deadline: disarm next
    phase: Phase | None = None  # the waiting phase whose deadline counts
    since: datetime | None = None
    deadline_seconds: float | None = None
    prompted_at: datetime | None = None
    prompted_session: int | None = None  # the session that was asked to sign out
    no_cloud_tgt: NoCloudTgt | None = None
    reminders: int = 0
    applied: int | None = None  # the last journal entry whose answer moved the user


_DEVICE = TypeAdapter(DeviceContext)
_USER = TypeAdapter(UserContext)


def load_device(data: Mapping[str, Any] | None) -> DeviceContext:
    """A stored device context (None or {} for a device not started)."""
    if not data:
        return DeviceContext()
    return _DEVICE.validate_python(_known(data, DeviceContext))


def load_user(data: Mapping[str, Any] | None) -> UserContext:
    if not data:
        return UserContext()
    return _USER.validate_python(_known(data, UserContext))


def dump(context: DeviceContext | UserContext) -> dict[str, Any]:
    """The context as the store keeps it (JSON: datetimes as ISO text, tuples as lists)."""
    adapter: TypeAdapter[Any] = _DEVICE if isinstance(context, DeviceContext) else _USER
    data: dict[str, Any] = adapter.dump_python(context, mode="json")
    return data


def _known(data: Mapping[str, Any], kind: type[Any]) -> dict[str, Any]:
    fields = kind.__dataclass_fields__
    return {key: value for key, value in data.items() if key in fields}
