"""Exports: read-only views across aggregates, for reports and rollback (one transaction each, so consistent).

They join what the aggregates write (devices, users, transitions, step attempts, journal, policy snapshots) and
never change anything, so they live apart from every aggregate rather than in one of them.
"""

from __future__ import annotations

from sqlalchemy import select

from migrator.store.core import DEVICE_SELECT, StoreCore, device_row
from migrator.store.devices import (
    LATEST_FACTS,
    TRANSITION_SELECT,
    USERS_OF_DEVICE,
    policy_value,
    policy_values,
    transition_row,
    user_row,
)
from migrator.store.journal import JOURNAL_OF_DEVICE, JOURNAL_SELECT, STEP_SELECT, journal_row, step_row
from migrator.store.rows import (
    FactsSnapshot,
    PolicyValue,
    RollbackRecord,
    Timeline,
    TransitionRow,
    UserRow,
    VisitRecord,
)
from migrator.store.schema import devices, journal, policy_snapshots, steps, transitions, users


class ExportsMixin(StoreCore):
    """A wave's transitions, a device's timeline, and what rollback needs per device."""

    def export_wave_transitions(self, wave: str) -> list[TransitionRow]:
        """Every transition recorded for a wave, in time order."""
        with self._tx(f"export transitions of wave {wave!r}", write=False) as conn:
            wave_id = self._wave(conn, wave, "export wave transitions").id
            query = TRANSITION_SELECT.where(transitions.c.wave_id == wave_id).order_by(
                transitions.c.at, transitions.c.id
            )
            return [transition_row(row) for row in conn.execute(query)]

    def export_device_timeline(self, device: str) -> Timeline:
        """One device's row, transitions, step attempts and journal entries (see :meth:`Timeline.events`)."""
        with self._tx(f"export timeline of {device!r}", write=False) as conn:
            dev = self._device(conn, device, "export device timeline")
            moves = conn.execute(
                TRANSITION_SELECT.where(transitions.c.device_id == dev.id).order_by(transitions.c.at, transitions.c.id)
            )
            attempts = conn.execute(
                STEP_SELECT.where(steps.c.device_id == dev.id).order_by(steps.c.started_at, steps.c.id)
            )
            entries = conn.execute(JOURNAL_SELECT.where(journal.c.device_id == dev.id).order_by(journal.c.id))
            return Timeline(
                device=device_row(dev),
                transitions=[transition_row(row) for row in moves],
                steps=[step_row(row, row.device_name) for row in attempts],
                journal=[journal_row(row) for row in entries],
            )

    def visit_record(self, device: str) -> VisitRecord:
        """What a visit rebuilds the device's machine from (its row, users, latest facts, journal and policy
        snapshot), in one read transaction instead of one per part."""
        with self._tx(f"read the record of {device!r}", write=False) as conn:
            dev = self._device(conn, device, "visit record")
            people = [user_row(row, dev.name) for row in conn.execute(USERS_OF_DEVICE, {"device_id": dev.id})]
            latest = conn.execute(LATEST_FACTS, {"device_id": dev.id}).first()
            facts = None if latest is None else FactsSnapshot(latest.id, dev.name, latest.taken_at, latest.data)
            entries = [journal_row(row) for row in conn.execute(JOURNAL_OF_DEVICE, {"device_id": dev.id})]
            return VisitRecord(device_row(dev), people, facts, entries, policy_values(conn, dev.id))

    def export_rollback_records(self, wave: str | None = None) -> list[RollbackRecord]:
        """Per device (of a wave, or all): the policy values to restore and the users' containers at preflight."""
        with self._tx("export rollback records", write=False) as conn:
            query = DEVICE_SELECT.order_by(devices.c.name_key)
            if wave is not None:
                query = query.where(devices.c.wave_id == self._wave(conn, wave, "export rollback records").id)
            device_rows = list(conn.execute(query))
            by_device: dict[int, list[PolicyValue]] = {row.id: [] for row in device_rows}
            people: dict[int, list[UserRow]] = {row.id: [] for row in device_rows}
            names = {row.id: row.name for row in device_rows}
            snapshot_query = select(policy_snapshots).order_by(policy_snapshots.c.device_id, policy_snapshots.c.id)
            for row in conn.execute(snapshot_query):
                if row.device_id in by_device:
                    by_device[row.device_id].append(policy_value(row))
            for row in conn.execute(select(users).order_by(users.c.device_id, users.c.name_key)):
                if row.device_id in people:
                    people[row.device_id].append(user_row(row, names[row.device_id]))
            return [
                RollbackRecord(row.name, row.wave_name, row.state, row.path, by_device[row.id], people[row.id])
                for row in device_rows
            ]
