"""Errors of the store, by what the caller can do about them.

::

    MigratorError
    └── StoreError                 something about the store (its location is in the message)
        ├── StoreBusy              retry later: locked by another writer, serialisation failure, deadlock
        ├── StoreUnavailable       retry later: cannot reach or open the database (server down, I/O error)
        ├── StoreFull              free disk space (or raise the database's quota), then retry
        ├── StoreReadOnly          fix file permissions or the database role: the store refuses writes
        ├── SchemaTooNew           upgrade migrator: the store was written by a newer version
        ├── SchemaTooOld           migrate it first: a read-only command met a store of an older version
        ├── NoStore                fix the input: nothing at that location (a command that only reads)
        ├── NotAStore              fix the input: the file is empty, not SQLite, or SQLite without our schema
        ├── NotFound               fix the input: UnknownWave, UnknownDevice, UnknownUser, UnknownJournalEntry,
        │                          UnknownStep
        ├── AlreadyExists          fix the input: DuplicateWave, DeviceInOtherWave
        ├── ConcurrentUpdate       re-read and decide: the row changed since the caller read it
        ├── LeaseNotHeld           stop working on the device: another owner holds it (or the lease expired)
        ├── JournalConflict        a programming error: the key or the entry's status does not allow this
        └── UnstorableValue        fix the caller: a value cannot be stored as given
            └── SecretInStore      a value looks like a secret (architecture rule 7): never stored

Foreign exceptions (sqlite3, psycopg, SQLAlchemy) are translated once, in
:func:`migrator.store.core.translate_error`. Messages name what and where, never the values of parameters (they
could carry data the caller did not mean to show).
"""

from __future__ import annotations

from migrator.errors import MigratorError


class StoreError(MigratorError):
    """Base of every error the store raises."""


class StoreBusy(StoreError):
    """Another writer holds the database (SQLite: longer than busy_timeout; PostgreSQL: deadlock, lock or
    serialisation failure). Nothing was written: the operation can be repeated as is."""

    action = "retry later"


class StoreUnavailable(StoreError):
    """The database cannot be reached or opened right now (server down, connection lost, I/O error)."""

    action = "retry later"


class StoreFull(StoreError):
    action = "free disk space (or raise the database quota), then retry"


class StoreReadOnly(StoreError):
    action = "fix the file permissions or the database role so the store can be written"


class SchemaTooNew(StoreError):
    """The store's schema version is newer than this migrator knows: refusing to touch it."""

    action = "upgrade migrator, or open another store"

    def __init__(self, where: str, found: int, supported: int) -> None:
        super().__init__(
            f"store {where} has schema version {found}, newer than version {supported} that this migrator "
            "supports; refusing to open it"
        )
        self.found = found
        self.supported = supported


class SchemaTooOld(StoreError):
    """A command that only reads met a store of an older schema: it never migrates (that would write)."""

    action = "run a command that writes (`migrator resume`) once with write access, or use the older migrator"


class NoStore(StoreError):
    """Nothing at the location a command that never creates a store was given."""

    action = "pass the --state of an earlier `migrator run`"


class NotAStore(StoreError):
    """The location holds a file that is not a migrator store; it was left as it was (byte for byte)."""

    action = "pass the --state of a migrator store"


class NotFound(StoreError):
    action = "fix the input"


class UnknownWave(NotFound):
    pass


class UnknownDevice(NotFound):
    pass


class UnknownUser(NotFound):
    pass


class UnknownJournalEntry(NotFound):
    pass


class UnknownStep(NotFound):
    pass


class AlreadyExists(StoreError):
    action = "fix the input"


class DuplicateWave(AlreadyExists):
    pass


class DeviceInOtherWave(AlreadyExists):
    pass


class ConcurrentUpdate(StoreError):
    """The row is not in the state (or version) the caller expected: someone else changed it first.

    Nothing was written. ``current_state`` and ``current_version`` say what the store holds now."""

    action = "re-read the row and decide again"

    def __init__(self, message: str, *, current_state: str, current_version: int) -> None:
        super().__init__(message)
        self.current_state = current_state
        self.current_version = current_version


class LeaseNotHeld(StoreError):
    action = "stop working on this device: another owner holds it"


class JournalConflict(StoreError):
    """The idempotency key names another step, or the entry's status does not allow the change."""


class UnstorableValue(StoreError):
    """A value the store cannot hold as given (not plain JSON, a naive datetime, a path outside the enum...)."""

    action = "fix the caller: the value cannot be stored as given"


class SecretInStore(UnstorableValue):
    """A value under a secret-looking key was about to be written (architecture rule 7)."""

    action = "fix the caller: secrets never reach the store"
