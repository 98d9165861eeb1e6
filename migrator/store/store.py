"""The store: one SQLAlchemy Core engine over SQLite (WAL, in ``state/``) or PostgreSQL (several workers).

Theory of operation
-------------------
* Every public method is one short transaction on a connection borrowed from the engine's pool, so one
  :class:`Store` serves a thread pool. On SQLite every writing transaction starts with ``BEGIN IMMEDIATE``: it
  takes the single writer lock up front (waiting up to ``busy_timeout``) instead of failing halfway when a read
  would have to become a write, and it serialises check-then-write sequences such as :meth:`Store.transition`
  and the audit append. On PostgreSQL the same sequences are made safe by conditional UPDATEs (``WHERE state =
  ... AND version = ...``, re-checked by READ COMMITTED after a concurrent commit), the device row read ``FOR
  UPDATE`` by a write that checks it first (a transition; a fenced intent: the lease cannot change hands
  between the check and the write), unique constraints read back inside savepoints, and a table lock for the
  audit chain. Reads on PostgreSQL run in REPEATABLE READ, so that, as on SQLite, a reader sees one moment of
  the store (a verification amid appends never sees a head ahead of its chain).
  ``tests/store/test_processes.py`` has four processes write at once to check all of it on both back ends.
* :meth:`Store.transition` is the one funnel for state changes (architecture rule 2): the state check, the new
  state and version, the transition row and the audit entry commit together or not at all.
* The journal (rule 3): :meth:`Store.intent` commits before it returns, so a side effect is only ever started
  with its intent on disk; :meth:`Store.outcome` records what happened; an intent without outcome after a
  restart is *in doubt* (:meth:`Store.in_doubt`) and is settled with :meth:`Store.resolve` after re-reading the
  device, never by repeating the effect.
* The audit log is a hash chain whose head (entry count, last hash) is also kept outside the audit table, in
  ``audit_head`` (moved by every append, in its transaction) and in each wave row: a cut-off tail or a rebuilt
  chain disagrees with them (:mod:`migrator.store.audit`).
* ``Store.open(..., read_only=True)`` (the commands that only read) creates, migrates and writes nothing: SQLite
  through ``mode=ro``, PostgreSQL in read-only transactions. Every open first makes sure the location holds a
  migrator store of a version it knows, reading the file without writing it: an empty file, a file that is not
  SQLite, somebody else's database or a newer store is refused as it was found.
* Times come from the injected ``now`` clock and are stored as UTC.
* Foreign exceptions are translated once, in :func:`translate_error`, into :mod:`migrator.store.errors`.

Layout
------
:class:`Store` is a facade: one mixin per aggregate, each in its own module and each over the same
:class:`~migrator.store.core.StoreCore` (engine, clock, dialect, ``_tx`` and the shared row lookups):

=============================  =================================================================================
:mod:`migrator.store.waves`    waves (:meth:`Store.create_wave`, :meth:`Store.set_wave_state` ...)
:mod:`migrator.store.devices`  devices and users, the funnel of their state changes, facts, policy snapshots
:mod:`migrator.store.journal`  step attempts, the intent/outcome journal, in-doubt entries
:mod:`migrator.store.leases`   who may act on a device now (:meth:`Store.acquire` ...)
:mod:`migrator.store.claims`   batches released to workers, due devices claimed, the workers' heartbeats
:mod:`migrator.store.auditing` the hash-chained audit log (the chain itself: :mod:`migrator.store.audit`)
:mod:`migrator.store.exports`  read-only views across aggregates for reports and rollback
=============================  =================================================================================

An aggregate that has to audit or fence a change inside its own transaction calls the other aggregate's
function on the same connection (:func:`migrator.store.auditing.append_entry`,
:func:`migrator.store.leases.check_lease`), never a second transaction.
"""

from __future__ import annotations

from migrator.store.auditing import AuditMixin
from migrator.store.claims import ClaimsMixin
from migrator.store.core import DB_FILE_NAME, Clock, StoreCore, resolve_url, translate_error, utc_now
from migrator.store.devices import DevicesMixin, registry_key_fold
from migrator.store.directory import DirectoryChangesMixin
from migrator.store.exports import ExportsMixin
from migrator.store.journal import JournalMixin
from migrator.store.leases import LeasesMixin
from migrator.store.waves import WavesMixin, content_hash


class Store(
    WavesMixin,
    DevicesMixin,
    JournalMixin,
    DirectoryChangesMixin,
    LeasesMixin,
    ClaimsMixin,
    AuditMixin,
    ExportsMixin,
    StoreCore,
):
    """Persistence of waves, devices, users, transitions, steps, facts, policy snapshots, journal and audit.

    Open with :meth:`open`; close with :meth:`close` (or use as a context manager)."""


__all__ = [
    "DB_FILE_NAME",
    "Clock",
    "Store",
    "content_hash",
    "registry_key_fold",
    "resolve_url",
    "translate_error",
    "utc_now",
]
