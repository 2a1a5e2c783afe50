"""What a scrape reads off one validator's live state: a ``Reading`` (pure).

Nothing here runs on the validation path: ``read`` is called at scrape time and copies the
counters the validator, its view and its feed already keep (``Validator.health()``, the view's
tables, ``Validator.rejections`` and ``Validator.verifications``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sessionsvc.validator import Validator

__all__ = ["VIEW_KINDS", "Reading", "read"]

VIEW_KINDS = ("session", "token", "user", "key", "all")
"""The kinds of revocation the view holds (``all``: 1 while a global cutoff is in force)."""


@dataclass(frozen=True, slots=True)
class Reading:
    """One validator's numbers at one moment (see ``sessionsvc.metrics`` for their meaning)."""

    following: bool
    stale: bool
    staleness_seconds: float
    max_staleness_seconds: float
    view_entries: dict[str, int]
    rejections: dict[str, int]
    stale_accepts: int
    cache_entries: int
    cache_max_entries: int
    cache_misses: int
    applied_entries: int
    bad_entries: int
    reconnects: int
    bootstraps: int
    feed_errors: int
    listener_errors: int
    ticks: int
    key_reloads: int
    key_reload_failures: int
    inbound_lag_seconds: float | None
    inbound_report_age_seconds: float | None


def read(validator: Validator) -> Reading:
    """Copy ``validator``'s counters now (cheap: a few ``len`` calls and a dict copy)."""
    health = validator.health()
    view = validator.view
    return Reading(
        following=health["following"],
        stale=health["stale"],
        staleness_seconds=health["staleness_seconds"],
        max_staleness_seconds=validator.settings.max_staleness,
        view_entries={
            "session": len(view.sessions),
            "token": len(view.tokens),
            "user": len(view.users),
            "key": len(view.keys),
            "all": 1 if view.global_before[0] else 0,
        },
        rejections=dict(validator.rejections),
        stale_accepts=health["stale_accepts"],
        cache_entries=health["cache_size"],
        cache_max_entries=validator.settings.cache_size,
        cache_misses=validator.verifications,
        applied_entries=health["applied_entries"],
        bad_entries=health["bad_entries"],
        reconnects=health["reconnects"],
        bootstraps=health["bootstraps"],
        feed_errors=health["feed_errors"],
        listener_errors=health["listener_errors"],
        ticks=health["ticks"],
        key_reloads=health["key_reloads"],
        key_reload_failures=health["key_reload_failures"],
        inbound_lag_seconds=health["inbound_lag_seconds"],
        inbound_report_age_seconds=health["inbound_report_age_seconds"],
    )
