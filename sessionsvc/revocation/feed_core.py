"""The validator feed's state machine: snapshot, tail, re-bootstrap decisions (pure, no I/O).

Invariants:

- **Union, never forget.** A snapshot is merged into the view (``RevocationView.apply`` of every
  entry); nothing a validator has seen is dropped by a re-bootstrap, whatever Redis now holds.
- **No gap.** The snapshot and the log position are read in one MULTI/EXEC; tailing resumes
  from exactly that position. On reconnect the position is compared with Redis: a different
  ``epoch`` (Redis lost its data or a failover lost writes), a trimmed id past ours, or a last id
  behind ours (we saw entries Redis no longer has) forces a new snapshot. A follower that stays
  connected but stalls (a blocked listener, a paused process) or falls a full batch behind checks
  the trim marker after its next read (``gap_possible``): entries it had not read may have been
  trimmed meanwhile, and then it re-bootstraps too.
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
from typing import Any, Final

from sessionsvc.config import Settings
from sessionsvc.revocation.events import Lifetimes
from sessionsvc.revocation.log import RevKeys, as_text, decode_entry, parse_number
from sessionsvc.revocation.view import Kind, Revocation, RevocationView

__all__ = ["FeedCore", "check_commands", "check_verdict", "make_core", "raw_entries", "stream_id"]

Listener = Callable[[Revocation], None]
Pairs = list[tuple[bytes, bytes]]
PRUNE_EVERY = 60.0
STALL = 5.0
"""Seconds of delay (beyond a read's BLOCK) after which a follower assumes it stalled. Without a
stall every unread entry is younger than ``feed_block`` + 2 x STALL, far below the shortest log
retention (60 s): nothing it has not read can have been trimmed."""
RANGES = 64
_DECODED: Final = frozenset((b"kind", b"value", b"before", b"until"))  # not id, source, …


def stream_id(value: bytes | str) -> tuple[int, int]:
    """A stream entry id as a comparable ``(ms, seq)`` pair."""
    text = value.decode() if isinstance(value, bytes) else value
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def _score(value: Any) -> float:
    """A ZSET score: bytes in RESP2, already a double (``inf`` included) in RESP3."""
    return float(value) if isinstance(value, int | float) else parse_number(as_text(value))


def _ids(flat: Sequence[Any]) -> list[tuple[str, float]]:
    """ZRANGE WITHSCORES (flat member, score list; RESP3 may pair them) → (id, until)."""
    if flat and isinstance(flat[0], list | tuple):
        return [(as_text(m), _score(u)) for m, u in flat]
    return [(as_text(flat[i]), _score(flat[i + 1])) for i in range(0, len(flat), 2)]


def raw_entries(reply: Any) -> list[tuple[str, Pairs]]:
    """Entries of a raw XREAD/XREADGROUP/XAUTOCLAIM stream reply (``HotConnection``), fields
    kept in wire order, duplicates too.

    ``[[stream, [[id, [f1, v1, f2, v2, ...]], ...]]]`` (RESP2) or ``{stream: [...]}`` (RESP3) →
    ``[(id, [(f1, v1), (f2, v2)])]``; an entry deleted while pending comes back with no fields
    and gets an empty list; a read that timed out gives ``[]``.
    """
    out: list[tuple[str, Pairs]] = []
    streams = reply.items() if isinstance(reply, dict) else (reply or ())
    for _stream, entries in streams:
        for entry_id, fields in entries:
            flat = fields or []
            pairs = [(flat[i], flat[i + 1]) for i in range(0, len(flat) - 1, 2)]
            out.append((entry_id.decode() if isinstance(entry_id, bytes) else entry_id, pairs))
    return out


def _mapping(reply: Any) -> list[tuple[Any, Any]]:
    """HGETALL as redis-py returns it (a dict) or as a flat list."""
    if isinstance(reply, dict):
        return list(reply.items())
    return [(reply[i], reply[i + 1]) for i in range(0, len(reply), 2)]


@dataclass
class FeedCore:
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
        the epoch, the log's last generated id, the trim marker, the workers' inbound report."""
        k = self.keys
        return [
            ("GET", k.epoch),
            ("XINFO", "STREAM", k.log),
            ("GET", k.trimmed),
            ("GET", k.key("inbound")),
        ]

    @staticmethod
    def position(replies: Sequence[Any]) -> list[Any]:
        """The replies of ``position_commands`` (errors in place) as what ``needs_bootstrap``
        compares: epoch, last generated id, trimmed id, inbound report."""
        epoch, info, trimmed, inbound = replies
        last: Any = "0-0"
        if isinstance(info, Exception):
            if "no such key" not in str(info).lower():
                raise info  # (no log yet is "no such key": nothing was ever revoked)
        else:
            items = (
                info.items() if isinstance(info, dict) else zip(info[::2], info[1::2], strict=True)
            )
            last = {as_text(k): v for k, v in items}.get("last-generated-id", "0-0")
        for reply in (epoch, trimmed, inbound):
            if isinstance(reply, Exception):
                raise reply
        return [epoch, last, trimmed or "0-0", inbound]

    def snapshot_bounds(self, now: float) -> list[float]:
        """Upper score bounds of the ranges session and token ids are read in: geometric from
        one minute to ``horizon`` ahead, so an id is kept at most ~16% longer than it needs."""
        ratio = (max(self.horizon, 120.0) / 60.0) ** (1 / (RANGES - 1))
        return [now + 60.0 * ratio**j for j in range(RANGES)]

    def snapshot_commands(self, now: float, epoch: str) -> list[tuple[Any, ...]]:
        """The commands of one MULTI/EXEC that reads the whole state and the log position
        atomically. Ids come without scores, by range (``snapshot_bounds``): a million of them
        cost a fraction of what member+score pairs or a Lua copy would."""
        k = self.keys
        cmds: list[tuple[Any, ...]] = [
            ("SET", k.epoch, epoch, "NX"),
            ("GET", k.epoch),
            ("GET", k.trimmed),
            ("XREVRANGE", k.log, "+", "-", "COUNT", 1),
        ]
        for key in (k.key("sid"), k.key("jti")):
            low = "-inf"
            for bound in self.snapshot_bounds(now):
                cmds.append(("ZRANGE", key, low, repr(bound), "BYSCORE"))
                low = f"({bound!r}"
            cmds.append(("ZRANGE", key, low, "+inf", "BYSCORE", "WITHSCORES"))
        cmds += [
            ("HGETALL", k.key("user")),
            ("ZRANGE", k.key("user:until"), 0, -1, "WITHSCORES"),
            ("HGETALL", k.key("all")),
            ("SMEMBERS", k.key("kid")),
        ]
        return cmds

    def load_snapshot(self, replies: Sequence[Any], now: float) -> int:
        """Union the replies of ``snapshot_commands(now, …)`` into the view; return how many
        entries were new (listeners hear each of them)."""
        epoch, trimmed, newest = replies[1], replies[2], replies[3]
        bounds = self.snapshot_bounds(now)
        new: list[tuple[str, str]] = []  # only collected when someone listens
        count = 0
        at = 4
        for kind in ("session", "token"):
            for bound, members in zip(bounds, replies[at : at + RANGES], strict=True):
                added = self.view.add_ids(kind, [as_text(m) for m in members], bound)
                count += len(added)
                if self.listeners:
                    new += [(kind, value) for value in added]
            for value, until in _ids(replies[at + RANGES]):  # beyond the horizon: exact
                if self.view.apply(Revocation(kind, value, until=until)):
                    count += 1
                    new.append((kind, value))
            at += RANGES + 1
        users, user_until, glob, kids = replies[at : at + 4]
        untils = dict(_ids(user_until))
        entries = [
            Revocation(
                "user",
                as_text(sub),
                before=parse_number(as_text(before)),
                until=untils.get(as_text(sub), math.inf),
            )
            for sub, before in _mapping(users)
        ]
        g = {as_text(name): as_text(value) for name, value in _mapping(glob)}
        if "before" in g:
            entries.append(
                Revocation(
                    "all",
                    before=parse_number(g["before"]),
                    until=parse_number(g.get("until", "inf")),
                )
            )
        entries += [Revocation("key", as_text(kid)) for kid in kids]
        changed = [rev for rev in entries if self.view.apply(rev)]
        last = as_text(newest[0][0]) if newest else "0-0"
        if trimmed is not None and stream_id(trimmed) > stream_id(last):
            last = as_text(trimmed)  # the log was trimmed empty: resume after what was cut
        self.epoch, self.last_id = as_text(epoch), last
        self.bootstraps += 1
        if self.listeners:
            self._notify([Revocation(kind, value) for kind, value in new] + changed)  # type: ignore[arg-type]
        return count + len(changed)

    def bootstrapped(self, replies: Sequence[Any], sent: float) -> dict[str, Any]:
        """Load a snapshot read at ``sent`` and mark the view fresh as of then; return what the
        shells log (``feed_bootstrapped``)."""
        changed = self.load_snapshot(replies, sent)
        self.mark_fresh(sent)
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
        )

    def apply_entries(self, entries: Sequence[tuple[str, Pairs]]) -> list[Revocation]:
        """Apply tailed log entries (``raw_entries``) in order; return the revocations applied."""
        applied = []
        for entry_id, pairs in entries:
            self.last_id = entry_id
            try:
                rev = decode_entry({k: v for k, v in pairs if k in _DECODED})
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


