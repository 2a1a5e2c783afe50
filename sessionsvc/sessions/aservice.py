"""``AsyncSessionService``: the asyncio shell (``redis.asyncio``) over the same ``SessionCore``.

Same operations, same scripts, same decisions as ``SessionService``; only the I/O awaits.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar

import redis
import redis.asyncio

from sessionsvc._redis.clients import async_client
from sessionsvc._redis.scripts import arun
from sessionsvc.config import Settings, load_settings
from sessionsvc.errors import StoreUnavailable
from sessionsvc.sessions.core import Call, Op, SessionCore, SessionInfo
from sessionsvc.tokens.issuer import TokenIssuer, TokenPair

__all__ = ["AsyncSessionService"]

T = TypeVar("T")


class AsyncSessionService:
    """The asyncio twin of ``SessionService`` (one awaited round trip per operation)."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        redis: redis.asyncio.Redis | None = None,
        issuer: TokenIssuer | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings = settings or load_settings()
        self.core = SessionCore(settings, issuer=issuer, clock=clock)
        self._owns_client = redis is None
        self.redis = redis if redis is not None else async_client(settings)

    async def _eval(self, call: Call) -> Any:
        return await arun(self.redis.execute_command, call)  # the registry's NOSCRIPT rule

    async def _run(self, op: Op[T]) -> T:
        call = next(op)
        while True:
            try:
                reply = await self._eval(call)
            except redis.RedisError as exc:
                raise StoreUnavailable(f"redis: {type(exc).__name__}: {exc}") from exc
            try:
                call = op.send(reply)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    async def login(
        self,
        sub: str,
        *,
        ip: str | None = None,
        user_agent: str | None = None,
        device: str | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> TokenPair:
        """Create a session for ``sub`` and return its first access + refresh pair."""
        return await self._run(
            self.core.login(sub, ip=ip, user_agent=user_agent, device=device, claims=claims)
        )

    async def refresh(self, refresh_token: str) -> TokenPair:
        """Rotate a refresh token (see ``sessions_core`` for the exact decision)."""
        return await self._run(self.core.refresh(refresh_token))

    async def logout(self, session_id: str, *, reason: str = "logout") -> bool:
        """End and revoke one session; True when a live session was deleted."""
        return await self._run(self.core.logout(session_id, reason=reason))

    async def logout_all(self, sub: str, *, reason: str = "logout_all") -> int:
        """End every session of ``sub`` and revoke its tokens; the number of sessions ended."""
        return await self._run(self.core.logout_all(sub, reason=reason))

    async def list_sessions(self, sub: str) -> list[SessionInfo]:
        """The live sessions of ``sub``."""
        return await self._run(self.core.list_sessions(sub))

    async def get_session(self, session_id: str) -> SessionInfo:
        """One live session, or ``SessionNotFound``."""
        return await self._run(self.core.get_session(session_id))

    async def aclose(self) -> None:
        """Close the Redis client if this service created it."""
        if self._owns_client:
            await self.redis.aclose()

    async def __aenter__(self) -> AsyncSessionService:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
