"""The validator feed: ``Feed`` (a daemon thread) and ``AsyncFeed`` (an asyncio task).

Both run the one ``Follower.follow()`` op (``sessionsvc.revocation.follow``: snapshot, ``XREAD
BLOCK`` tail, backoff, position checks) with the sync or the async runner of
``sessionsvc._redis.run``; every decision lives there and in ``FeedCore``. The tail read goes on a
``HotConnection`` (every revocation wakes every validator process: the read must cost as little
CPU as it can). The client's socket timeout is ``feed_block`` + ``redis_socket_timeout``, so a
blocking read never trips redis-py's default 5 s timeout; it does no retries of its own.
With ``read_from_replicas`` the client is one of a replica (``sessionsvc._redis.replicas``),
and only the entries read (the worker's ticks among them) prove freshness (``FeedCore``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from sessionsvc._redis.clients import (
    AsyncClient,
    SyncClient,
    blocking_async_client,
    blocking_client,
)
from sessionsvc._redis.hotconn import AsyncHotConnection, HotConnection
from sessionsvc._redis.replicas import blocking_async_replica, blocking_replica
from sessionsvc._redis.run import arun, run
from sessionsvc.config import Settings
from sessionsvc.revocation.feed_core import FeedCore, make_core
from sessionsvc.revocation.follow import BATCH, CHECK_EVERY, MAX_BACKOFF, Follower
from sessionsvc.revocation.view import RevocationView

__all__ = ["BATCH", "CHECK_EVERY", "MAX_BACKOFF", "AsyncFeed", "Feed", "feed_client"]

Client = TypeVar("Client", SyncClient, AsyncClient)


def feed_client(settings: Settings) -> SyncClient:
    """A client whose reads may block ``feed_block`` seconds; retries are the feed's own job.
    Of a replica with ``read_from_replicas``."""
    if settings.read_from_replicas:
        return blocking_replica(settings, settings.feed_block, "sessionsvc-feed")
    return blocking_client(settings, settings.feed_block, "sessionsvc-feed")


class _Feed(Generic[Client]):
    """What both feeds share: the core, the follower, the client they may own."""

    _synced: threading.Event | asyncio.Event

    def __init__(
        self,
        view: RevocationView,
        settings: Settings,
        on_fresh: Callable[[float], None],
        *,
        client: Client | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.core: FeedCore = make_core(view, settings)
        self._owns_client = client is None
        self._client: Client = client if client is not None else self._connect(settings)
        self._setup()
        self.follower = Follower(self.core, clock, on_fresh, self._synced.set)

    def _connect(self, settings: Settings) -> Client:
        raise NotImplementedError

    def _setup(self) -> None:
        raise NotImplementedError


class Feed(_Feed[SyncClient]):
    """Keeps ``view`` current from Redis in a daemon thread; ``on_fresh(stale_after)`` reports
    freshness."""

    _synced: threading.Event

    def _connect(self, settings: Settings) -> SyncClient:
        return feed_client(settings)

    def _setup(self) -> None:
        self._synced, self._stop = threading.Event(), threading.Event()
        self._tail = HotConnection(self._client, self.core.keys.log)  # the tail: no client layers
        self._thread: threading.Thread | None = None

    def start(self, wait: float = 5.0) -> bool:
        """Start following; wait up to ``wait`` s for the first snapshot. True when synced."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sessionsvc-feed", daemon=True)
            self._thread.start()
        return self._synced.wait(wait)

    def _run(self) -> None:
        run(self._client, self.follower.follow(), hot=self._tail, wait=self._stop.wait)

    def close(self) -> None:
        """Stop the thread (it ends within one ``feed_block``) and release the connection."""
        self.follower.stopping = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._tail.close()
        if self._owns_client:
            self._client.close()


class AsyncFeed(_Feed[AsyncClient]):
    """Keeps ``view`` current from Redis in an asyncio task."""

    _synced: asyncio.Event

    def _connect(self, settings: Settings) -> AsyncClient:
        if settings.read_from_replicas:
            return blocking_async_replica(settings, settings.feed_block, "sessionsvc-feed")
        return blocking_async_client(settings, settings.feed_block, "sessionsvc-feed")

    def _setup(self) -> None:
        self._synced = asyncio.Event()
        self._tail = AsyncHotConnection(self._client, self.core.keys.log)  # see Feed
        self._task: asyncio.Task[None] | None = None

    async def start(self, wait: float = 5.0) -> bool:
        """Start the task; wait up to ``wait`` s for the first snapshot. True when synced."""
        if self._task is None:
            self._task = asyncio.create_task(
                arun(self._client, self.follower.follow(), hot=self._tail), name="sessionsvc-feed"
            )
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
                self.follower.stopping = True
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
