"""The validator feed, sync shell: a daemon thread that follows the revocation log.

All decisions live in ``FeedCore``; this module only talks to Redis: one atomic snapshot, then
``XREAD BLOCK`` from the snapshot's position, forever, on a ``HotConnection`` (every revocation
wakes every validator process: the read must cost as little CPU as it can). A Redis error ends
the current read; the thread backs off (50 ms doubling to 2 s), checks the position and resumes
or re-bootstraps. The connection's socket timeout is ``feed_block`` + ``redis_socket_timeout``, so
a blocking read never trips redis-py's default 5 s timeout.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
import structlog

from sessionsvc._redis.clients import blocking_client
from sessionsvc._redis.hotconn import HotConnection
from sessionsvc.config import Settings
from sessionsvc.revocation.feed_core import check_commands, check_verdict, make_core, raw_entries
from sessionsvc.revocation.log import RevKeys
from sessionsvc.revocation.view import Kind, RevocationView

__all__ = ["DirectCheck", "Feed", "feed_client"]

log = structlog.get_logger("sessionsvc.feed")
BATCH = 1000
CHECK_EVERY = 5.0  # seconds between position checks (epoch, trim, behind us) while tailing
MAX_BACKOFF = 2.0


def feed_client(settings: Settings) -> redis.Redis:
    """A client whose reads may block ``feed_block`` seconds; retries are the feed's own job."""
    return blocking_client(settings, settings.feed_block, "sessionsvc-feed")


class Feed:
    """Keeps ``view`` current from Redis; ``on_fresh(stale_after)`` reports freshness."""

    def __init__(
        self,
        view: RevocationView,
        settings: Settings,
        on_fresh: Callable[[float], None],
        *,
        client: redis.Redis | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.core = make_core(view, settings)
        self._client = client or feed_client(settings)
        self._owns_client = client is None
        self._on_fresh = on_fresh
        self._clock = clock
        self._block_ms = int(settings.feed_block * 1000)
        self._tail = HotConnection(self._client)  # the per-revocation read: no client layers
        self._stop = threading.Event()
        self._synced = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, wait: float = 5.0) -> bool:
        """Start following; wait up to ``wait`` s for the first snapshot. True when synced."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sessionsvc-feed", daemon=True)
            self._thread.start()
        return self._synced.wait(wait)

    def close(self) -> None:
        """Stop the thread (it ends within one ``feed_block``) and release the connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._tail.close()
        if self._owns_client:
            self._client.close()

    def _run(self) -> None:
        backoff, next_check = 0.05, 0.0
        while not self._stop.is_set():
            try:
                if self._clock() >= next_check:  # also after a reconnect redis-py did silently
                    self._resync()
                    next_check = self._clock() + CHECK_EVERY
                self._tail_once()
                backoff = 0.05
            except Exception as exc:  # the feed must outlive any one failure
                self.core.reconnects += isinstance(exc, redis.RedisError)
                self.core.errors += not isinstance(exc, redis.RedisError)
                log.warning(
                    "feed_error",
                    error=type(exc).__name__,
                    retry_in=backoff,
                    exc_info=not isinstance(exc, redis.RedisError),
                )
                next_check = 0.0
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)

    def _position(self) -> list[Any]:
        pipe = self._client.pipeline(transaction=True)
        for command in self.core.position_commands():
            pipe.execute_command(*command)  # type: ignore[no-untyped-call]
        return self.core.position(pipe.execute(raise_on_error=False))

    def _resync(self, force: bool = False) -> None:
        if force or self.core.needs_bootstrap(self._position()):
            sent = self._clock()
            pipe = self._client.pipeline(transaction=True)
            for command in self.core.snapshot_commands(sent, secrets.token_hex(8)):
                pipe.execute_command(*command)  # type: ignore[no-untyped-call]
            summary = self.core.bootstrapped(pipe.execute(), sent)
            self._on_fresh(self.core.stale_after)
            log.info("feed_bootstrapped", **summary)
        self._synced.set()

    def _tail_once(self) -> None:
        core = self.core
        sent, since = self._clock(), core.last_id
        log_key, block = core.keys.log, self._block_ms
        entries = raw_entries(
            self._tail("XREAD", "COUNT", BATCH, "BLOCK", block, "STREAMS", log_key, since)
        )
        if entries:
            core.apply_entries(entries)
        if core.gap_possible(sent, self._clock(), len(entries) >= BATCH) and core.trimmed_past(
            since, self._client.get(core.keys.trimmed)
        ):
            log.warning("feed_trimmed_past", position=since)
            self._resync(force=True)
            return
        if len(entries) < BATCH:  # a full batch may have more behind it: not proof of freshness
            self._on_fresh(core.mark_fresh(sent))


class DirectCheck:
    """The ``direct`` staleness policy: one Redis round trip per token while the view is stale."""

    def __init__(self, settings: Settings, client: redis.Redis | None = None) -> None:
        self._keys = RevKeys(settings.namespace)
        self._client = client or blocking_client(settings, 0.0, "sessionsvc-direct-check")

    def __call__(self, ids: tuple[str, str, str, int, str], now: float) -> Kind | None:
        """The kind that revokes a token with these ids, per Redis (raises ``RedisError``):
        the same state the log is written with, read in one MULTI/EXEC (no script)."""
        pipe = self._client.pipeline(transaction=True)
        for command in check_commands(self._keys, ids):
            pipe.execute_command(*command)  # type: ignore[no-untyped-call]
        return check_verdict(pipe.execute(raise_on_error=False), ids[3], now)

    def close(self) -> None:
        """Release the connection pool."""
        self._client.close()
