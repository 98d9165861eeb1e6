"""The waves aggregate: a named batch of devices run with one playbook (by content hash) and one change ticket."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Row, insert, select, update
from sqlalchemy import exc as sa_exc

from migrator.store.auditing import append_entry, lock_chain, record_wave_heads
from migrator.store.codec import JsonObject, JsonValue, guard
from migrator.store.core import StoreCore, fill_audit, new_id
from migrator.store.errors import ConcurrentUpdate, DuplicateWave, UnstorableValue
from migrator.store.rows import AuditEntry, AuditHead, WaveRow
from migrator.store.schema import waves

_HEX64 = re.compile(r"[0-9a-f]{64}")


def content_hash(data: str | bytes) -> str:
    """SHA-256 hex of a playbook's content (text is hashed as UTF-8): what :meth:`Store.create_wave` records."""
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()


class WavesMixin(StoreCore):
    """Creating, reading and moving waves (a wave's state is the engine's; the store only records it)."""

    def create_wave(
        self,
        name: str,
        *,
        playbook_name: str,
        playbook_hash: str,
        change_ticket: str | None = None,
        settings: Mapping[str, object] | None = None,
        state: str = "planned",
        audit: AuditEntry | None = None,
    ) -> WaveRow:
        """Create a wave; ``playbook_hash`` is the SHA-256 hex of the playbook's content (:func:`content_hash`)."""
        if not _HEX64.fullmatch(playbook_hash):
            raise UnstorableValue(f"create wave {name!r}: playbook_hash must be 64 lowercase hex digits (SHA-256)")
        checked = guard(dict(settings or {}), where=f"settings of wave {name!r}")
        now = self._now()
        with self._tx(f"create wave {name!r}", write=True) as conn:
            lock_chain(conn)
            if conn.execute(select(waves.c.id).where(waves.c.name == name)).first() is not None:
                raise DuplicateWave(f"create wave: a wave named {name!r} already exists")
            try:
                with self._race_guard(conn):
                    wave_id = new_id(
                        conn,
                        insert(waves).values(
                            name=name,
                            change_ticket=change_ticket,
                            playbook_name=playbook_name,
                            playbook_hash=playbook_hash,
                            settings=checked,
                            state=state,
                            created_at=now,
                            updated_at=now,
                        ),
                    )
            except sa_exc.IntegrityError:
                raise DuplicateWave(f"create wave: a wave named {name!r} already exists") from None
            if audit is not None:
                append_entry(conn, fill_audit(audit, None, change_ticket), now)
            head = record_wave_heads(conn, wave_id)
        return WaveRow(
            wave_id, name, change_ticket, playbook_name, playbook_hash, cast(JsonObject, checked), state, now, now, head
        )

    def get_wave(self, name: str) -> WaveRow:
        with self._tx(f"read wave {name!r}", write=False) as conn:
            return wave_row(self._wave(conn, name, "get wave"))

    def list_waves(self) -> list[WaveRow]:
        with self._tx("list waves", write=False) as conn:
            return [wave_row(row) for row in conn.execute(select(waves).order_by(waves.c.id))]

    def add_to_wave_list(
        self, name: str, key: str, values: Sequence[str], *, audit: AuditEntry | None = None
    ) -> WaveRow:
        """Add ``values`` to the list a wave's settings hold under ``key`` (a list that only grows: what the wave
        has done stays recorded); ``audit`` is appended only when something was added, with the names added."""
        now = self._now()
        with self._tx(f"record {key} of wave {name!r}", write=True) as conn:
            lock_chain(conn)
            row = self._wave(conn, name, f"record {key}")
            settings = dict(row.settings)
            current = settings.get(key)
            known = [str(v) for v in current] if isinstance(current, list) else []
            added = [v for v in dict.fromkeys(values) if v not in known]
            if not added:
                return wave_row(row)
            settings[key] = [*known, *added]
            checked = guard(settings, where=f"settings of wave {name!r}")
            conn.execute(update(waves).where(waves.c.id == row.id).values(settings=checked, updated_at=now))
            if audit is not None:
                listed: list[JsonValue] = list(added)
                entry = dataclasses.replace(audit, after={key: listed}) if audit.after is None else audit
                append_entry(conn, fill_audit(entry, None, row.change_ticket), now)
            head = record_wave_heads(conn, row.id)
        return dataclasses.replace(wave_row(row), settings=cast(JsonObject, checked), updated_at=now, audit_head=head)

    def set_wave_state(
        self, name: str, to: str, *, expected_from: str | None = None, audit: AuditEntry | None = None
    ) -> WaveRow:
        """Change a wave's state; with ``expected_from``, only from that state (else :class:`ConcurrentUpdate`)."""
        now = self._now()
        with self._tx(f"set state of wave {name!r}", write=True) as conn:
            lock_chain(conn)
            row = self._wave(conn, name, "set wave state")
            condition = [waves.c.id == row.id]
            if expected_from is not None:
                condition.append(waves.c.state == expected_from)
            result = conn.execute(update(waves).where(*condition).values(state=to, updated_at=now))
            if result.rowcount != 1:
                raise ConcurrentUpdate(
                    f"set wave state: wave {name!r} is in state {row.state!r}, not {expected_from!r}",
                    current_state=row.state,
                    current_version=0,
                )
            if audit is not None:
                append_entry(conn, fill_audit(audit, None, row.change_ticket), now)
            head = record_wave_heads(conn, row.id)
        return dataclasses.replace(wave_row(row), state=to, updated_at=now, audit_head=head)


def wave_row(row: Row[Any]) -> WaveRow:
    return WaveRow(
        row.id,
        row.name,
        row.change_ticket,
        row.playbook_name,
        row.playbook_hash,
        row.settings,
        row.state,
        row.created_at,
        row.updated_at,
        AuditHead(row.audit_entries, row.audit_head) if row.audit_head is not None else None,
    )
