"""Logs: structlog JSON lines to ``state/logs/migrator.jsonl`` and a human console renderer, secrets redacted.

Theory of operation
-------------------
structlog renders through the standard library's ``logging`` (``ProcessorFormatter``), so records from
structlog loggers and from plain ``logging`` loggers (the machine's, the libraries') go through the same
processors and reach the same two sinks: a JSON-lines file (one object per line: ``timestamp``, ``level``,
``event`` and the bound ``wave``, ``device``, ``user``, ``step``, ``attempt``...) and, for interactive use, a
console renderer on standard error.

Architecture rule 7 (secrets never reach logs) is enforced by :func:`redact`, the last processor before either
renderer: a value under a key that looks like a secret (``password``, ``secret``, ``token``, ``credential``...)
is replaced, and so is every occurrence of a *registered* secret value (the current credentials' password, via
:func:`register_secret`) in any string — the message, a bound value, a rendered exception.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Iterable, Mapping, MutableMapping
from pathlib import Path
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

LOG_FILE_NAME = "migrator.jsonl"
MASK = "**********"
SECRET_KEY = re.compile(r"password|passwd|secret|token|credential|authorization|api[_-]?key", re.IGNORECASE)
_HANDLER_MARK = "_migrator_handler"

# A library does not print on its own: without configure_logging(), records go nowhere.
logging.getLogger("migrator").addHandler(logging.NullHandler())

_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Redact this value wherever it appears in a log record (a password of the current credentials)."""
    if value and len(value) >= 3:  # shorter strings would mask ordinary words
        with _secrets_lock:
            _secrets.add(value)


def forget_secrets() -> None:
    with _secrets_lock:
        _secrets.clear()


def redact_text(text: str) -> str:
    """``text`` with every registered secret replaced by the mask (for stored error messages too)."""
    with _secrets_lock:
        values = sorted(_secrets, key=len, reverse=True)
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    return text


def _redact_value(key: str, value: Any) -> Any:
    if SECRET_KEY.search(key) and value not in (None, True, False) and not key.endswith(("_present", "_count")):
        return MASK
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {str(k): _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(key, v) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return redact_text(repr(value))


def redact(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask secret-looking keys and registered secret values, recursively."""
    out: MutableMapping[str, Any] = {}
    for key, value in event_dict.items():
        out[key] = _redact_value(str(key), value)
    return dict(out)


_SHARED: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.processors.StackInfoRenderer(),
    structlog.processors.format_exc_info,
]


def configure_logging(
    log_dir: Path | None,
    *,
    console: bool = False,
    level: int | str = logging.INFO,
    secrets: Iterable[str] = (),
) -> Path | None:
    """Send every log record to ``log_dir/migrator.jsonl`` (JSON lines) and, with ``console``, to stderr.

    Idempotent: calling again replaces the handlers this function installed. Returns the log file's path."""
    for value in secrets:
        register_secret(value)
    root = logging.getLogger("migrator")
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)
    root.propagate = False
    path: Path | None = None
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        path = log_dir / LOG_FILE_NAME
        file_handler = logging.FileHandler(path, encoding="utf-8")
        file_handler.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                foreign_pre_chain=_SHARED,
                processors=[
                    *_SHARED[1:],
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    redact,
                    structlog.processors.JSONRenderer(default=str),
                ],
            )
        )
        setattr(file_handler, _HANDLER_MARK, True)
        root.addHandler(file_handler)
    if console:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                foreign_pre_chain=_SHARED,
                processors=[
                    *_SHARED[1:],
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    redact,
                    structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()),
                ],
            )
        )
        setattr(stream, _HANDLER_MARK, True)
        root.addHandler(stream)
    return path


def get_logger(name: str = "migrator", **bound: Any) -> structlog.stdlib.BoundLogger:
    """A logger under ``migrator`` with ``bound`` values (wave, device, user, step, attempt...)."""
    # Wrapped here rather than through structlog.configure(): the project's loggers never depend on (or change)
    # a global structlog configuration an embedding program may have.
    full = name if name.startswith("migrator") else f"migrator.{name}"
    logger: structlog.stdlib.BoundLogger = structlog.wrap_logger(
        logging.getLogger(full),
        processors=[*_SHARED[:1], structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.stdlib.BoundLogger,
    )
    return logger.bind(**bound) if bound else logger
