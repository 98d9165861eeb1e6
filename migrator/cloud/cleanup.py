"""Stale Windows Hello for Business keys removed from Entra ID, once the user is verified on the new key.

Theory of operation
-------------------
Deleting a Hello container on a device does not remove its key from Entra ID: the key stays among the user's
authentication methods until someone deletes it (MS docs, "Migrate from certificate trust deployment model").
The step :data:`~migrator.machine.table.REMOVE_STALE_HELLO_KEY` (declared in the machine's table: which user
states it follows and what the user's record must hold) deletes exactly that key:

* for each user of the device whose machine reached one of the step's ``after`` states and whose context says
  migrator deleted the container (``deleted_by_us``) and recorded its NgcKeyId at preflight (``key_id``);
* the Entra user is found by the account's SID; the user's methods are read with ``$expand=device``; the method
  whose id is that NgcKeyId is the stale key. It is deleted only when it was registered from this device (its
  device's ``deviceId`` is the device's Entra device id the probe read, when both are known) and the user keeps
  another Hello method on this device (the new key: never the only one left);
* the delete is journalled like a device step (:meth:`Store.intent` committed before the DELETE is sent,
  :meth:`Store.outcome` after) and audited; an intent left without outcome (a crash, a lost answer) is resolved by
  re-reading the user's methods (the key gone: removed; still there: not removed, and a new attempt follows),
  never by sending the DELETE blindly again.

A result reached without a DELETE (the key ``left``, or ``failed`` because Entra ID could not be read) is journalled
as a finished entry too, once while it stays the same, so the report says what happened instead of "not
attempted".

The same code runs after each visit of a wave whose playbook sets ``entra: {remove_stale_hello_keys: true}`` and in
bulk with ``migrator entra cleanup --wave W``. What it did is in the journal; :func:`key_status` reads it back for
the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from migrator.cloud.knowledge import record_spend
from migrator.errors import CloudAccessDenied, CloudCredentialsError, CloudError, CloudNotFound
from migrator.logs import get_logger
from migrator.machine.context import UserContext, load_user
from migrator.machine.table import REMOVE_STALE_HELLO_KEY
from migrator.store import AuditEntry, JournalEntry, Store

if TYPE_CHECKING:  # the client (msal, httpx) is loaded by whoever builds one: see migrator.engine.service
    from migrator.cloud.client import GraphClient

STEP = REMOVE_STALE_HELLO_KEY

Status = Literal["removed", "already_gone", "left", "failed", "in_doubt"]


@dataclass(frozen=True)
class KeyCleanup:
    """What happened to one user's stale key on one device."""

    device: str
    user: str
    key_id: str
    status: Status
    detail: str = ""


def normal_key_id(key_id: str) -> str:
    """An NgcKeyId as dsregcmd prints it (``{GUID}``) compared with a method's id: lower case, no braces."""
    return key_id.strip().strip("{}").lower()


def eligible(state: str, context: UserContext) -> bool:
    """Whether the table's step applies to a user in ``state`` with that context."""
    return state in STEP.after and all(getattr(context, field) for field in STEP.requires)


def key_status(entries: Sequence[JournalEntry], user: str) -> tuple[Status, str] | None:
    """The latest recorded result of the step for ``user`` (None: never attempted)."""
    mine = [e for e in entries if e.step == STEP.name and e.user == user]
    if not mine:
        return None
    last = mine[-1]
    if last.status == "intent":
        return "in_doubt", "the DELETE was sent and its answer not recorded: re-read at the next cleanup"
    outcome: dict[str, Any] = last.outcome if isinstance(last.outcome, dict) else {}
    status = outcome.get("status")
    if status in ("removed", "already_gone", "left", "failed"):
        return status, str(outcome.get("detail", ""))
    return "failed", str(outcome.get("detail", ""))


