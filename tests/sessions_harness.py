"""Test harness for the session services: command-counting clients and one sync facade over
both ``SessionService`` and ``AsyncSessionService`` (the async one runs on a loop in a thread,
so the same test body, threads included, drives either)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import redis
import redis.asyncio
import redis.cluster

from sessionsvc import AsyncSessionService, Revocation, SessionService, Settings
from sessionsvc.revocation.log import RevKeys, decode_entry, entry_meta

T = TypeVar("T")


class CountingRedis(redis.Redis):
    """A redis-py client that records the name of every command it sends."""

    commands: list[str]

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self.__dict__.setdefault("commands", []).append(str(args[0]).upper())
        return super().execute_command(*args, **options)


class CountingAsyncRedis(redis.asyncio.Redis):
    """The asyncio twin of ``CountingRedis``."""

    commands: list[str]

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self.__dict__.setdefault("commands", []).append(str(args[0]).upper())
        return await super().execute_command(*args, **options)


class SyncFacade:
    """``SessionService`` with a counting client; ``commands`` lists what was sent."""

    kind = "sync"

    def __init__(self, settings: Settings, clock: Callable[[], float]) -> None:
        self.client = CountingRedis.from_url(settings.redis_url.get_secret_value())
        self.client.commands = []
        self.service = SessionService(settings, redis=self.client, clock=clock)

    @property
    def commands(self) -> list[str]:
        return self.client.commands

    def __getattr__(self, name: str) -> Any:
        return getattr(self.service, name)

    def close(self) -> None:
        self.client.close()


class AsyncFacade:
    """``AsyncSessionService`` on an event loop in a thread, called synchronously."""

    kind = "async"

    def __init__(self, settings: Settings, clock: Callable[[], float]) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

        async def build() -> AsyncSessionService:
            self.client = CountingAsyncRedis.from_url(settings.redis_url.get_secret_value())
            self.client.commands = []
            return AsyncSessionService(settings, redis=self.client, clock=clock)

        self.service = self.run(build())

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    @property
    def commands(self) -> list[str]:
        return self.client.commands

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.service, name)
        return lambda *args, **kwargs: self.run(method(*args, **kwargs))

    def close(self) -> None:
        self.run(self.client.aclose())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


def read_log(
    url: str, namespace: str = "ss", *, cluster: bool = False
) -> list[tuple[Revocation, dict[str, str]]]:
    """Every revocation in the log, decoded as a validator feed would (``cluster``: ``url``
    names a node of a Redis Cluster)."""
    client: Any = (redis.cluster.RedisCluster if cluster else redis.Redis).from_url(url)
    try:
        entries = client.xrange(RevKeys(namespace).log)
    finally:
        client.close()
    return [(decode_entry(fields), entry_meta(fields)) for _, fields in entries]


POISON_ID = "18446744073709551615-18446744073709551615"


def poison_log(client: redis.Redis, namespace: str = "ss") -> None:
    """What a holder of ``ss-app`` may do: XADD the largest possible id to the revocation log,
    after which every ``XADD … *`` on it fails ("the stream has exhausted the last possible ID")."""
    client.xadd(RevKeys(namespace).log, {"kind": "x"}, id=POISON_ID)


def dump_all(client: redis.Redis) -> dict[bytes, bytes | None]:
    """Every key of the database with its DUMP (type, content): compare before and after."""
    return {key: client.dump(key) for key in client.keys("*")}  # type: ignore[misc]


def logins_around_a_logout_all(svc: Any, sub: str = "alice") -> tuple[int, list[Any]]:
    """Four threads log ``sub`` in again and again while it is logged out everywhere: what
    ``logout_all`` answered, and every pair the logins got."""
    stop = threading.Event()

    def keep_logging_in(_: int) -> list[Any]:
        out = []
        while not stop.is_set():
            out.append(svc.login(sub))
        return out

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(keep_logging_in, i) for i in range(4)]
        time.sleep(0.15)
        ended = svc.logout_all(sub)
        time.sleep(0.1)
        stop.set()
        return ended, [p for f in futures for p in f.result()]
