"""The validator feed's state machine: snapshot, tail, re-bootstrap decisions (pure, no I/O).

Invariants:

- **Union, never forget.** A snapshot is merged into the view (``RevocationView.apply`` of every
  entry); nothing a validator has seen is dropped by a re-bootstrap, whatever Redis now holds.
- **No gap.** The snapshot and the log position are read in one MULTI/EXEC; tailing resumes
  from exactly that position. On reconnect the position is compared with Redis: a different
  ``epoch`` (Redis lost its data), a trimmed id past ours, a last id behind ours, or a log that
  no longer holds the entry we read last (not trimmed: a failover to a replica that had not
  received it) forces a new snapshot. The last two are a failover's gap: the promoted replica's
  log is a prefix of the one we read, and what it appends next may get ids *below* ours (another
  clock), which a tail from our id would skip; a snapshot reads them, the union keeps ours. A
  follower that stays connected but stalls (a blocked listener, a paused process) or falls a
  full batch behind checks the trim marker after its next read (``gap_possible``): entries it
  had not read may have been trimmed meanwhile, and then it re-bootstraps too.
- **Freshness is measured.** Each return of a blocking XREAD, with data or empty at its timeout,
  proves the view current at the moment the read was *sent*; ``fresh_at`` is that moment and the
  view is stale once ``fresh_at + max_staleness`` has passed.
- **On a replica only entries prove it** (``from_replica``): a lagging replica answers an empty
  read as readily as a current one. There ``fresh_at`` is the primary's clock in the id of the
  newest entry read (a revocation or the worker's tick, ``sessionsvc.revocation.ticks``), never
  later than the moment the read was sent; an empty read proves nothing.
- A tick entry changes nothing in the view and is not a bad entry.
- A log entry that cannot be decoded is counted and skipped, never fatal: the follower must not
  stop following because one writer misbehaved.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from sessionsvc.config import Settings
from sessionsvc.encoding import as_text
from sessionsvc.errors import StoreUnavailable
from sessionsvc.revocation.events import Lifetimes
from sessionsvc.revocation.log import RevKeys, decode_entry
from sessionsvc.revocation.replies import Pairs, stream_id
from sessionsvc.revocation.snapshot import Snapshots
from sessionsvc.revocation.ticks import TICK, entry_time
from sessionsvc.revocation.view import Revocation, RevocationView

__all__ = ["FeedCore", "make_core"]

Listener = Callable[[Revocation], None]
PRUNE_EVERY = 60.0
STALL = 5.0
"""Seconds of delay (beyond a read's BLOCK) after which a follower assumes it stalled. Without a
stall every unread entry is younger than ``feed_block`` + 2 x STALL, far below the shortest log
retention (60 s): nothing it has not read can have been trimmed."""
_DECODED: Final = frozenset((b"kind", b"value", b"before", b"until"))  # not id, source, …


@dataclass
class FeedCore(Snapshots):
    """What a follower knows: the view it fills, its log position, freshness and counters."""

    view: RevocationView
    keys: RevKeys
    max_staleness: float
    horizon: float = 7 * 86400 + 2 * 300
    """The longest any revocation is kept (``Lifetimes.longest``): snapshot ranges."""
    listeners: list[Listener] = field(default_factory=list)
    epoch: str | None = None
    last_id: str = "0-0"
    fresh_at: float = -math.inf
    applied: int = 0
    bad_entries: int = 0
    bootstraps: int = 0
    reconnects: int = 0
    listener_errors: int = 0
    errors: int = 0
    pruned: int = 0
    next_prune: float = -math.inf
    block: float = 1.0
    """Seconds a tail read blocks (``feed_block``)."""
    read_returned: float = -math.inf
    read_suspect: bool = False
    inbound: str | None = None
    """The workers' latest inbound report (``<at> <oldest unapplied event time or ->``)."""
    from_replica: bool = False
    """The feed reads from a replica: freshness from entry ids only (module invariants)."""
    seen_at: float = -math.inf
    """The primary's clock in the id of the newest entry read (``from_replica``)."""
    ticks: int = 0
    """The workers' tick entries read (skipped)."""

    def inbound_lag(self, now: float) -> tuple[float | None, float | None]:
        """(age of the oldest inbound event not yet applied, age of the report it comes from);
        ``None`` while no worker has reported. The log's freshness says nothing of events still
        waiting in the intakes (no worker running): a report that keeps ageing says that."""
        if self.inbound is None:
            return None, None
        try:
            at_text, _, oldest_text = self.inbound.partition(" ")
            at = float(at_text)
            oldest = None if oldest_text == "-" else float(oldest_text)
        except ValueError:
            return None, None
        return (0.0 if oldest is None else max(0.0, now - oldest)), max(0.0, now - at)

    @property
    def stale_after(self) -> float:
        """The moment the view stops being known-fresh."""
        return self.fresh_at + self.max_staleness

    def position_commands(self) -> list[tuple[Any, ...]]:
        """One MULTI/EXEC of plain reads (a validator runs no scripts: its Redis user may not):
        the epoch, the log's last generated id, the trim marker, the workers' inbound report,
        and the log entry at our position (XREVRANGE: the validator's ACL has no XRANGE)."""
        k = self.keys
        return [
            ("GET", k.epoch),
            ("XINFO", "STREAM", k.log),
            ("GET", k.trimmed),
            ("GET", k.key("inbound")),
            ("XREVRANGE", k.log, self.last_id, self.last_id, "COUNT", 1),
        ]

    @staticmethod
    def position(replies: Sequence[Any]) -> list[Any]:
        """The replies of ``position_commands`` (errors in place) as what ``needs_bootstrap``
        compares: epoch, last generated id, trimmed id, inbound report, whether the log holds
        the entry at our position (absent from older callers' replies: not compared)."""
        epoch, info, trimmed, inbound, *at_ours = replies
        last: Any = "0-0"
        if isinstance(info, Exception):
            if "no such key" not in str(info).lower():
                raise info  # (no log yet is "no such key": nothing was ever revoked)
        else:
            items = (
                info.items() if isinstance(info, dict) else zip(info[::2], info[1::2], strict=True)
            )
            last = {as_text(k): v for k, v in items}.get("last-generated-id", "0-0")
        for reply in (epoch, trimmed, inbound, *at_ours):
            if isinstance(reply, Exception):
                raise reply
        return [epoch, last, trimmed or "0-0", inbound, *(bool(entry) for entry in at_ours)]

    def bootstrapped(self, replies: Sequence[Any], sent: float) -> dict[str, Any]:
        """Load a snapshot read at ``sent`` and mark the view fresh as of then (on a replica:
        as of the log's newest entry, if any; without an epoch there it is not ready,
        ``StoreUnavailable``); return what the shells log (``feed_bootstrapped``)."""
        if self.from_replica and replies[1] is None:
            raise StoreUnavailable(
                "the replica holds no revocation epoch yet (it is written by the worker's ticks "
                "and by the first revocation): is a worker running?"
            )
        changed = self.load_snapshot(replies, sent)
        if not self.from_replica:
            self.mark_fresh(sent)
        elif replies[3]:  # the newest entry of the log the snapshot read
            self.entries_seen(as_text(replies[3][0][0]), sent)
        return {"epoch": self.epoch, "new_entries": changed, "view_size": len(self.view)}

    def needs_bootstrap(self, position: Sequence[Any]) -> bool:
        """Compare a ``position`` with what we hold (see the module invariants)."""
        report = position[3] if len(position) > 3 else None
        self.inbound = None if report is None else as_text(report)
        if self.epoch is None:
            return True
        epoch, last, trimmed = position[:3]
        ours = stream_id(self.last_id)
        return (
            epoch is None
            or as_text(epoch) != self.epoch
            or stream_id(trimmed) > ours
            or stream_id(last) < ours
            or self.lost_ours(position, trimmed)
        )

    def lost_ours(self, position: Sequence[Any], trimmed: bytes | str) -> bool:
        """The log lacks the entry at our position though nothing trimmed it: it is not the
        log we read (a failover to a replica that missed it). (The snapshot position of a log
        trimmed empty is the trim marker itself, no entry: never lost.)"""
        ours = stream_id(self.last_id)
        held = position[4] if len(position) > 4 else True
        return not held and ours != (0, 0) and stream_id(trimmed) < ours

    def apply_entries(self, entries: Sequence[tuple[str, Pairs]]) -> list[Revocation]:
        """Apply tailed log entries (``raw_entries``) in order; return the revocations applied."""
        applied = []
        for entry_id, pairs in entries:
            self.last_id = entry_id
            fields = {k: v for k, v in pairs if k in _DECODED}
            if fields.get(b"kind") == TICK:
                self.ticks += 1
                continue
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

    def gap_possible(self, sent: float, returned: float, full: bool) -> bool:
        """A tail read sent at ``sent`` returned at ``returned`` (``full``: a whole batch). True
        when entries after the position it read from may have been trimmed before it read them,
        i.e. the follower stalled or fell behind: the previous read returned a full batch, this
        or the previous read took longer than ``block`` + ``STALL``, or more than ``STALL`` passed
        between the two. The caller then compares the trim marker with that position."""
        slow = returned - sent > self.block + STALL
        suspect = self.read_suspect or slow or sent - self.read_returned > STALL
        self.read_suspect = full or slow
        self.read_returned = returned
        return suspect

    @staticmethod
    def trimmed_past(since: str, trimmed: bytes | str | None) -> bool:
        """The trim marker (read *after* a read from ``since``) lies past ``since``: entries the
        read should have returned may be gone, only a snapshot can fill the gap."""
        return trimmed is not None and stream_id(trimmed) > stream_id(since)

    def entries_seen(self, newest_id: str, sent: float) -> float:
        """On a replica: a read sent at ``sent`` returned entries up to ``newest_id``; the view
        is current as of that entry's time (the primary's clock), never later than ``sent``
        (a Redis clock ahead of ours must not make a view fresher than the read)."""
        self.seen_at = max(self.seen_at, entry_time(newest_id))
        return self.mark_fresh(min(self.seen_at, sent))

    def mark_fresh(self, sent_at: float) -> float:
        """A blocking read sent at ``sent_at`` returned: the view was current then. Once a
        minute this also prunes entries no token can match any more."""
        self.fresh_at = max(self.fresh_at, sent_at)
        if sent_at >= self.next_prune:
            self.next_prune = sent_at + PRUNE_EVERY
            self.pruned += self.view.prune(sent_at)
        return self.stale_after

    def _notify(self, revs: list[Revocation]) -> None:
        for rev in revs:
            for listener in self.listeners:
                try:
                    listener(rev)
                except Exception:
                    self.listener_errors += 1


def make_core(view: RevocationView, settings: Settings) -> FeedCore:
    """A ``FeedCore`` for ``settings`` (namespace, staleness, the longest revocation horizon)."""
    horizon = Lifetimes.of(settings).longest
    core = FeedCore(view, RevKeys(settings.namespace), settings.max_staleness, horizon)
    core.block = settings.feed_block
    core.from_replica = settings.read_from_replicas
    return core
