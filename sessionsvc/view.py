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
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal, get_args

__all__ = ["KINDS", "Revocation", "RevocationView"]

Kind = Literal["session", "user", "token", "all", "key"]
KINDS: Final[frozenset[str]] = frozenset(get_args(Kind))
FOREVER: Final = math.inf


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
            raise ValueError(f"unknown revocation kind {self.kind!r}")
        if (self.kind == "all") != (self.value == ""):
            raise ValueError("'all' takes no value; every other kind needs one")
        for name in ("before", "until"):  # NaN would make max() drop a revocation silently
            t = getattr(self, name)
            if isinstance(t, bool) or not isinstance(t, int | float) or math.isnan(t):
                raise ValueError(f"{name} must be a number (seconds since the epoch)")


class RevocationView:
    """Revoked sessions, tokens, users-before, a global before and keys, with expiry."""

    def __init__(self) -> None:
        self.sessions: dict[str, float] = {}
        self.tokens: dict[str, float] = {}
        self.users: dict[str, tuple[float, float]] = {}
        self.keys: set[str] = set()
        self.global_before: tuple[float, float] = (0.0, 0.0)
        self.generation = 0

    def __len__(self) -> int:
        return len(self.sessions) + len(self.tokens) + len(self.users) + len(self.keys)

    def apply(self, rev: Revocation) -> bool:
        """Add one revocation; True when the view changed (and ``generation`` moved)."""
        changed = False
        if rev.kind == "session":
            changed = _extend(self.sessions, rev.value, rev.until)
        elif rev.kind == "token":
            changed = _extend(self.tokens, rev.value, rev.until)
        elif rev.kind == "key":
            changed = rev.value not in self.keys
            self.keys.add(rev.value)
        elif rev.kind == "user":
            old = self.users.get(rev.value, (0.0, 0.0))
            new = (max(old[0], rev.before), max(old[1], rev.until))
            changed = new != old
            self.users[rev.value] = new
        else:
            old = self.global_before
            self.global_before = (max(old[0], rev.before), max(old[1], rev.until))
            changed = self.global_before != old
        if changed:
            self.generation += 1
        return changed

    def merge(self, other: RevocationView) -> None:
        """Union ``other`` into this view (bootstrap after a failover never forgets)."""
        for rev in other.entries():
            self.apply(rev)

    def entries(self) -> list[Revocation]:
        """Every entry as a ``Revocation`` (for merge, snapshots and debugging)."""
        out = [Revocation("session", s, until=u) for s, u in self.sessions.items()]
        out += [Revocation("token", t, until=u) for t, u in self.tokens.items()]
        out += [Revocation("user", s, before=b, until=u) for s, (b, u) in self.users.items()]
        out += [Revocation("key", k) for k in self.keys]
        if self.global_before[0]:
            out.append(Revocation("all", before=self.global_before[0], until=self.global_before[1]))
        return out

    def prune(self, now: float) -> int:
        """Forget entries whose ``until`` has passed; return how many went."""
        dropped = 0
        for table in (self.sessions, self.tokens):
            dead = [k for k, until in table.items() if until <= now]
            for k in dead:
                del table[k]
            dropped += len(dead)
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


def _extend(table: dict[str, float], key: str, until: float) -> bool:
    old = table.get(key)
    if old is not None and old >= until:
        return False
    table[key] = until
    return True
