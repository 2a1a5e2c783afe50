"""The validator feed's control flow, once, as a pure op: ``Follower.follow()``.

It yields effects (``sessionsvc._redis.run``) and decides on their replies; ``Feed`` (a thread,
``run``) and ``AsyncFeed`` (an asyncio task, ``arun``) only execute them:

1. every ``CHECK_EVERY`` seconds, and after any failure, read the log position in one
   MULTI/EXEC and re-bootstrap (one MULTI/EXEC snapshot) when ``FeedCore.needs_bootstrap`` says so;
2. tail the log with ``XREAD BLOCK`` on the hot connection (``Command(..., hot=True)``: it wakes
   on every revocation in every validator process), apply what came;
3. after a stall or a full batch (``gap_possible``) read the trim marker; trimmed past our
   position → ``feed_trimmed_past`` and a forced snapshot;
4. a read that returned less than a full batch proves the view fresh as of when it was sent;
   on a replica only the entries read do, as of the newest one's id (``FeedCore.entries_seen``);
5. any failure the runner throws in (a Redis error arrives as ``StoreUnavailable``) or the core
   raises is logged (``feed_error``), counted (``reconnects`` for Redis, ``errors`` otherwise),
   and followed by a ``Sleep`` of 50 ms doubling to 2 s; the next round checks the position.

The loop ends when ``stopping`` is set (its owner's ``close``), after the current effect.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Final

import structlog
from redis.exceptions import RedisError

from sessionsvc._redis.run import Command, Op, Sleep, Transaction
from sessionsvc.errors import StoreUnavailable
from sessionsvc.revocation.feed_core import FeedCore
from sessionsvc.revocation.replies import raw_entries

__all__ = ["BATCH", "CHECK_EVERY", "FIRST_BACKOFF", "MAX_BACKOFF", "Follower"]

log = structlog.get_logger("sessionsvc.feed")
BATCH: Final = 1000
CHECK_EVERY: Final = 5.0  # seconds between position checks (epoch, trim, behind us) while tailing
FIRST_BACKOFF: Final = 0.05
MAX_BACKOFF: Final = 2.0


class Follower:
    """Follows the revocation log into ``core``; ``on_fresh(stale_after)`` reports freshness,
    ``on_synced()`` each completed position check (the first one: the view is bootstrapped)."""

    def __init__(
        self,
        core: FeedCore,
        clock: Callable[[], float],
        on_fresh: Callable[[float], None],
        on_synced: Callable[[], object],
    ) -> None:
        self.core = core
        self.stopping = False
        self._clock = clock
        self._on_fresh = on_fresh
        self._on_synced = on_synced
        self._block_ms = int(core.block * 1000)

    def follow(self) -> Op[None]:
        """The feed, until ``stopping``: position checks, snapshots, the tail, backoff."""
        clock, core = self._clock, self.core
        backoff, next_check = FIRST_BACKOFF, 0.0
        while not self.stopping:
            try:
                if clock() >= next_check:  # also after a reconnect redis-py did silently
                    yield from self._resync()
                    next_check = clock() + CHECK_EVERY
                yield from self._tail_once()
                backoff = FIRST_BACKOFF
            except Exception as exc:  # the feed must outlive any one failure
                redis_error = isinstance(exc, StoreUnavailable | RedisError)
                core.reconnects += redis_error
                core.errors += not redis_error
                cause = exc.redis_error if isinstance(exc, StoreUnavailable) else None
                log.warning(
                    "feed_error",
                    error=type(cause or exc).__name__,
                    retry_in=backoff,
                    exc_info=not redis_error,
                )
                next_check = 0.0
                yield Sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)

    def _resync(self, force: bool = False) -> Op[None]:
        core = self.core
        if force or core.needs_bootstrap(
            core.position((yield Transaction(core.position_commands())))
        ):
            sent = self._clock()
            replies = yield Transaction(core.snapshot_commands(sent, secrets.token_hex(8)))
            summary = core.bootstrapped(replies, sent)
            self._on_fresh(core.stale_after)
            log.info("feed_bootstrapped", **summary)
        self._on_synced()

    def _tail_once(self) -> Op[None]:
        core = self.core
        sent, since = self._clock(), core.last_id
        read = ("XREAD", "COUNT", BATCH, "BLOCK", self._block_ms, "STREAMS", core.keys.log, since)
        entries = raw_entries((yield Command(read, True)))  # hot: the HotConnection
        if entries:
            core.apply_entries(entries)
        if core.gap_possible(sent, self._clock(), len(entries) >= BATCH) and core.trimmed_past(
            since, (yield Command(("GET", core.keys.trimmed)))
        ):
            log.warning("feed_trimmed_past", position=since)
            yield from self._resync(force=True)
            return
        if core.from_replica:  # only entries prove freshness there (their ids: ticks too)
            if entries:
                self._on_fresh(core.entries_seen(entries[-1][0], sent))
        elif len(entries) < BATCH:  # a full batch may have more behind it: no proof of freshness
            self._on_fresh(core.mark_fresh(sent))
