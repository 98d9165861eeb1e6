"""The wave engine's view of the store: wave state, approvals and operator actions, shared across processes.

Approvals and pauses are operator decisions a change manager must be able to trace, so each is an entry in the
hash-chained audit log (who, when, which wave, which batch) besides the wave's state; the approval count of a
wave is read back from the audit log itself.
"""

from __future__ import annotations

from migrator.engine.waves import WaveState
from migrator.errors import InputError
from migrator.store import AuditEntry, JsonValue, NotFound, Store

APPROVE = "wave.approve"
PAUSE = "wave.pause"
RESUME = "wave.resume"


class StoreWaves:
    """:class:`~migrator.engine.waves.WaveStore` on a :class:`~migrator.store.Store`."""

    def __init__(self, store: Store, actor: str) -> None:
        self.store = store
        self.actor = actor

    def wave_state(self, wave: str) -> str:
        return self.store.get_wave(wave).state

    def set_wave_state(self, wave: str, state: WaveState, reason: str = "") -> None:
        row = self.store.get_wave(wave)
        if row.state == state:
            return
        self.store.set_wave_state(
            wave,
            state,
            audit=AuditEntry(
                actor=self.actor,
                action=f"wave.{state}",
                change_ticket=row.change_ticket,
                before={"wave": wave, "state": row.state},
                after={"wave": wave, "state": state, "reason": reason},
            ),
        )

    def approved_batches(self, wave: str) -> int:
        return sum(
            1
            for entry in self.store.audit_entries()
            if entry.action == APPROVE and isinstance(entry.after, dict) and entry.after.get("wave") == wave
        )

    # ---- operator actions (CLI) --------------------------------------------------------------------------

    def _wave(self, wave: str) -> str:
        try:
            return self.store.get_wave(wave).state
        except NotFound:
            known = ", ".join(w.name for w in self.store.list_waves()) or "none yet"
            raise InputError(f"no wave named {wave!r} in {self.store.where} (waves: {known})") from None

    def approve(self, wave: str, reason: str = "") -> int:
        """Record an approval for the wave's next batch (with the operator's ``reason``, when given); returns how
        many batches are now approved."""
        state = self._wave(wave)
        approved = self.approved_batches(wave) + 1
        row = self.store.get_wave(wave)
        after: dict[str, JsonValue] = {"wave": wave, "approved_batches": approved}
        if reason:
            after["reason"] = reason
        self.store.append_audit(
            AuditEntry(
                actor=self.actor,
                action=APPROVE,
                change_ticket=row.change_ticket,
                before={"wave": wave, "state": state, "approved_batches": approved - 1},
                after=after,
            )
        )
        if state == "awaiting_approval":
            self.set_wave_state(wave, "running", f"batch gate {approved} approved" + (f": {reason}" if reason else ""))
        return approved

    def pause(self, wave: str, reason: str = "") -> None:
        state = self._wave(wave)
        if state in ("completed", "halted"):
            raise InputError(f"wave {wave!r} is {state}; there is nothing to pause")
        self.set_wave_state(wave, "paused", f"paused by an operator: {reason}" if reason else "paused by an operator")

    def resume(self, wave: str) -> None:
        state = self._wave(wave)
        if state in ("paused", "awaiting_approval", "halted", "planned", "completed"):
            self.set_wave_state(wave, "running", f"resumed from {state}")
