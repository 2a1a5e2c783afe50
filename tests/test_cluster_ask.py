"""``HotConnection``/``BoundedConnection`` pinned to the ``{rev}`` slot while that slot migrates
to another primary of a real cluster: an ASK is answered once on the importing node (``ASKING``
and the command), the slot map and the pinned connection stay; once the migration is over, the
MOVED that follows re-resolves."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
import redis.asyncio.cluster
import redis.cluster
from redis_cluster import ClusterProcess
from revocation_harness import REV

from sessionsvc._redis.bounded import BoundedConnection
from sessionsvc._redis.hotconn import AsyncHotConnection, HotConnection
from sessionsvc.embedded import RedisProcess

pytestmark = [pytest.mark.redis, pytest.mark.cluster]

KINDS = [HotConnection, BoundedConnection]
SIDS = REV.key("sid")  # in the slot, left on the source


@dataclass
class Migration:
    """The ``{rev}`` slot half-way to ``target``: the log moved, the sid index not."""

    cluster: ClusterProcess
    slot: int
    source: RedisProcess
    target: RedisProcess

    def finish(self) -> None:
        """Give the slot to ``target`` on every node (the migration is over)."""
        self.cluster.assign(self.slot, self.target)


@pytest.fixture
def migration(redis_cluster: ClusterProcess, redis_cluster_url: str) -> Iterator[Migration]:
    """One log entry and one sid in ``{rev}``; then the slot MIGRATING from its owner, IMPORTING
    on another primary, and the log (only) migrated. Afterwards the slot goes back to its owner,
    emptied, for the tests that share this cluster."""
    with redis.cluster.RedisCluster.from_url(redis_cluster_url) as client:
        client.xadd(REV.log, {"kind": "session"})
        client.zadd(SIDS, {"S-1": 1.0})
    source = redis_cluster.node_serving(REV.log)
    target = next(n for n in redis_cluster.primaries() if n is not source)
    slot = redis_cluster.begin_migration(REV.log, target)
    try:
        redis_cluster.migrate(source, target, REV.log)
        yield Migration(redis_cluster, slot, source, target)
    finally:
        redis_cluster.flush()
        for node in redis_cluster.primaries():
            with redis.Redis(port=node.port) as admin:
                admin.execute_command("CLUSTER", "SETSLOT", slot, "STABLE")
        redis_cluster.assign(slot, source)


def node_id(reply: Any) -> str:
    return reply.decode() if isinstance(reply, bytes) else str(reply)


def test_the_source_answers_ask_for_the_migrated_log(migration: Migration) -> None:
    """The premise of the tests below."""
    with redis.Redis(port=migration.source.port) as plain:
        with pytest.raises(redis.exceptions.AskError) as ask:
            plain.xlen(REV.log)
        assert ask.value.port == migration.target.port


@pytest.mark.parametrize("kind", KINDS)
def test_an_ask_is_answered_on_the_importing_node(
    migration: Migration, kind: type[HotConnection]
) -> None:
    client = redis.cluster.RedisCluster(host="127.0.0.1", port=migration.source.port)
    conn = kind(client, key=REV.log)
    try:
        assert conn("XLEN", REV.log) == 1
    finally:
        conn.close()
        client.close()


@pytest.mark.parametrize("kind", KINDS)
def test_an_ask_leaves_the_slot_map_and_the_pinned_connection(
    migration: Migration, kind: type[HotConnection]
) -> None:
    client = redis.cluster.RedisCluster(host="127.0.0.1", port=migration.source.port)
    conn = kind(client, key=REV.log)
    try:
        conn("XLEN", REV.log)
        assert client.nodes_manager.slots_cache[migration.slot][0].port == migration.source.port
        assert node_id(conn("CLUSTER", "MYID")) == migration.cluster.node_id(migration.source)
    finally:
        conn.close()
        client.close()


@pytest.mark.parametrize("kind", KINDS)
def test_many_sends_only_the_asked_commands_to_the_importing_node(
    migration: Migration, kind: type[HotConnection]
) -> None:
    client = redis.cluster.RedisCluster(host="127.0.0.1", port=migration.source.port)
    conn = kind(client, key=REV.log)
    try:
        assert conn.many(("XLEN", REV.log), ("ZCARD", SIDS), ("XLEN", REV.log)) == [1, 1, 1]
    finally:
        conn.close()
        client.close()


@pytest.mark.parametrize("kind", KINDS)
def test_after_the_migration_a_moved_re_resolves(
    migration: Migration, kind: type[HotConnection]
) -> None:
    client = redis.cluster.RedisCluster(host="127.0.0.1", port=migration.source.port)
    conn = kind(client, key=REV.log)
    try:
        assert conn("XLEN", REV.log) == 1
        migration.finish()
        with pytest.raises(redis.exceptions.MovedError):
            conn("XLEN", REV.log)
        assert conn("XLEN", REV.log) == 1
        assert node_id(conn("CLUSTER", "MYID")) == migration.cluster.node_id(migration.target)
    finally:
        conn.close()
        client.close()


def test_the_async_hot_connection_answers_an_ask(migration: Migration) -> None:
    async def scenario() -> list[Any]:
        client = redis.asyncio.cluster.RedisCluster(host="127.0.0.1", port=migration.source.port)
        conn = AsyncHotConnection(client, REV.log)
        try:
            one = await conn("XLEN", REV.log)
            both = await conn.many(("XLEN", REV.log), ("ZCARD", SIDS))
            return [one, *both, node_id(await conn("CLUSTER", "MYID"))]
        finally:
            await conn.aclose()
            await client.aclose()

    source = migration.cluster.node_id(migration.source)
    assert asyncio.run(scenario()) == [1, 1, 1, source]


def test_the_async_hot_connection_re_resolves_after_the_migration(migration: Migration) -> None:
    async def scenario() -> Any:
        client = redis.asyncio.cluster.RedisCluster(host="127.0.0.1", port=migration.source.port)
        conn = AsyncHotConnection(client, REV.log)
        try:
            await conn("XLEN", REV.log)
            migration.finish()
            with pytest.raises(redis.exceptions.MovedError):
                await conn("XLEN", REV.log)
            await conn("XLEN", REV.log)
            return node_id(await conn("CLUSTER", "MYID"))
        finally:
            await conn.aclose()
            await client.aclose()

    assert asyncio.run(scenario()) == migration.cluster.node_id(migration.target)
