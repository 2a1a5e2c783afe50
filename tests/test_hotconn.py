"""``HotConnection`` / ``AsyncHotConnection`` against a real Redis: raw replies, error replies,
a killed connection, release to the pool."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio

from sessionsvc._redis.hotconn import AsyncHotConnection, HotConnection

pytestmark = pytest.mark.redis


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


@pytest.fixture
def hot(client: redis.Redis) -> Iterator[HotConnection]:
    h = HotConnection(client)
    yield h
    h.close()


def test_replies_are_raw_bytes_with_fields_in_wire_order(hot: HotConnection) -> None:
    hot("DEL", "hot:s")
    entry_id = hot("XADD", "hot:s", "*", "b", "2", "a", "1", "b", "3")
    reply = hot("XRANGE", "hot:s", "-", "+")
    assert reply == [[entry_id, [b"b", b"2", b"a", b"1", b"b", b"3"]]]  # duplicates kept


def test_an_error_reply_raises_and_the_connection_stays_usable(hot: HotConnection) -> None:
    with pytest.raises(redis.ResponseError):
        hot("XADD", "hot:s", "not-an-id", "f", "v")
    assert hot("PING") in (b"PONG", "PONG")


def test_many_sends_in_one_write_and_keeps_every_reply(hot: HotConnection) -> None:
    hot("DEL", "hot:m")
    first, bad, length = hot.many(
        ("XADD", "hot:m", "*", "k", "v"), ("XADD", "hot:m", "bad-id", "k", "v"), ("XLEN", "hot:m")
    )
    assert isinstance(first, bytes) and isinstance(bad, redis.ResponseError) and length == 1
    assert hot("PING") in (b"PONG", "PONG")  # still in step: every reply was read


def test_a_killed_connection_raises_once_then_reconnects(
    client: redis.Redis, hot: HotConnection
) -> None:
    hot("CLIENT", "SETNAME", "hot-victim")
    own_id = hot("CLIENT", "ID")
    client.client_kill_filter(_id=own_id)
    with pytest.raises(redis.ConnectionError):
        hot("PING")
    assert hot("PING") in (b"PONG", "PONG")


def test_an_interrupt_between_send_and_read_leaves_no_stale_reply(hot: HotConnection) -> None:
    hot("PING")
    conn = hot._conn
    real_read = conn.read_response

    def interrupted(**kwargs: object) -> object:
        conn.read_response = real_read  # once
        raise KeyboardInterrupt

    conn.read_response = interrupted
    with pytest.raises(KeyboardInterrupt):
        hot("ECHO", "stale")  # sent; its reply is never read
    assert hot("ECHO", "fresh") == b"fresh"  # not the stale reply


def test_close_returns_the_connection_to_the_pool(client: redis.Redis, hot: HotConnection) -> None:
    hot("PING")
    pool = client.connection_pool
    assert len(pool._in_use_connections) == 1
    hot.close()
    hot.close()  # idempotent
    assert len(pool._in_use_connections) == 0
    client.close()


def test_async_variant_raw_replies_errors_many_and_reconnect(redis_url: str) -> None:
    async def scenario() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        hot = AsyncHotConnection(client)
        await hot("DEL", "hot:a")
        entry_id = await hot("XADD", "hot:a", "*", "k", "v")
        assert await hot("XRANGE", "hot:a", "-", "+") == [[entry_id, [b"k", b"v"]]]
        with pytest.raises(redis.ResponseError):
            await hot("XADD", "hot:a", "not-an-id", "f", "v")
        first, bad, length = await hot.many(
            ("XADD", "hot:a", "*", "k", "v"), ("XADD", "hot:a", "bad", "k", "v"), ("XLEN", "hot:a")
        )
        assert isinstance(first, bytes) and isinstance(bad, redis.ResponseError) and length == 2
        assert await hot("PING") in (b"PONG", "PONG")  # in step after many()
        await client.client_kill_filter(_id=await hot("CLIENT", "ID"))
        with pytest.raises(redis.ConnectionError):
            await hot("PING")
        assert await hot("PING") in (b"PONG", "PONG")
        await hot.aclose()
        await client.aclose()

    asyncio.run(scenario())