class StaleKeyCleanup:
    """Removes stale Hello keys through one :class:`GraphClient`, journalled in one store."""

    def __init__(self, store: Store, graph: GraphClient, *, actor: str, change_ticket: str | None = None) -> None:
        self.store = store
        self.graph = graph
        self.actor = actor
        self.change_ticket = change_ticket

    def device(self, device: str) -> list[KeyCleanup]:
        """Clean up every eligible user of ``device`` not done yet; the results, one per eligible user. The Graph
        requests this thread sent for it are recorded (``graph-requests``) for the report's requests per device."""
        with self.graph.counting() as counted:
            try:
                return self._device(device)
            finally:
                record_spend(
                    self.store,
                    "entra-cleanup",
                    counted.requests,
                    [device],
                    actor=self.actor,
                    change_ticket=self.change_ticket,
                )

    def _device(self, device: str) -> list[KeyCleanup]:
        entries = self.store.journal_entries(device)
        facts = self.store.latest_facts(device)
        recorded = (facts.facts or {}).get("device_id") if facts is not None else None
        device_id = str(recorded) if recorded else None  # the Entra device id the probe read
        results = []
        for row in self.store.list_users(device):
            context = load_user(row.context)
            if not eligible(row.state, context):
                continue
            key_id = normal_key_id(context.key_id or row.key_id or "")
            previous = key_status(entries, row.name)
            if previous is not None and previous[0] in ("removed", "already_gone"):
                results.append(KeyCleanup(device, row.name, key_id, previous[0], previous[1]))
                continue
            results.append(self._user(device, row.name, row.sid or context.sid, key_id, device_id, entries))
        return results

    # ---- one user ---------------------------------------------------------------------------------------

    def _user(
        self,
        device: str,
        user: str,
        sid: str,
        key_id: str,
        device_id: str | None,
        entries: Sequence[JournalEntry],
    ) -> KeyCleanup:
        log = get_logger("cloud.cleanup", device=device, user=user)
        mine = [e for e in entries if e.step == STEP.name and e.user == user]
        try:
            entra_user = self.graph.user_by_sid(sid) if sid else None
            if entra_user is None:
                return self._left(device, user, key_id, f"no Entra ID user has the SID {sid or '(unknown)'}", mine)
            methods = self.graph.hello_methods(str(entra_user["id"]), expand_device=True)
        except (CloudCredentialsError, CloudAccessDenied):
            raise  # the app's credentials or permissions: the same for every user, the caller says what to fix
        except CloudError as err:
            log.warning("stale key not removed: Entra ID cannot be read", error=err.detail)
            detail = f"Entra ID cannot be read: {type(err).__name__}: {err.detail}"
            if any(e.status == "intent" for e in mine):
                # A DELETE still in doubt is the truer record: the next cleanup re-reads and resolves it.
                return KeyCleanup(device, user, key_id, "failed", detail)
            return self._settled(device, user, key_id, "failed", detail, mine)
        ids = [str(m.get("id", "")).lower() for m in methods]
        for entry in mine:
            if entry.status == "intent":  # a DELETE whose answer was not recorded: the tenant says what happened
                gone = key_id not in ids
                self.store.resolve(
                    entry.id,
                    {
                        "status": "removed" if gone else "left",
                        "by": "re-reading the user's Hello methods",
                        "methods": ids,
                    },
                )
                self._audit(device, user, "resolved by re-reading", key_id, ids, gone)
                log.info("in-doubt key removal resolved by re-reading", removed=gone)
                if gone:
                    return KeyCleanup(device, user, key_id, "removed", "resolved by re-reading the user's methods")
        stale = next((m for m in methods if str(m.get("id", "")).lower() == key_id), None)
        if stale is None:
            return self._record(
                device,
                user,
                key_id,
                "already_gone",
                "the key is not registered any more",
                mine,
                ids,
                entra_user,
                send=False,
            )
        stale_device = (stale.get("device") or {}).get("deviceId")
        if device_id and stale_device and str(stale_device).lower() != str(device_id).lower():
            return self._left(
                device,
                user,
                key_id,
                f"the key was registered from device {stale_device}, not this device ({device_id})",
                mine,
            )
        others = [m for m in methods if m is not stale and _same_device(m, stale, device_id)]
        if not others:
            return self._left(
                device,
                user,
                key_id,
                "no other Hello key of the user is registered from this device: "
                "the new key is not there yet, so the old one is kept",
                mine,
            )
        return self._record(device, user, key_id, "removed", "", mine, ids, entra_user, send=True)

    def _record(
        self,
        device: str,
        user: str,
        key_id: str,
        status: Status,
        detail: str,
        mine: Sequence[JournalEntry],
        ids: list[str],
        entra_user: dict[str, Any],
        *,
        send: bool,
    ) -> KeyCleanup:
        payload = {"key_id": key_id, "entra_user": str(entra_user.get("id", "")), "methods_before": ids}
        entry = self._intent(device, user, payload, mine)
        if send:
            try:
                self.graph.delete_hello_method(str(entra_user["id"]), key_id)
            except CloudNotFound:
                status, detail = "already_gone", "the key was removed meanwhile (404)"
            except (CloudCredentialsError, CloudAccessDenied) as err:  # refused: nothing was deleted
                self.store.outcome(entry.id, {"status": "failed", "detail": err.detail}, ok=False)
                self._audit(device, user, "refused", key_id, ids, False)
                raise
            except CloudError as err:
                try:
                    after = [str(m.get("id", "")).lower() for m in self.graph.hello_methods(str(entra_user["id"]))]
                except CloudError:
                    # Neither the DELETE's answer nor a re-read: the intent stays in doubt for the next cleanup.
                    return KeyCleanup(device, user, key_id, "in_doubt", f"{type(err).__name__}: {err.detail}")
                gone = key_id not in after
                self.store.resolve(
                    entry.id,
                    {
                        "status": "removed" if gone else "failed",
                        "by": "re-reading the user's Hello methods",
                        "detail": err.detail,
                        "methods": after,
                    },
                )
                self._audit(device, user, "resolved by re-reading", key_id, ids, gone)
                return KeyCleanup(device, user, key_id, "removed" if gone else "failed", err.detail)
        self.store.outcome(entry.id, {"status": status, "detail": detail}, ok=True)
        self._audit(device, user, status, key_id, ids, status in ("removed", "already_gone"))
        return KeyCleanup(device, user, key_id, status, detail)

    def _intent(self, device: str, user: str, payload: dict[str, Any], mine: Sequence[JournalEntry]) -> JournalEntry:
        """The user's next attempt at the step, journalled (its idempotency key names the attempt)."""
        attempt = len(mine) + 1
        return self.store.intent(
            device, STEP.name, attempt, payload, key=f"{device}/{user}/{STEP.name}/{attempt}", user=user
        )

    def _left(self, device: str, user: str, key_id: str, why: str, mine: Sequence[JournalEntry]) -> KeyCleanup:
        get_logger("cloud.cleanup", device=device, user=user).warning("stale key left in Entra ID", reason=why)
        return self._settled(device, user, key_id, "left", why, mine)

    def _settled(
        self, device: str, user: str, key_id: str, status: Status, detail: str, mine: Sequence[JournalEntry]
    ) -> KeyCleanup:
        """A result reached without a DELETE (the key left, or Entra ID unreadable), journalled like one so that the
        report says so rather than "not attempted": the device is final, no visit tries again, and the operator's
        remedy is ``migrator entra cleanup``. Recorded once while it stays the same (a cleanup after every visit
        would otherwise add the same entry each time)."""
        if key_status(mine, user) != (status, detail):
            entry = self._intent(device, user, {"key_id": key_id}, mine)
            self.store.outcome(entry.id, {"status": status, "detail": detail}, ok=status != "failed")
        return KeyCleanup(device, user, key_id, status, detail)

    def _audit(self, device: str, user: str, what: str, key_id: str, before: list[Any], gone: bool) -> None:
        after: list[Any] = [i for i in before if i != key_id] if gone else before
        self.store.append_audit(
            AuditEntry(
                self.actor,
                f"user {user}: {STEP.name} ({what})",
                device=device,
                change_ticket=self.change_ticket,
                before={"hello_methods": before},
                after={"hello_methods": after, "removed": key_id if gone else None},
            )
        )


def _same_device(method: dict[str, Any], stale: dict[str, Any], device_id: str | None) -> bool:
    """A method registered from the same device as the stale key (by Entra device id, else by display name)."""
    mine = (method.get("device") or {}).get("deviceId")
    theirs = (stale.get("device") or {}).get("deviceId") or device_id
    if mine and theirs:
        return str(mine).lower() == str(theirs).lower()
    return bool(method.get("displayName")) and method.get("displayName") == stale.get("displayName")


def cleanup_wave(store: Store, cleanup: StaleKeyCleanup, wave: str) -> list[KeyCleanup]:
    """The bulk form (``migrator entra cleanup --wave W``): every device of the wave, in name order."""
    results: list[KeyCleanup] = []
    for row in store.list_devices(wave=wave):
        results += cleanup.device(row.name)
    return results
