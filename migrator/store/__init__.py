"""Persistence (SQLAlchemy Core): SQLite with WAL in ``state/`` by default, PostgreSQL for several workers.

The store keeps waves, devices and their users, every state transition (through one funnel,
:meth:`Store.transition`), step attempts, facts read from devices, the policy values rollback restores, the
journal (intent before a side effect, outcome after), the leases that say which worker may act on a device
(:class:`LeaseOwner`: checkable owners) and a hash-chained audit log. See :mod:`.store` for the theory of
operation and the layout by aggregate, and :mod:`.errors` for what can go wrong.
"""

from __future__ import annotations

from migrator.store.codec import JsonObject, JsonValue, canonical, secret_key
from migrator.store.errors import (
    AlreadyExists,
    ConcurrentUpdate,
    DeviceInOtherWave,
    DuplicateWave,
    JournalConflict,
    LeaseNotHeld,
    NotFound,
    SchemaTooNew,
    SecretInStore,
    StoreBusy,
    StoreError,
    StoreFull,
    StoreReadOnly,
    StoreUnavailable,
    UnknownDevice,
    UnknownJournalEntry,
    UnknownStep,
    UnknownUser,
    UnknownWave,
    UnstorableValue,
)
from migrator.store.leases import LeaseOwner
from migrator.store.rows import (
    AuditEntry,
    AuditProblem,
    AuditRecord,
    AuditReport,
    DeviceRow,
    FactsSnapshot,
    JournalEntry,
    LeaseRow,
    Liveness,
    PolicyValue,
    RollbackRecord,
    StepRow,
    Timeline,
    TransitionRow,
    UserRow,
    WaveRow,
)
from migrator.store.schema import SCHEMA_VERSION
from migrator.store.store import Clock, Store, content_hash, registry_key_fold, translate_error, utc_now

__all__ = [
    "SCHEMA_VERSION",
    "AlreadyExists",
    "AuditEntry",
    "AuditProblem",
    "AuditRecord",
    "AuditReport",
    "Clock",
    "ConcurrentUpdate",
    "DeviceInOtherWave",
    "DeviceRow",
    "DuplicateWave",
    "FactsSnapshot",
    "JournalConflict",
    "JournalEntry",
    "JsonObject",
    "JsonValue",
    "LeaseNotHeld",
    "LeaseOwner",
    "LeaseRow",
    "Liveness",
    "NotFound",
    "PolicyValue",
    "RollbackRecord",
    "SchemaTooNew",
    "SecretInStore",
    "StepRow",
    "Store",
    "StoreBusy",
    "StoreError",
    "StoreFull",
    "StoreReadOnly",
    "StoreUnavailable",
    "Timeline",
    "TransitionRow",
    "UnknownDevice",
    "UnknownJournalEntry",
    "UnknownStep",
    "UnknownUser",
    "UnknownWave",
    "UnstorableValue",
    "UserRow",
    "WaveRow",
    "canonical",
    "content_hash",
    "registry_key_fold",
    "secret_key",
    "translate_error",
    "utc_now",
]
