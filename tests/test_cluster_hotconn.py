"""``HotConnection``/``BoundedConnection`` on Redis Cluster: a connection to the node serving
the loop's slot, found again after a MOVED (the client's slot map was wrong)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio.cluster
import redis.cluster
from conftest import make_settings
from revocation_harness import REV

from sessionsvc import SessionService
from sessionsvc._redis.bounded import BoundedConnection
from sessionsvc._redis.clients import blocking_client, sync_client
from sessionsvc._redis.hotconn import AsyncHotConnection, HotConnection

pytestmark = [pytest.mark.redis, pytest.mark.cluster]


def misroute(client: Any, key: str) -> None:
    """Point the client's slot map for ``key`` at another primary (as after a failover)."""
    slot = client.keyslot(key)
    owner = client.nodes_manager.slots_cache[slot][0]
    other = next(n for n in client.get_primaries() if n.name != owner.name)
    client.nodes_manager.slots_cache[slot] = [other]


def test_the_factories_build_cluster_clients(redis_cluster_url: str) -> None:
    settings = make_settings(redis_url=redis_cluster_url, redis_cluster=True)
    for client in (sync_client(settings), blocking_client(settings, 1.0)):
        try:
            assert isinstance(client, redis.cluster.RedisCluster)
            assert client.ping()
        finally:
            client.close()


@pytest.mark.parametrize("kind", [HotConnection, BoundedConnection])
def test_a_moved_reply_sends_the_next_command_to_the_slot_owner(
    redis_cluster_url: str, kind: type[HotConnection]
) -> None:
    client = redis.cluster.RedisCluster.from_url(redis_cluster_url)
    client.xadd(REV.log, {"kind": "session"})
    misroute(client, REV.log)
    conn = kind(client, key=REV.log)
    try:
        with pytest.raises(redis.exceptions.MovedError):
            conn("XLEN", REV.log)
        assert conn("XLEN", REV.log) == 1
    finally:
        conn.close()
        client.close()


def test_the_async_hot_connection_follows_a_moved_reply(redis_cluster_url: str) -> None:
    async def scenario() -> Any:
        client = redis.asyncio.cluster.RedisCluster.from_url(redis_cluster_url)
        await client.xadd(REV.log, {"kind": "session"})
        misroute(client, REV.log)
        conn = AsyncHotConnection(client, REV.log)
        try:
            with pytest.raises(redis.exceptions.MovedError):
                await conn("XLEN", REV.log)
            return await conn("XLEN", REV.log)
        finally:
            await conn.aclose()
            await client.aclose()

    assert asyncio.run(scenario()) == 1


def test_a_cluster_connection_needs_its_slot_key(redis_cluster_url: str) -> None:
    client = redis.cluster.RedisCluster.from_url(redis_cluster_url)
    try:
        with pytest.raises(ValueError, match="slot"):
            HotConnection(client)
    finally:
        client.close()


def test_a_cluster_client_given_without_the_setting_gets_the_cluster_steps(
    redis_cluster_url: str,
) -> None:
    client = redis.cluster.RedisCluster.from_url(redis_cluster_url)
    try:
        svc = SessionService(make_settings(), redis=client)
        pair = svc.login("alice")  # one script over two slots would be CROSSSLOT
        assert svc.logout(pair.session_id) is True
    finally:
        client.close()


def test_a_blocking_read_outlasts_its_block_on_every_node(redis_cluster_url: str) -> None:
    """redis/redis-py#2807, #3138: the block plus the socket timeout, on each node's pool."""
    settings = make_settings(redis_url=redis_cluster_url, redis_cluster=True)
    client = blocking_client(settings, 1.5)
    try:
        assert isinstance(client, redis.cluster.RedisCluster)
        conn = HotConnection(client, REV.log)
        try:
            assert conn("XREAD", "BLOCK", 1500, "STREAMS", REV.log, "$") is None  # no timeout
        finally:
            conn.close()
        for node in client.get_primaries():
            kwargs = node.redis_connection.connection_pool.connection_kwargs
            assert kwargs["socket_timeout"] == 1.5 + settings.redis_socket_timeout
    finally:
        client.close()
