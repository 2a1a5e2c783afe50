"""Logging through structlog, configured by entry points only (never at import time).

Production renders one JSON object per line; development renders readable console lines. The
pipeline is a list of plain callables; ``redact_secrets`` runs before rendering and masks values
of keys that name secrets, whoever logged them.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Final, TextIO, cast

import structlog

__all__ = ["SECRET_KEYS", "configure_logging", "redact_secrets"]

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
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=cast("TextIO", _Stderr())),
        cache_logger_on_first_use=False,
    )
