"""Clients of a replica, for the validator feed with ``read_from_replicas`` (``config.replicas``).

Where the replica comes from:

- **Sentinel**: redis-py's ``Sentinel.slave_for`` (``sessionsvc._redis.sentinel``): every connect
  asks the sentinels for the replicas they see up (round robin; the primary when none is);
- **Redis Cluster**: a replica serving the ``<ns>:{rev}:log`` slot, read from the slot map when
  the client is built (the primary if the slot has no replica), as a plain client of that node
  whose every connection sends ``READONLY`` after its handshake (a replica answers reads of its
  primary's slots only then). It stays on that node: a replica that dies leaves the validator
  stale (fail closed) until it is back or the process restarts with a new map;
- **one Redis**: ``redis_replica_url``, with the TLS options of ``redis_url`` (same scheme).

The feed on a replica writes nothing (its snapshot does not ``SET`` the epoch), and it proves
its freshness by the worker's ticks only (``sessionsvc.revocation.ticks``).
"""

from __future__ import annotations

import secrets
from typing import Any

import redis
import redis.asyncio
import redis.cluster
from redis.backoff import NoBackoff

from sessionsvc._boundary import map_exceptions
from sessionsvc._redis import layout
from sessionsvc._redis.clients import _blocking, _timeouts, tls_options
from sessionsvc._redis.sentinel import async_replica, node_options, sync_replica
from sessionsvc.config import Settings

__all__ = ["blocking_async_replica", "blocking_replica", "cluster_replica", "replicas_in"]

_CONNECT = map_exceptions("cannot reach the Redis Cluster")


def replicas_in(nodes: str) -> list[tuple[str, int]]:
    """The replicas of the node that answered ``CLUSTER NODES`` (its ``myself`` line) that are
    connected and not failing, as (host, port) (pure). ``CLUSTER SLOTS`` is no help here: it
    leaves out a replica until gossip has told of its offset."""
    rows = [line.split() for line in nodes.splitlines() if line.strip()]
    me = next((row[0] for row in rows if "myself" in row[2].split(",")), None)
    found = []
    for row in rows:
        flags = row[2].split(",")
        if "slave" in flags and row[3] == me and "fail" not in flags and row[7] == "connected":
            host, _, port = row[1].split("@")[0].rpartition(":")
            found.append((host, int(port)))
    return found


def cluster_replica(settings: Settings) -> tuple[str, int]:
    """(host, port) of a replica serving the ``{rev}`` slot, picked at random; the slot's
    primary when it has none. Reads the slot map from ``redis_url`` (``StoreUnavailable``)."""
    tls = tls_options(settings)
    with _CONNECT:
        cluster = redis.cluster.RedisCluster.from_url(
            settings.redis_url.get_secret_value(), **_timeouts(settings), **tls
        )
        try:
            slot = cluster.keyslot(layout.rev_key(settings.namespace, "log"))  # type: ignore[no-untyped-call]
            nodes = cluster.nodes_manager.slots_cache.get(slot)
            primary = nodes[0] if nodes else None
            if primary is None or primary.redis_connection is None:
                raise redis.exceptions.ClusterDownError("no node serves the {rev} slot")
            listing = primary.redis_connection.execute_command("CLUSTER", "NODES")
            text = listing.decode() if isinstance(listing, bytes) else str(listing)
            replicas = replicas_in(text)
            return secrets.choice(replicas) if replicas else (primary.host, primary.port)
        finally:
            cluster.close()


def _readonly(conn: Any) -> None:  # (redis-py calls it with the connection, typed without)
    """The handshake, then ``READONLY`` (a cluster replica serves reads only after it)."""
    conn.on_connect()
    conn.send_command("READONLY")
    conn.read_response()


async def _areadonly(conn: Any) -> None:
    """``_readonly`` for ``redis.asyncio``."""
    await conn.on_connect()
    await conn.send_command("READONLY")
    await conn.read_response()


def _node(settings: Settings, tls: dict[str, object]) -> dict[str, Any]:
    host, port = cluster_replica(settings)
    return {"host": host, "port": port, **node_options(settings, tls), "ssl": bool(tls)}


def blocking_replica(settings: Settings, block: float, name: str | None = None) -> redis.Redis:
    """``clients.blocking_client`` of a replica (module docstring: which one)."""
    tls: dict[str, Any] = tls_options(settings)
    options: dict[str, Any] = _blocking(settings, block, name)
    retry = redis.retry.Retry(NoBackoff(), 0)
    if settings.redis_sentinels:
        return sync_replica(settings, tls, retry=retry, **options)
    if settings.redis_cluster:
        return redis.Redis(
            **_node(settings, tls),
            retry=retry,
            redis_connect_func=_readonly,  # type: ignore[arg-type]
            **options,
        )
    url = settings.redis_replica_url
    assert url is not None  # (the settings refuse read_from_replicas without it on one Redis)
    return redis.Redis.from_url(url.get_secret_value(), retry=retry, **options, **tls)


def blocking_async_replica(
    settings: Settings, block: float, name: str | None = None
) -> redis.asyncio.Redis:
    """``blocking_replica`` for ``redis.asyncio`` (on a cluster the slot map is read now,
    blocking: once, when the feed is built)."""
    tls: dict[str, Any] = tls_options(settings)
    options: dict[str, Any] = _blocking(settings, block, name)
    retry = redis.asyncio.retry.Retry(NoBackoff(), 0)
    if settings.redis_sentinels:
        return async_replica(settings, tls, retry=retry, **options)
    if settings.redis_cluster:
        return redis.asyncio.Redis(
            **_node(settings, tls), retry=retry, redis_connect_func=_areadonly, **options
        )
    url = settings.redis_replica_url
    assert url is not None
    return redis.asyncio.Redis.from_url(url.get_secret_value(), retry=retry, **options, **tls)
