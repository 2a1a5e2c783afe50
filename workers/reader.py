"""Reading the intakes: one ``XREADGROUP`` over every intake stream, claims by id, pending rows.

Every command whose reply holds entry contents (``XREADGROUP``, ``XCLAIM``) goes over the
worker's ``BoundedConnection``: an entry with a 50 MB field costs the worker its first 4 KiB and a
digest, never the whole (redis-py and hiredis would buffer the whole reply). Content-free
commands (``XPENDING``, ``XINFO``, ``XGROUP``) use the pooled client.

Invariants:

- One thread (the worker's reader) uses a reader; acknowledgements of entries applied inline are
  queued here and sent in the same write as the next read (``XACK`` per stream, then the read).
- Entries keep their fields in wire order, duplicates too, and remember their stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
import structlog
from redis.exceptions import RedisClusterException, ResponseError

from sessionsvc._redis.bounded import BoundedConnection
from sessionsvc._redis.clients import REDIS_ERRORS, SyncClient
from sessionsvc.encoding import as_text
from sessionsvc.idp.model import MAX_TOKEN_BYTES
from sessionsvc.revocation.intakes import Intakes

from .core import Entry
from .options import WorkerOptions
from .throttle import Throttle

__all__ = ["IntakeReader", "entries_of", "unreachable"]

log = structlog.get_logger("workers.reader")


def unreachable(client: SyncClient, exc: BaseException) -> bool:
    """Did ``exc`` happen because Redis does not answer at all (a fresh ``PING`` fails too)?
    A timeout or a reset on a reply Redis did send (e.g. one too large to read in time) is not
    that: it is this worker's failure, and it counts against liveness."""
    if isinstance(exc, RedisClusterException):  # no node of the cluster answered
        return True
    if not isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        return False
    try:
        client.ping()
    except REDIS_ERRORS:
        return True
    return False


def entries_of(stream: str, entries: Any) -> list[Entry]:
    """``[[id, fields], …]`` of one stream (raw) → ``Entry`` objects; a pending entry that was
    deleted comes back with no fields and gets an empty list."""
    return [Entry(stream, as_text(entry_id), fields or []) for entry_id, fields in entries or ()]


class IntakeReader:
    """Reads every intake of ``intakes`` as consumer ``options.consumer`` of ``options.group``."""

    def __init__(self, client: SyncClient, intakes: Intakes, options: WorkerOptions) -> None:
        self.client = client
        # (their one slot); an identity provider's token may be up to MAX_TOKEN_BYTES
        self.conn = BoundedConnection(
            client,
            key=intakes.trusted.stream,
            max_bulk=MAX_TOKEN_BYTES,
            max_array_bytes=MAX_TOKEN_BYTES + 8192,
        )
        self.streams = intakes.streams
        self.options = options
        self.acks: dict[str, list[str]] = {}
        publishers = [i.stream for i in intakes.publishers.values()]
        self.throttle = Throttle(options.publisher_rate, publishers)

    def ensure_groups(self) -> None:
        """Create the consumer group on every intake (from its first entry) where it is missing."""
        for stream in self.streams:
            try:
                self.client.xgroup_create(stream, self.options.group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def read(self) -> list[Entry]:
        """New entries of every intake (up to ``batch`` per stream), blocking up to ``block``;
        the queued acknowledgements go first, in the same write."""
        o = self.options
        block = int(min(o.block, o.heartbeat) * 1000)
        streams = [s for s in self.streams if self.throttle.readable(s)]
        read: tuple[str | int, ...] = ("XREADGROUP", "GROUP", o.group, o.consumer, "COUNT", o.batch)
        read += ("BLOCK", block, "STREAMS", *streams, *(">",) * len(streams))
        acks = [("XACK", s, o.group, *ids) for s, ids in self.acks.items() if ids]
        if not acks:
            return self._entries(self.conn(*read))
        replies = self.conn.many(*acks, read)
        for reply in replies[:-1]:
            if isinstance(reply, Exception):  # applied already: a re-delivery changes nothing
                log.warning("worker_ack_failed", error=str(reply)[:200])
        self.acks = {}
        if isinstance(replies[-1], Exception):
            raise replies[-1]
        return self._entries(replies[-1])

    def flush_acks(self) -> None:
        """Send the queued acknowledgements now (when stopping)."""
        acks = [("XACK", s, self.options.group, *ids) for s, ids in self.acks.items() if ids]
        self.acks = {}
        if acks:
            try:
                self.conn.many(*acks)
            except REDIS_ERRORS as exc:  # Redis away: the entries stay pending (applied)
                log.warning("worker_ack_failed", error=type(exc).__name__)

    def claim(self, stream: str, ids: Sequence[str], min_idle_ms: int = 0) -> list[Entry]:
        """``XCLAIM`` ``ids`` for this consumer (a delivery each) and return their contents.
        Entries deleted meanwhile are dropped from the pending list by Redis and not returned;
        with ``min_idle_ms``, neither are those another consumer touched meanwhile."""
        o = self.options
        reply = self.conn("XCLAIM", stream, o.group, o.consumer, min_idle_ms, *ids)
        return entries_of(stream, reply)

    def pending(
        self,
        stream: str,
        *,
        consumer: str | None = None,
        idle_ms: int | None = None,
        start: str = "-",
    ) -> list[tuple[str, int]]:
        """(entry id, deliveries so far) of up to ``batch`` pending entries from ``start``,
        oldest first: of one consumer, or of any consumer idle at least ``idle_ms``."""
        rows: Any = self.client.xpending_range(
            stream, self.options.group, start, "+", self.options.batch, consumer, idle=idle_ms
        )
        return [(as_text(r["message_id"]), int(r["times_delivered"])) for r in rows]

    def _entries(self, reply: Any) -> list[Entry]:
        streams = reply.items() if isinstance(reply, dict) else (reply or ())
        out: list[Entry] = []
        for stream, entries in streams:
            got = entries_of(as_text(stream), entries)
            self.throttle.take(got[0].stream if got else as_text(stream), len(got))
            out += got
        return out

    def close(self) -> None:
        """Release the bounded connection."""
        self.conn.close()
