"""Where a dedicated connection comes from: the client's pool, or on Redis Cluster the pool of
the primary that owns one key's hash slot.

``HotConnection`` and ``BoundedConnection`` keep one connection checked out for a hot loop
(the feed's tail of ``<ns>:{rev}:log``, the worker's reads of the ``{<ns>:events}`` intakes).
On a single Redis that connection comes from the client's pool. On a cluster it must be a
connection to the node serving the loop's slot; ``SlotPool`` and ``AsyncSlotPool`` find that
node in the cluster client's slot map (redis-py keeps it: the map read at start-up, patched on
every MOVED the client itself meets).

Invariants:

- A connection goes back to the pool it came from (``put``), whichever node serves the slot now.
- After a failure that may mean the slot moved (``must_resolve``: a MOVED or ASK reply, a
  connection error or timeout, CLUSTERDOWN: a failover, a resharding, a dead node) the owner
  drops its connection (``put``) and the next ``get`` re-reads the whole slot map from a node
  that answers first; a failure to do so raises there, as the next command's failure.
- An ASK reply (the slot is migrating and the key already left: ``-ASK <slot> <host:port>``)
  changes nothing of this: ``asked`` lends a connection to the node it names, for the owner to
  send ``ASKING`` and the command there once; the slot map is not touched and the owner keeps
  its connection to the slot's node (a MOVED, once the migration is over, re-resolves). An
  ASK naming a node the map does not know raises, and the next ``get`` re-reads the map.
- On a single Redis nothing is ever re-resolved: ``get``/``put`` are the pool's own.
- On a Sentinel-managed primary only a *checkout* asks the sentinels for the primary
  (redis-py's pool connects through ``SentinelManagedConnection.connect``; a connection that
  reconnects by itself inside a command goes back to its old address). So after a failure that
  may mean the primary changed (``must_drop``: a connection error or timeout, or a ``READONLY``
  reply, a demoted primary's) the owner gives the connection back, ``put`` disconnects it, and
  the next ``get`` checks one out connected to the primary the sentinels name now.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeGuard

import redis.asyncio.cluster
import redis.asyncio.sentinel
import redis.cluster
import redis.sentinel
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ConnectionError,
    MovedError,
    ReadOnlyError,
    TimeoutError,
    TryAgainError,
)

from sessionsvc._redis.clients import AsyncClient, SyncClient

__all__ = ["AsyncSlotPool", "SlotPool", "asking", "is_ask", "must_drop", "must_resolve"]

_MOVING = (AskError, MovedError, ClusterDownError, TryAgainError, ConnectionError, TimeoutError)
_STALE = (ConnectionError, TimeoutError, ReadOnlyError)


def must_resolve(exc: BaseException) -> bool:
    """After ``exc`` on a cluster node, may the slot be served elsewhere now? (pure)"""
    return isinstance(exc, _MOVING)


def is_ask(exc: BaseException) -> TypeGuard[AskError]:
    """Is ``exc`` an ASK reply (redis-py's ``MovedError`` is an ``AskError`` too)? (pure)"""
    return isinstance(exc, AskError) and not isinstance(exc, MovedError)


def asking(commands: Sequence[Sequence[Any]]) -> list[Sequence[Any]]:
    """``commands`` for the node an ASK names: each after an ``ASKING`` (it admits one command
    to the importing node), in one write (pure)."""
    return [part for command in commands for part in (("ASKING",), command)]


def must_drop(exc: BaseException) -> bool:
    """After ``exc`` on a Sentinel-managed connection, may the primary have changed? (pure)"""
    return isinstance(exc, _STALE)


class _Base:
    def __init__(self, client: SyncClient | AsyncClient, key: str | None) -> None:
        self.client = client
        self.key = key or ""
        self.cluster = isinstance(
            client, redis.cluster.RedisCluster | redis.asyncio.cluster.RedisCluster
        )
        if self.cluster and key is None:
            raise ValueError("a connection on Redis Cluster needs the key whose slot it serves")
        self.sentinel = not self.cluster and isinstance(  # (a lazy cluster: not built here)
            getattr(client, "connection_pool", None),
            redis.sentinel.SentinelConnectionPool | redis.asyncio.sentinel.SentinelConnectionPool,
        )
        self._resolve = False  # re-read the slot map before the next checkout
        self._drop = False  # disconnect the connection given back next (a demoted primary's)
        self.pools: dict[int, Any] = {}  # id(connection) → the pool it came from

    def failed(self, exc: BaseException) -> bool:
        """Note a failure on a connection of this pool; True when the owner must give the
        connection back (``put``) and take a new one: the slot may be served elsewhere, or
        Sentinel may have promoted another primary."""
        if self.cluster and must_resolve(exc):
            self._resolve = True
            return True
        if self.sentinel and must_drop(exc):
            self._drop = True
            return True
        return False

    def _dropping(self) -> bool:
        drop, self._drop = self._drop, False
        return drop


class SlotPool(_Base):
    """Connections for one slot of a ``redis.Redis`` or ``redis.cluster.RedisCluster``."""

    def __init__(self, client: SyncClient, key: str | None = None) -> None:
        super().__init__(client, key)
        self._client = client

    def get(self) -> Any:
        """A connection (not yet connected, or connected) to the node serving the slot."""
        client = self._client
        if isinstance(client, redis.cluster.RedisCluster):
            if self._resolve:
                client.nodes_manager.initialize()
                self._resolve = False
            node = client.get_node_from_key(self.key)  # type: ignore[no-untyped-call]
            if node is None or node.redis_connection is None:
                raise ClusterDownError(f"no node serves the slot of {self.key}")
            pool = node.redis_connection.connection_pool
        else:
            pool = client.connection_pool
        conn = pool.get_connection()
        self.pools[id(conn)] = pool
        return conn

    def asked(self, ask: AskError) -> Any:
        """A connection to the node ``ask`` names, given back with ``put``; the slot map is
        left as it is. ``ask`` itself when no known node has that address (the next ``get``
        re-reads the map)."""
        client = self._client
        node = None
        if isinstance(client, redis.cluster.RedisCluster):
            node = client.get_node(host=ask.host, port=ask.port)  # type: ignore[no-untyped-call]
        if node is None or node.redis_connection is None:
            self._resolve = True
            raise ask
        pool = node.redis_connection.connection_pool
        conn = pool.get_connection()
        self.pools[id(conn)] = pool
        return conn

    def put(self, conn: Any) -> None:
        """Give ``conn`` back to the pool it came from (disconnected after ``must_drop``)."""
        if self._dropping():
            conn.disconnect()
        self.pools.pop(id(conn)).release(conn)


class AsyncSlotPool(_Base):
    """``SlotPool`` for ``redis.asyncio`` clients."""

    def __init__(self, client: AsyncClient, key: str | None = None) -> None:
        super().__init__(client, key)
        self._client = client

    async def get(self) -> Any:
        """A connection to the node serving the slot."""
        client = self._client
        if isinstance(client, redis.asyncio.cluster.RedisCluster):
            await client.initialize()  # (once: the async client reads the map lazily)
            if self._resolve:
                await client.nodes_manager.initialize()
                self._resolve = False
            node = client.get_node_from_key(self.key)
            if node is None:
                raise ClusterDownError(f"no node serves the slot of {self.key}")
            conn = node.acquire_connection()
            self.pools[id(conn)] = node
            return conn
        conn = await client.connection_pool.get_connection()  # type: ignore[no-untyped-call]
        self.pools[id(conn)] = client.connection_pool
        return conn

    async def asked(self, ask: AskError) -> Any:
        """``SlotPool.asked``: a connection to the node an ASK names, the map left alone."""
        client = self._client
        node = None
        if isinstance(client, redis.asyncio.cluster.RedisCluster):
            node = client.get_node(host=ask.host, port=ask.port)
        if node is None:
            self._resolve = True
            raise ask
        conn = node.acquire_connection()
        self.pools[id(conn)] = node
        return conn

    async def put(self, conn: Any) -> None:
        """Give ``conn`` back to the pool (or cluster node) it came from."""
        if self._dropping():
            await conn.disconnect()
        source = self.pools.pop(id(conn))
        if isinstance(source, redis.asyncio.cluster.ClusterNode):
            source.release(conn)
        else:
            await source.release(conn)
