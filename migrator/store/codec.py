"""What goes into the store's columns: guarded canonical JSON and UTC timestamps.

Every JSON column is declared with :class:`GuardedJSON`, so every value written to one passes :func:`encode`,
which

* refuses anything that is not plain JSON (str keys; None, bool, int, finite float, str, list/tuple, dict), so
  what reads back is exactly what was written, and the audit hash of a row can be recomputed from the row;
* refuses secret-looking keys (architecture rule 7): a key containing ``password``, ``secret``, ``token`` or
  ``credential`` (any case) is refused unless its value cannot carry a secret (``True``/``False``/``None``) or
  the key's last word says it is about the secret, not the secret (``..._url``, ``..._type``, ``..._present``,
  ``..._count``, ``..._name``). That keeps facts the parsers produce, such as klist's
  ``plaintext_password_present`` (bool), ``as_rep_credential_type`` (int) and dsregcmd's ``AccessTokenUrl``,
  while refusing ``password``, ``adminPassword``, ``client_secret``, ``refresh_token``, ``PSCredential``;
* refuses strings that hold a PEM private key, whatever their key.

The output is canonical (sorted keys, no spaces, UTF-8): the same value always gives the same text.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, TypeAlias

from sqlalchemy import DateTime, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from migrator.store.errors import SecretInStore, UnstorableValue

JsonValue: TypeAlias = "bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None"
JsonObject: TypeAlias = "dict[str, JsonValue]"

SECRET_WORDS = re.compile(r"password|passwd|secret|token|credential", re.IGNORECASE)
# The last word of a key that makes it a description of a secret rather than the secret itself.
DESCRIPTIVE_LAST_WORDS = frozenset({"url", "uri", "type", "present", "count", "name"})
PRIVATE_KEY_MARK = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


def _last_word(key: str) -> str:
    words = _WORDS.findall(key)
    return words[-1].lower() if words else ""


@lru_cache(maxsize=4096)
def _secret_looking(key: str) -> bool:
    """Whether a key names a secret (its value decides the rest): the store sees the same few hundred keys
    (facts, contexts, journal payloads) again and again, so the two regular expressions run once per key."""
    return bool(SECRET_WORDS.search(key)) and _last_word(key) not in DESCRIPTIVE_LAST_WORDS


def secret_key(key: str, value: object) -> bool:
    """Whether ``key: value`` looks like a secret that must not be stored."""
    if value is None or isinstance(value, bool):
        return False
    return _secret_looking(key)


def _path(parts: tuple[str | int, ...]) -> str:
    """A key path as the errors name it (``a.b[2].c``): built only when there is an error to report."""
    text = ""
    for part in parts:
        text = f"{text}[{part}]" if isinstance(part, int) else (f"{text}.{part}" if text else part)
    return text


def _check(value: object, parts: tuple[str | int, ...], where: str) -> JsonValue:
    """Return ``value`` as plain JSON (tuples become lists) or raise, naming the key path, never the value."""
    if value is None or isinstance(value, bool | int | str):
        # The substring test first: the pattern only runs on the rare text that could hold a PEM key.
        if isinstance(value, str) and "PRIVATE KEY-----" in value and PRIVATE_KEY_MARK.search(value):
            raise SecretInStore(f"{where}: refusing to store a private key at {_path(parts) or 'the top level'}")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise UnstorableValue(f"{where}: {_path(parts) or 'the value'} is {value!r}, which JSON cannot hold")
        return value
    if isinstance(value, Mapping):
        out: dict[str, JsonValue] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise UnstorableValue(f"{where}: key {key!r} under {_path(parts) or 'the top level'} is not a string")
            if secret_key(key, item):
                raise SecretInStore(
                    f"{where}: refusing to store {_path((*parts, key))!r}: the key looks like a secret "
                    "(password, secret, token, credential) and secrets never reach the store"
                )
            out[key] = _check(item, (*parts, key), where)
        return out
    if isinstance(value, list | tuple):
        return [_check(item, (*parts, index), where) for index, item in enumerate(value)]
    raise UnstorableValue(
        f"{where}: {_path(parts) or 'the value'} is a {type(value).__name__}; only JSON values (str, int, float, "
        "bool, None, list, dict) can be stored"
    )


def canonical(value: object, *, where: str = "value") -> str:
    """The guarded, canonical JSON text of ``value``."""
    checked = _check(value, (), where)
    return json.dumps(checked, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def guard(value: object, *, where: str = "value") -> JsonValue:
    """Check ``value`` as :func:`canonical` does and return it as plain JSON (a copy)."""
    return _check(value, (), where)


def decode(text: str | None) -> JsonValue:
    return None if text is None else json.loads(text)


class GuardedJSON(TypeDecorator[Any]):
    """A JSON column stored as canonical text; every write passes the secret guard.

    Text rather than a native JSON type: SQLite and PostgreSQL then hold the same bytes, and the audit hash is
    computed over exactly what is stored."""

    impl = Text
    cache_ok = True

    def __init__(self, where: str) -> None:
        super().__init__()
        self.where = where

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        # A SQL NULL and a JSON null differ only for nullable columns; None is SQL NULL everywhere here.
        return None if value is None else canonical(value, where=self.where)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return decode(value)


def utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is refused (its zone is unknown, and the store is shared)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise UnstorableValue(f"naive datetime {moment.isoformat()} has no time zone; the store keeps UTC")
    return moment.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetime in, aware UTC datetime out; stored as naive UTC with microseconds.

    Naive UTC keeps the text in SQLite fixed-width (``YYYY-MM-DD HH:MM:SS.ffffff``), so comparisons such as
    ``lease_expires_at <= now`` are correct on both back ends."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else utc(value).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)