def check_commands(keys: RevKeys, ids: tuple[str, str, str, int, str]) -> list[tuple[Any, ...]]:
    """The ``direct`` policy's reads for one token (one MULTI/EXEC, no script)."""
    sid, jti, sub, _iat, kid = ids
    return [
        ("ZSCORE", keys.key("sid"), sid),
        ("ZSCORE", keys.key("jti"), jti),
        ("HGET", keys.key("user"), sub),
        ("HGET", keys.key("all"), "before"),
        ("SISMEMBER", keys.key("kid"), kid),
    ]


def check_verdict(replies: Sequence[Any], iat: int, now: float) -> Kind | None:
    """The kind of revocation the replies of ``check_commands`` say rejects the token."""
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    sid_until, jti_until, user_before, all_before, key = replies

    def live(score: Any) -> bool:
        return score is not None and _score(score) > now

    if live(sid_until):
        return "session"
    if live(jti_until):
        return "token"
    if user_before is not None and iat < parse_number(as_text(user_before)):
        return "user"
    if all_before is not None and iat < parse_number(as_text(all_before)):
        return "all"
    if key:
        return "key"
    return None


def make_core(view: RevocationView, settings: Settings) -> FeedCore:
    """A ``FeedCore`` for ``settings`` (namespace, staleness, the longest revocation horizon)."""
    horizon = Lifetimes.of(settings).longest
    core = FeedCore(view, RevKeys(settings.namespace), settings.max_staleness, horizon)
    core.block = settings.feed_block
    return core
