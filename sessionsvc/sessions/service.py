"""``SessionService`` (redis-py) and ``AsyncSessionService`` (asyncio): two thin shells, one body.

Each operation is one EVALSHA on one Redis (the script's SHA-1 is computed once, at import; on
NOSCRIPT the script is loaded and the call repeated), a few single-slot ones on Redis Cluster
(``SESSIONSVC_REDIS_CLUSTER``, or a cluster client given: ``sessionsvc.sessions.cluster``);
every decision lives in ``sessionsvc.sessions.core``, every round trip in the runners of
``sessionsvc._redis.run``, where Redis errors become ``StoreUnavailable``. The methods are
declared once, on ``_Sessions`` (``sessionsvc._redis.shells.operation``): blocking on
``SessionService``, awaited on ``AsyncSessionService``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

from sessionsvc._redis.clients import (
    AsyncClient,
    SyncClient,
    async_client,
    is_cluster,
    sync_client,
)
from sessionsvc._redis.shells import Awaiting, Blocking, operation
from sessionsvc.config import Settings, load_settings
from sessionsvc.sessions.core import Op, SessionCore
from sessionsvc.tokens.issuer import TokenIssuer

__all__ = ["AsyncSessionService", "SessionService"]

Client = TypeVar("Client", SyncClient, AsyncClient)


def _logout(core: SessionCore, session_id: str, *, reason: str = "logout") -> Op[bool]:
    """End and revoke one session; True when a live session was deleted."""
    return core.logout(session_id, reason=reason)


def _logout_all(core: SessionCore, sub: str, *, reason: str = "logout_all") -> Op[int]:
    """End every session of ``sub`` and revoke its tokens; the number of sessions ended."""
    return core.logout_all(sub, reason=reason)


class _Sessions(Generic[Client]):
    """What both services share: settings, the core, the client, the operations."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        redis: Client | None = None,
        issuer: TokenIssuer | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings = settings or load_settings()
        cluster = settings.redis_cluster or (redis is not None and is_cluster(redis))
        self.core = SessionCore(settings, issuer=issuer, clock=clock, cluster=cluster)
        self._owns_client = redis is None
        self.redis: Client = redis if redis is not None else self._connect(settings)

    def _connect(self, settings: Settings) -> Client:
        raise NotImplementedError

    @property
    def _client(self) -> Client:
        return self.redis

    login = operation(
        SessionCore.login,
        """Create a session for ``sub`` and return its first access + refresh pair.""",
    )
    refresh = operation(
        SessionCore.refresh,
        """Rotate a refresh token (see ``sessionsvc.sessions.core`` for the exact decision).""",
    )
    logout = operation(_logout)
    logout_all = operation(_logout_all)
    sessions_for_idp = operation(
        SessionCore.idp_sessions,
        """Our session ids recorded for an identity provider's session (issuer, its ``sid``):
        log each out (some may have ended already; a logout is idempotent).""",
    )
    list_sessions = operation(SessionCore.list_sessions, """The live sessions of ``sub``.""")
    get_session = operation(
        SessionCore.get_session, """One live session, or ``SessionNotFound``."""
    )


class SessionService(_Sessions[SyncClient], Blocking):
    """Login, refresh with rotation, logout one or all, list sessions: one round trip each on
    one Redis, a few single-slot ones on Redis Cluster."""

    def _connect(self, settings: Settings) -> SyncClient:
        return sync_client(settings)

    def close(self) -> None:
        """Close the Redis client if this service created it."""
        if self._owns_client:
            self.redis.close()

    def __enter__(self) -> SessionService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncSessionService(_Sessions[AsyncClient], Awaiting):
    """The asyncio twin of ``SessionService`` (one awaited round trip per operation)."""

    def _connect(self, settings: Settings) -> AsyncClient:
        return async_client(settings)

    async def aclose(self) -> None:
        """Close the Redis client if this service created it."""
        if self._owns_client:
            await self.redis.aclose()

    async def __aenter__(self) -> AsyncSessionService:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
