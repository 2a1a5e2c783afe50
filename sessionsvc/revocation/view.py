"""The in-memory revocation view: what every validator consults on every request (pure).

Invariants:

- **Grow-only with expiry.** ``apply`` never un-revokes: a later entry for the same session, token
  or user can only extend what is kept (the larger ``before``, the later ``until``). Entries leave
  only through ``prune`` once ``until`` has passed, i.e. once no token they could match can still
  be valid. Re-applying an entry is harmless, so ``merge`` of two views is a plain union.
- **Generation.** ``generation`` increases whenever an entry could newly reject a token (a new or
  widened entry), never on ``prune``. A validator that checked a token at generation *g* may trust
  that result while the generation is still *g*: this is how the verified-token cache stays a few
  dict look-ups without ever skipping a revocation.
- Key revocations are kept until the process ends (the key is removed from config by then).
- Sessions and tokens — the kinds that number in the millions — are ``ExpiringIds``: fingerprints
  with minute-rounded expiry (see ``sessionsvc.revocation.idset``); they can be tested, not listed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal, get_args

from sessionsvc.errors import EventRejected
from sessionsvc.revocation.idset import ExpiringIds

__all__ = ["KINDS", "Revocation", "RevocationView"]

Kind = Literal["session", "user", "token", "all", "key"]
KINDS: Final[frozenset[str]] = frozenset(get_args(Kind))
FOREVER: Final = math.inf
_NUMBERS: Final = (int, float)  # exact types: bool (an int subclass) is refused


@dataclass(frozen=True, slots=True)
class Revocation:
    """One revocation. ``value`` is the sid, sub, jti or kid ("" for ``all``); ``before`` applies
    to ``user`` and ``all`` (tokens with ``iat < before`` are rejected); ``until`` is when the
    entry may be forgotten (``inf``: never)."""

    kind: Kind
    value: str = ""
    before: float = 0.0
    until: float = FOREVER

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise EventRejected("unknown_type", f"unknown revocation kind {self.kind!r}")
        if not isinstance(self.value, str) or (self.kind == "all") != (self.value == ""):
            raise EventRejected("bad_field", "'all' takes no value; every other kind needs one")
        before, until = self.before, self.until  # NaN would make max() drop a revocation
        if (
            type(before) not in _NUMBERS
            or type(until) not in _NUMBERS
            or math.isnan(before)
            or math.isnan(until)
        ):
            raise EventRejected(
                "bad_field", "before and until must be numbers (seconds since the epoch)"
            )


class RevocationView:
    """Revoked sessions, tokens, users-before, a global before and keys, with expiry."""

    def __init__(self) -> None:
        self.sessions = ExpiringIds()
        self.tokens = ExpiringIds()
        self.users: dict[str, tuple[float, float]] = {}
        self.keys: set[str] = set()
        self.global_before: tuple[float, float] = (0.0, 0.0)
        self.generation = 0

    def __len__(self) -> int:
        return len(self.sessions) + len(self.tokens) + len(self.users) + len(self.keys)

    def apply(self, rev: Revocation) -> bool:
        """Add one revocation; True when it can reject a token it could not before (and then
        ``generation`` moved). Extending an entry's ``until`` is kept but is not a change."""
        if rev.kind == "session":
            changed = self.sessions.add(rev.value, rev.until)
        elif rev.kind == "token":
            changed = self.tokens.add(rev.value, rev.until)
        elif rev.kind == "key":
            changed = rev.value not in self.keys
            self.keys.add(rev.value)
        elif rev.kind == "user":
            old = self.users.get(rev.value, (0.0, 0.0))
            self.users[rev.value] = (max(old[0], rev.before), max(old[1], rev.until))
            changed = rev.before > old[0]
        else:
            old = self.global_before
            self.global_before = (max(old[0], rev.before), max(old[1], rev.until))
            changed = rev.before > old[0]
        if changed:
            self.generation += 1
        return changed

    def add_ids(self, kind: Kind, values: Iterable[str], until: float) -> list[str]:
        """Bulk ``apply`` of ``session`` or ``token`` ids sharing one ``until`` (the snapshot
        path). Returns the values that were new."""
        table = self.sessions if kind == "session" else self.tokens
        new = table.add_many(values, until)
        if new:
            self.generation += 1
        return new

    def merge(self, other: RevocationView) -> None:
        """Union ``other`` into this view (bootstrap after a failover never forgets)."""
        if self.sessions.merge(other.sessions) + self.tokens.merge(other.tokens):
            self.generation += 1
        for sub, (before, until) in other.users.items():
            self.apply(Revocation("user", sub, before=before, until=until))
        for kid in other.keys:
            self.apply(Revocation("key", kid))
        if other.global_before[0]:
            before, until = other.global_before
            self.apply(Revocation("all", before=before, until=until))

    def prune(self, now: float) -> int:
        """Forget entries whose ``until`` has passed; return how many went."""
        dropped = self.sessions.prune(now) + self.tokens.prune(now)
        dead = [k for k, (_, until) in self.users.items() if until <= now]
        for k in dead:
            del self.users[k]
        if self.global_before[0] and self.global_before[1] <= now:
            self.global_before = (0.0, 0.0)
            dropped += 1
        return dropped + len(dead)

    def check(self, sid: str, jti: str, sub: str, iat: int, kid: str) -> Kind | None:
        """The kind of revocation that rejects a token with these claims, or ``None``."""
        if sid in self.sessions:
            return "session"
        if jti in self.tokens:
            return "token"
        user = self.users.get(sub)
        if user is not None and iat < user[0]:
            return "user"
        if iat < self.global_before[0]:
            return "all"
        if kid in self.keys:
            return "key"
        return None
