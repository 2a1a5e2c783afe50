"""Logging through structlog, configured by entry points only (never at import time).

Production renders one JSON object per line; development renders readable console lines. The
pipeline is a list of plain callables; ``redact_secrets`` runs before rendering and masks values
of keys that name secrets, whoever logged them. Every line of a named logger carries its name
under ``logger`` (``sessionsvc.feed``, ``workers.worker``, …): the logger factory keeps the name
each module gives structlog, and ``add_logger_name`` puts it into the event.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Final, TextIO, cast

import structlog

__all__ = ["SECRET_KEYS", "add_logger_name", "configure_logging", "redact_secrets"]

SECRET_KEYS: Final = frozenset(
    {
        "token",
        "access_token",
        "refresh_token",
        "logout_token",
        "set",
        "password",
        "secret",
        "authorization",
        "cookie",
        "jwks",
        "key",
        "k",
        "d",
        "redis_url",
    }
)


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: replace the value of any secret-named key with ``"[redacted]"``."""
    for name in event_dict.keys() & SECRET_KEYS:
        event_dict[name] = "[redacted]"
    return event_dict


def add_logger_name(
    logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: the name the logger was created with, under ``logger`` (lines of an
    unnamed logger are left without one)."""
    name = getattr(logger, "name", None)
    if name is not None:
        event_dict["logger"] = name
    return event_dict


class _NamedPrintLogger(structlog.PrintLogger):
    """A ``PrintLogger`` that remembers the name it was created for."""

    def __init__(self, file: TextIO, name: str | None) -> None:
        super().__init__(file)
        self.name = name


class _NamedPrintLoggerFactory:
    """``PrintLoggerFactory`` that keeps the first argument of a ``get_logger`` call as the
    logger's name (``structlog.PrintLoggerFactory`` drops it)."""

    def __init__(self, file: TextIO) -> None:
        self._file = file

    def __call__(self, *args: Any) -> _NamedPrintLogger:
        name = args[0] if args and isinstance(args[0], str) else None
        return _NamedPrintLogger(self._file, name)


class _Stderr:
    """Whatever ``sys.stderr`` is when a line is written (not when logging was configured):
    background threads keep logging correctly when a test runner or an app swaps stderr."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(env: str = "production", level: int = logging.INFO) -> None:
    """Configure structlog for a process: JSON lines in production, console in development."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if env == "production"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_NamedPrintLoggerFactory(cast("TextIO", _Stderr())),
        cache_logger_on_first_use=False,
    )
