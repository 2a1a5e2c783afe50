"""Sentinel-managed connections that ask the sentinels on *every* connect.

redis-py's ``SentinelManagedConnection`` asks the sentinels in ``connect()``, which its pool
calls at checkout. A connection that broke during a command reconnects from the send path
(``connect_check_health``) instead, to the address it had: so the retries of a command that met
``READONLY`` (a demoted primary; redis-py disconnects and raises ``ConnectionError``) or a dead
primary went to the old server again, and the call failed although the sentinels already named
the new one. Here that reconnect goes through ``connect()`` too: a command's retry reaches the
current primary.

Invariant: ``connect_to`` (called by ``connect()`` with the address the sentinels gave) is the
only way to the plain connect; every other connect asks the sentinels first.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio.sentinel
import redis.sentinel

__all__ = ["AsyncResolving", "AsyncResolvingSSL", "Resolving", "ResolvingSSL"]


class Resolving(redis.sentinel.SentinelManagedConnection):
    """A sync Sentinel-managed connection whose every connect asks the sentinels."""

    _resolved = False

    def connect_to(self, address: Any) -> None:
        """Connect to ``address``, an answer of the sentinels."""
        self._resolved = True
        try:
            super().connect_to(address)  # type: ignore[no-untyped-call]
        finally:
            self._resolved = False

    def connect_check_health(
        self, check_health: bool = True, retry_socket_connect: bool = True
    ) -> None:
        """From ``connect_to``: connect; from anywhere else: ``connect()`` (the sentinels)."""
        if self._resolved:
            super().connect_check_health(check_health, retry_socket_connect)
        else:
            self.connect()  # type: ignore[no-untyped-call]


class ResolvingSSL(Resolving, redis.sentinel.SentinelManagedSSLConnection):
    """``Resolving`` over TLS."""


class AsyncResolving(redis.asyncio.sentinel.SentinelManagedConnection):
    """``Resolving`` for ``redis.asyncio``."""

    _resolved = False

    async def connect_to(self, address: Any) -> None:
        """Connect to ``address``, an answer of the sentinels."""
        self._resolved = True
        try:
            await super().connect_to(address)  # type: ignore[no-untyped-call]
        finally:
            self._resolved = False

    async def connect_check_health(
        self, check_health: bool = True, retry_socket_connect: bool = True
    ) -> None:
        """From ``connect_to``: connect; from anywhere else: ``connect()`` (the sentinels)."""
        if self._resolved:
            await super().connect_check_health(check_health, retry_socket_connect)
        else:
            await self.connect()  # type: ignore[no-untyped-call]


class AsyncResolvingSSL(AsyncResolving, redis.asyncio.sentinel.SentinelManagedSSLConnection):
    """``AsyncResolving`` over TLS."""
