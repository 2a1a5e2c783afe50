"""The validator feed's state machine: snapshot, tail, re-bootstrap decisions (pure, no I/O).

Invariants:

- **Union, never forget.** A snapshot is merged into the view (``RevocationView.apply`` of every
  entry); nothing a validator has seen is dropped by a re-bootstrap, whatever Redis now holds.
- **No gap.** The snapshot and the log position are read in one atomic script; tailing resumes
  from exactly that position. On reconnect the position is compared with Redis: a different
  ``epoch`` (Redis lost its data or a failover lost writes), a trimmed id past ours, or a last id
  behind ours (we saw entries Redis no longer has) forces a new snapshot.
- **Freshness is measured.** Each return of a blocking XREAD, with data or empty at its timeout,
  proves the view current at the moment the read was *sent*; ``fresh_at`` is that moment and the
  view is stale once ``fresh_at + max_staleness`` has passed.
- A log entry that cannot be decoded is counted and skipped, never fatal: the follower must not
  stop following because one writer misbehaved.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._scripts import source
from .revoker import RevKeys, decode_entry, parse_number
from .view import Revocation, RevocationView

__all__ = ["CHECK", "POSITION", "SNAPSHOT", "FeedCore", "stream_id"]

SNAPSHOT = source("apply", "snapshot")
POSITION = source("position")
CHECK = source("apply", "check")

Listener = Callable[[Revocation], None]


def stream_id(value: bytes | str) -> tuple[int, int]:
    """A stream entry id as a comparable ``(ms, seq)`` pair."""
    text = value.decode() if isinstance(value, bytes) else value
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def _s(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _pairs(flat: Sequence[Any]) -> list[tuple[str, str]]:
    return [(_s(flat[i]), _s(flat[i + 1])) for i in range(0, len(flat), 2)]


@dataclass
class FeedCore:
    """What a follower knows: the view it fills, its log position, freshness and counters."""

    view: RevocationView
    keys: RevKeys
    max_staleness: float
    listeners: list[Listener] = field(default_factory=list)
    epoch: str | None = None
    last_id: str = "0-0"
    fresh_at: float = -math.inf
    applied: int = 0
    bad_entries: int = 0
    bootstraps: int = 0
    reconnects: int = 0
    listener_errors: int = 0

    @property
    def stale_after(self) -> float:
        """The moment the view stops being known-fresh."""
        return self.fresh_at + self.max_staleness

    def snapshot_keys(self) -> list[str]:
        """KEYS of ``SNAPSHOT`` (and ``CHECK``'s first eight)."""
        return [*self.keys.all(), self.keys.trimmed]

    def position_keys(self) -> list[str]:
        """KEYS of ``POSITION``."""
        return [self.keys.epoch, self.keys.log, self.keys.trimmed]

    def load_snapshot(self, reply: Sequence[Any]) -> list[Revocation]:
        """Union a ``SNAPSHOT`` reply into the view; return the entries that changed it."""
        epoch, last, _trimmed, sids, jtis, users, user_until, all_, kids = reply
        entries = [Revocation("session", s, until=parse_number(u)) for s, u in _pairs(sids)]
        entries += [Revocation("token", t, until=parse_number(u)) for t, u in _pairs(jtis)]
        untils = dict(_pairs(user_until))
        for sub, before in _pairs(users):
            until = parse_number(untils.get(sub, "inf"))
            entries.append(Revocation("user", sub, before=parse_number(before), until=until))
        glob = dict(_pairs(all_))
        if "before" in glob:
            entries.append(Revocation("all", before=parse_number(glob["before"]),
                                      until=parse_number(glob.get("until", "inf"))))  # fmt: skip
        entries += [Revocation("key", _s(k)) for k in kids]
        changed = [rev for rev in entries if self.view.apply(rev)]
        self.epoch, self.last_id = _s(epoch), _s(last)
        self.bootstraps += 1
        self._notify(changed)
        return changed

    def needs_bootstrap(self, position: Sequence[Any]) -> bool:
        """Compare a ``POSITION`` reply with what we hold (see the module invariants)."""
        if self.epoch is None:
            return True
        epoch, last, trimmed = position
        ours = stream_id(self.last_id)
        return (
            epoch is None
            or _s(epoch) != self.epoch
            or stream_id(trimmed) > ours
            or stream_id(last) < ours
        )

    def apply_entries(self, entries: Sequence[tuple[Any, Any]]) -> list[Revocation]:
        """Apply tailed log entries ``(id, fields)`` in order; return the revocations applied."""
        applied = []
        for entry_id, fields in entries:
            self.last_id = _s(entry_id)
            try:
                rev = decode_entry(fields)
            except ValueError:
                self.bad_entries += 1
                continue
            self.view.apply(rev)
            applied.append(rev)
        self.applied += len(applied)
        self._notify(applied)
        return applied

    def mark_fresh(self, sent_at: float) -> float:
        """A blocking read sent at ``sent_at`` returned: the view was current then."""
        self.fresh_at = max(self.fresh_at, sent_at)
        return self.stale_after

    def _notify(self, revs: list[Revocation]) -> None:
        for rev in revs:
            for listener in self.listeners:
                try:
                    listener(rev)
                except Exception:
                    self.listener_errors += 1
