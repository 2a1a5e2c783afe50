"""``ready(validator)``: the readiness verdict for an application's probe (pure).

Not ready exactly while the validator is stale, as the staleness policy defines it: its view was
last proven current longer than ``MAX_STALENESS`` ago, or (following) no snapshot has arrived
yet. A validator that never followed holds a local view, which is never stale (``Validator``).
Reasons are fixed texts with numbers: no URL, no key, no token.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from sessionsvc.validator import Validator

__all__ = ["Readiness", "ready"]


class Readiness(NamedTuple):
    """``(ok, reason)``: ``ok`` False means take this node out of service; ``reason`` says why
    (for the probe's response body and logs)."""

    ok: bool
    reason: str


def ready(validator: Validator) -> Readiness:
    """Whether ``validator`` may serve: False while it is stale (``Validator.health()``)."""
    health = validator.health()
    if not health["stale"]:
        return Readiness(True, "ready")
    limit = validator.settings.max_staleness
    if not health["following"]:
        return Readiness(False, "not ready: stopped following the revocation log")
    staleness = health["staleness_seconds"]
    if math.isinf(staleness):
        return Readiness(False, "not ready: no snapshot of the revocation log yet")
    return Readiness(
        False,
        f"not ready: stale, the revocation view was last proven current {staleness:.1f} s ago "
        f"(MAX_STALENESS {limit:g} s)",
    )
