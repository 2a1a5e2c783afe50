"""The validator feed, asyncio shell: the same ``FeedCore`` driven by a task on the event loop.

Mirrors ``sessionsvc.feed`` line for line in behaviour (snapshot, XREAD BLOCK tail, backoff,
position check on reconnect); only the I/O differs.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio
import structlog
from redis.exceptions import RedisError

from sessionsvc._redis.clients import blocking_async_client
from sessionsvc._redis.hotconn import AsyncHotConnection
from sessionsvc.config import Settings
from sessionsvc.revocation.feed import BATCH, CHECK_EVERY, MAX_BACKOFF
from sessionsvc.revocation.feed_core import make_core, raw_entries
from sessionsvc.revocation.view import RevocationView

__all__ = ["AsyncFeed"]

log = structlog.get_logger("sessionsvc.feed")


class AsyncFeed:
    """Keeps ``view`` current from Redis in an asyncio task."""

    def __init__(
        self,
        view: RevocationView,
        settings: Settings,
        on_fresh: Callable[[float], None],
        *,
        client: redis.asyncio.Redis | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.core = make_core(view, settings)
        self._client = client or blocking_async_client(
            settings, settings.feed_block, "sessionsvc-feed"
        )
        self._owns_client = client is None
        self._on_fresh = on_fresh
        self._clock = clock
        self._block_ms = int(settings.feed_block * 1000)
        self._tail = AsyncHotConnection(self._client)  # see feed.Feed
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self, wait: float = 5.0) -> bool:
        """Start the task; wait up to ``wait`` s for the first snapshot. True when synced."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="sessionsvc-feed")
        try:
            await asyncio.wait_for(self._synced.wait(), wait)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        """Stop the task and release the connection.

        The task is cancelled *and* told to stop: on Python 3.11 ``asyncio.wait_for`` (which
        redis-py wraps around every socket write) can swallow a cancellation that arrives as the
        write completes, and the loop then ends after its current read instead (one feed_block).
        """
        try:
            if self._task is not None:
                self._stopping = True
                self._task.cancel()
                try:
                    await self._task
                except asyncio.CancelledError:
                    current = asyncio.current_task()
                    if current is not None and current.cancelling():
                        raise  # our caller is being cancelled too, not only the feed task
        finally:
            await self._tail.aclose()
            if self._owns_client:
                await self._client.aclose()

    async def _run(self) -> None:
        backoff, next_check = 0.05, 0.0
        while not self._stopping:
            try:
                if self._clock() >= next_check:  # also after a reconnect redis-py did silently
                    await self._resync()
                    next_check = self._clock() + CHECK_EVERY
                await self._tail_once()
                backoff = 0.05
            except Exception as exc:  # the feed must outlive any one failure
                self.core.reconnects += isinstance(exc, RedisError)
                self.core.errors += not isinstance(exc, RedisError)
                log.warning(
                    "feed_error",
                    error=type(exc).__name__,
                    retry_in=backoff,
                    exc_info=not isinstance(exc, RedisError),
                )
                next_check = 0.0
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)

    async def _position(self) -> list[Any]:
        pipe = self._client.pipeline(transaction=True)
        for command in self.core.position_commands():
            pipe.execute_command(*command)
        return self.core.position(await pipe.execute(raise_on_error=False))

    async def _resync(self, force: bool = False) -> None:
        if force or self.core.needs_bootstrap(await self._position()):
            sent = self._clock()
            pipe = self._client.pipeline(transaction=True)
            for command in self.core.snapshot_commands(sent, secrets.token_hex(8)):
                pipe.execute_command(*command)
            summary = self.core.bootstrapped(await pipe.execute(), sent)
            self._on_fresh(self.core.stale_after)
            log.info("feed_bootstrapped", **summary)
        self._synced.set()

    async def _tail_once(self) -> None:
        core = self.core
        sent, since = self._clock(), core.last_id
        streams = (core.keys.log, since)
        entries = raw_entries(
            await self._tail("XREAD", "COUNT", BATCH, "BLOCK", self._block_ms, "STREAMS", *streams)
        )
        if entries:
            core.apply_entries(entries)
        if core.gap_possible(sent, self._clock(), len(entries) >= BATCH) and core.trimmed_past(
            since, await self._client.get(core.keys.trimmed)
        ):
            log.warning("feed_trimmed_past", position=since)
            await self._resync(force=True)
            return
        if len(entries) < BATCH:  # a full batch may have more behind it: not proof of freshness
            self._on_fresh(core.mark_fresh(sent))
