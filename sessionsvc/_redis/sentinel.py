"""Clients of a Sentinel-managed primary: redis-py's ``Sentinel(...).master_for(service)``.

With ``redis_sentinels`` set, ``sessionsvc._redis.clients`` builds every client here, with the
options it would give a client of ``redis_url`` (timeouts, retry, client name, TLS). What
redis-py does, and what is therefore not written here:

- every connection the pool hands out asks the sentinels for the service's current primary
  when it connects (``SentinelManagedConnection.connect``), so a client whose connection broke
  after a failover (the killed primary's, or the ones Sentinel closes with ``CLIENT KILL`` on
  the demoted one) reaches the promoted replica with its next checkout;
- a ``READONLY`` reply read through ``read_response`` (the client layer, ``HotConnection``)
  disconnects the connection and raises ``ConnectionError``: it talked to a demoted primary.

What is written here, in ``sentinel_conn`` and in ``slotpool``: a connection that reconnects
inside a command (a retry) asks the sentinels too (``sentinel_conn.Resolving``: redis-py would
go back to the old address); a connection that is *not* checked out again
(``HotConnection``, ``BoundedConnection``) would reconnect by itself to its old address, so it
is given back after a connection error, a timeout or ``READONLY`` (``BoundedConnection``
parses that reply itself) and a new one is checked out.

The data nodes' user, password, database and TLS come from ``redis_url`` (its host and port are
unused); the sentinels get their own user and password (``redis_sentinel_username``/
``_password``), the same socket timeouts, and TLS when the URL is ``rediss://``. A client built
here closes the sentinels' connections with its own (``close``/``aclose``).
"""

from __future__ import annotations

from typing import Any, Final

import redis
import redis.asyncio
import redis.asyncio.retry
import redis.asyncio.sentinel
import redis.connection
import redis.retry
import redis.sentinel
from redis.backoff import NoBackoff

from sessionsvc._redis.sentinel_conn import (
    AsyncResolving,
    AsyncResolvingSSL,
    Resolving,
    ResolvingSSL,
)
from sessionsvc.config import Settings
from sessionsvc.config.redis_sentinel import sentinel_address

__all__ = [
    "AsyncSentinelRedis",
    "SentinelRedis",
    "async_master",
    "async_replica",
    "sync_master",
    "sync_replica",
]

_NOT_FOR_NODES = ("host", "port", "path", "connection_class")


class SentinelRedis(redis.Redis):
    """A ``redis.Redis`` of the service's primary; ``close`` closes its sentinels' clients too."""

    sentinel_manager: redis.sentinel.Sentinel | None = None

    def close(self) -> None:
        """Close the pool (when owned) and the connections to the sentinels."""
        try:
            super().close()
        finally:
            if self.sentinel_manager is not None:
                self.sentinel_manager.close()


class AsyncSentinelRedis(redis.asyncio.Redis):
    """``SentinelRedis`` for ``redis.asyncio``."""

    sentinel_manager: redis.asyncio.sentinel.Sentinel | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        """Close the pool (when owned) and the connections to the sentinels."""
        try:
            await super().aclose(close_connection_pool)
        finally:
            if self.sentinel_manager is not None:
                await self.sentinel_manager.aclose()


def node_options(settings: Settings, tls: dict[str, object]) -> dict[str, Any]:
    """What ``redis_url`` says of the data nodes (user, password, db, query options) and
    ``tls`` (``clients.tls_options``), as keywords of a Sentinel-managed connection (pure)."""
    url = settings.redis_url.get_secret_value()
    parsed = redis.connection.parse_url(url)  # type: ignore[no-untyped-call]
    options = {k: v for k, v in parsed.items() if k not in _NOT_FOR_NODES}
    options.update(tls)
    return options


def sentinel_options(settings: Settings, tls: dict[str, object]) -> dict[str, Any]:
    """The keywords of the clients that ask the sentinels (pure): their own credentials,
    ``redis_socket_timeout``/``redis_connect_timeout``, TLS like the data nodes, no retries
    (redis-py's default would wait seconds on a dead sentinel; the next one is asked instead)."""
    password = settings.redis_sentinel_password
    return {
        "username": settings.redis_sentinel_username,
        "password": None if password is None else password.get_secret_value(),
        "socket_timeout": settings.redis_socket_timeout,
        "socket_connect_timeout": settings.redis_connect_timeout,
        "driver_info": None,
        **({"ssl": True, **tls} if tls else {}),
    }


def _master(
    settings: Settings,
    kind: Any,
    tls: dict[str, object],
    options: dict[str, Any],
    replica: bool = False,
) -> Any:
    manager, redis_class, retry, plain, over_tls = kind
    sentinel = manager(
        [sentinel_address(entry) for entry in settings.redis_sentinels],
        sentinel_kwargs={**sentinel_options(settings, tls), "retry": retry(NoBackoff(), 0)},
    )
    # the URL's options win over the factory's, as in ``from_url``
    kwargs = {
        **options,
        **node_options(settings, tls),
        "connection_class": over_tls if tls else plain,
    }
    pick = sentinel.slave_for if replica else sentinel.master_for
    client = pick(settings.redis_service, redis_class=redis_class, **kwargs)
    client.sentinel_manager = sentinel
    return client


_SYNC: Final = (redis.sentinel.Sentinel, SentinelRedis, redis.retry.Retry, Resolving, ResolvingSSL)
_ASYNC: Final = (
    redis.asyncio.sentinel.Sentinel,
    AsyncSentinelRedis,
    redis.asyncio.retry.Retry,
    AsyncResolving,
    AsyncResolvingSSL,
)


def sync_master(settings: Settings, tls: dict[str, object], **options: Any) -> SentinelRedis:
    """A client of the primary the sentinels name now and after every failover."""
    client: SentinelRedis = _master(settings, _SYNC, tls, options)
    return client


def async_master(settings: Settings, tls: dict[str, object], **options: Any) -> AsyncSentinelRedis:
    """``sync_master`` for ``redis.asyncio``."""
    client: AsyncSentinelRedis = _master(settings, _ASYNC, tls, options)
    return client


def sync_replica(settings: Settings, tls: dict[str, object], **options: Any) -> SentinelRedis:
    """A client of a replica the sentinels name (``slave_for``: round robin over the replicas
    they see up, the primary when there is none), asked again on every connect."""
    client: SentinelRedis = _master(settings, _SYNC, tls, options, replica=True)
    return client


def async_replica(settings: Settings, tls: dict[str, object], **options: Any) -> AsyncSentinelRedis:
    """``sync_replica`` for ``redis.asyncio``."""
    client: AsyncSentinelRedis = _master(settings, _ASYNC, tls, options, replica=True)
    return client
