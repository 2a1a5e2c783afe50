"""Redis clients built from ``Settings``: deliberate timeouts and a short retry budget.

redis-py 8 defaults to a 5 s socket timeout and three retries with up to 10 s backoff; a session
operation that waits that long has already failed its caller. Here a reply must come within
``redis_socket_timeout`` (2 s), a connection within ``redis_connect_timeout`` (1 s), and a broken
connection is retried twice after 10–100 ms. Every session script is safe to run twice (a
repeated refresh gets the overlap answer, logout and logout-everywhere are idempotent; a repeated
login leaves one unused session that times out). No ``CLIENT SETINFO`` on connect: two round
trips per connection, and a command every ACL user would then need (``sessionsvc redis acl``).

With ``redis_cluster`` on, each factory builds redis-py's cluster client instead (``_classes``:
the one place that picks): ``redis_url`` names any node, the slot map comes from it, and the
client follows MOVED/ASK itself (a MOVED patches the slot, every ``reinitialize_steps``-th one or
a connection error re-reads the whole map; its ``retry`` sets how often a command is re-sent
after a connection error or CLUSTERDOWN). Reads go to primaries only: a replica may lag a
revocation (a feed with ``read_from_replicas`` gets its client from ``_redis.replicas``).
``SyncClient``/``AsyncClient`` are the honest return types.

A ``rediss://`` URL gets the TLS options of ``tls_options`` on every client, so every connection
of every pool (a ``HotConnection``'s or ``BoundedConnection``'s too: they are pooled connections)
verifies the server's certificate and host name, and presents the client certificate if one is
set. Nothing here turns verification off (``config.redis_tls`` has the invariants).

With ``redis_sentinels`` set, every factory builds its client through redis-py's Sentinel
support (``sessionsvc._redis.sentinel``) with the same options: every connection goes to the
primary the sentinels name when it connects, so after a failover each reconnects to the new one.
"""

from __future__ import annotations

from typing import Any, Final, TypeAlias

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.retry
import redis.cluster
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff

from sessionsvc._boundary import map_exceptions
from sessionsvc._redis.lazy_cluster import LazyRedisCluster
from sessionsvc._redis.sentinel import async_master, sync_master
from sessionsvc.config import Settings

__all__ = [
    "AsyncClient",
    "SyncClient",
    "async_client",
    "blocking_async_client",
    "blocking_client",
    "is_cluster",
    "sync_client",
    "tls_options",
]

RETRIES = 2
REDIS_ERRORS: Final = (redis.RedisError, redis.exceptions.RedisClusterException)
"""What redis-py raises when Redis fails: a cluster client's own errors (no node answered, no
slot map) are no ``RedisError``."""
_CONNECT = map_exceptions("cannot reach the Redis Cluster")  # (a client built from a bad URL)
SyncClient: TypeAlias = redis.Redis | redis.cluster.RedisCluster
"""What the sync factories return: a client of one Redis, or of a Redis Cluster."""
AsyncClient: TypeAlias = redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster
"""What the asyncio factories return."""


def is_cluster(client: SyncClient | AsyncClient) -> bool:
    """Whether ``client`` talks to a Redis Cluster."""
    return isinstance(client, redis.cluster.RedisCluster | redis.asyncio.cluster.RedisCluster)


def _classes(
    settings: Settings,
) -> tuple[
    type[redis.Redis] | type[redis.cluster.RedisCluster],
    type[redis.asyncio.Redis] | type[redis.asyncio.cluster.RedisCluster],
]:
    """The sync and the asyncio client class ``settings`` call for."""
    if settings.redis_cluster:  # (the sync one connects on first use, as redis.Redis does)
        return LazyRedisCluster, redis.asyncio.cluster.RedisCluster
    return redis.Redis, redis.asyncio.Redis


def _backoff() -> ExponentialWithJitterBackoff:
    return ExponentialWithJitterBackoff(base=0.01, cap=0.1)


def tls_options(settings: Settings) -> dict[str, object]:
    """The redis-py TLS keywords for ``settings``: none for ``redis://`` and ``unix://`` (the
    settings refuse TLS files with them); for ``rediss://`` certificate and host name checks
    on, the CA file (unset: the system trust store) and the client certificate and key."""
    if not settings.redis_url.get_secret_value().startswith("rediss://"):
        return {}
    files = (
        settings.redis_ca_file,
        settings.redis_client_cert_file,
        settings.redis_client_key_file,
    )
    ca, cert, key = (None if path is None else str(path) for path in files)
    return {
        "ssl_cert_reqs": "required",
        "ssl_check_hostname": True,
        "ssl_ca_certs": ca,
        "ssl_certfile": cert,
        "ssl_keyfile": key,
    }


def _sync(settings: Settings, **options: Any) -> SyncClient:
    """A sync client of ``settings``' Redis (a Sentinel-managed primary, a cluster, one URL)."""
    if settings.redis_sentinels:
        return sync_master(settings, tls_options(settings), **options)
    with _CONNECT:
        return _classes(settings)[0].from_url(
            settings.redis_url.get_secret_value(), **options, **tls_options(settings)
        )


def _async(settings: Settings, **options: Any) -> AsyncClient:
    """``_sync`` for ``redis.asyncio``."""
    if settings.redis_sentinels:
        return async_master(settings, tls_options(settings), **options)
    return _classes(settings)[1].from_url(
        settings.redis_url.get_secret_value(),
        **options,
        **tls_options(settings),  # type: ignore[arg-type]
    )


def _timeouts(settings: Settings) -> dict[str, object]:
    return {
        "socket_timeout": settings.redis_socket_timeout,
        "socket_connect_timeout": settings.redis_connect_timeout,
        "driver_info": None,
    }


def sync_client(settings: Settings) -> SyncClient:
    """A redis-py client for ``settings.redis_url`` (bytes replies). On a cluster it reads the
    slot map on first use (``lazy_cluster``): until a node answers, each command fails."""
    return _sync(settings, retry=redis.retry.Retry(_backoff(), RETRIES), **_timeouts(settings))


def async_client(settings: Settings) -> AsyncClient:
    """A ``redis.asyncio`` client for ``settings.redis_url`` (bytes replies)."""
    retry = redis.asyncio.retry.Retry(_backoff(), RETRIES)
    return _async(settings, retry=retry, **_timeouts(settings))


def _blocking(settings: Settings, block: float, name: str | None) -> dict[str, object]:
    return {
        **_timeouts(settings),
        "socket_timeout": block + settings.redis_socket_timeout,
        "client_name": name,
    }


def blocking_client(settings: Settings, block: float, name: str | None = None) -> SyncClient:
    """A client whose commands may block ``block`` seconds (XREAD/XREADGROUP BLOCK) without
    tripping the socket timeout, and without redis-py retries: its owner's loop retries."""
    return _sync(
        settings, retry=redis.retry.Retry(NoBackoff(), 0), **_blocking(settings, block, name)
    )


def blocking_async_client(settings: Settings, block: float, name: str | None = None) -> AsyncClient:
    """``blocking_client`` for ``redis.asyncio``."""
    retry = redis.asyncio.retry.Retry(NoBackoff(), 0)
    return _async(settings, retry=retry, **_blocking(settings, block, name))
