"""Pytest fixtures over ``sessionsvc.embedded.RedisProcess`` (a throw-away redis-server).

Fixtures: ``redis_server`` (one per test session) and ``redis_url`` (its URL, after FLUSHALL and
SCRIPT FLUSH, so every test starts from an empty server). Registered with
``pytest_plugins = ["redis_server"]`` in ``tests/conftest.py``. Never the server on 6379.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from sessionsvc.embedded import RedisProcess, find_redis_server, free_port

__all__ = ["RedisProcess", "find_redis_server", "free_port"]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    """A redis-server shared by the whole test session (stopped at the end)."""
    server = RedisProcess(tmp_path_factory.mktemp("redis"))
    for _ in range(3):  # the free port may be taken between probing and binding
        try:
            server.start()
            break
        except RuntimeError:
            server.port = free_port()
    else:
        server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisProcess) -> str:
    """The shared server's URL, emptied for this test (FLUSHALL, SCRIPT FLUSH)."""
    if not redis_server.running:  # a fault test may have killed it
        redis_server.start()
    client = redis.Redis.from_url(redis_server.url)
    try:
        client.flushall()
        client.script_flush()
    finally:
        client.close()
    return redis_server.url
