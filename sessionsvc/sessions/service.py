"""``SessionService``: sessions in Redis, synchronous shell (redis-py) over ``SessionCore``.

Each operation is one EVALSHA (the script's SHA-1 is computed once, at import; on NOSCRIPT the
script is loaded and the call repeated); every decision lives in ``sessionsvc.sessions.core``.
Redis errors become ``StoreUnavailable`` here, at the boundary.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar

import redis

from sessionsvc._redis.clients import sync_client
from sessionsvc._redis.scripts import run
from sessionsvc.config import Settings, load_settings
from sessionsvc.errors import StoreUnavailable
from sessionsvc.sessions.core import Call, Op, SessionCore, SessionInfo
from sessionsvc.tokens.issuer import TokenIssuer, TokenPair

__all__ = ["SessionService"]

T = TypeVar("T")


class SessionService:
    """Login, refresh with rotation, logout one or all, list sessions — one round trip each."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        redis: redis.Redis | None = None,
        issuer: TokenIssuer | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings = settings or load_settings()
        self.core = SessionCore(settings, issuer=issuer, clock=clock)
        self._owns_client = redis is None
        self.redis = redis if redis is not None else sync_client(settings)

    def _eval(self, call: Call) -> Any:
        return run(self.redis.execute_command, call)  # the registry's NOSCRIPT rule

    def _run(self, op: Op[T]) -> T:
        call = next(op)
        while True:
            try:
                reply = self._eval(call)
            except redis.RedisError as exc:
                raise StoreUnavailable(f"redis: {type(exc).__name__}: {exc}") from exc
            try:
                call = op.send(reply)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    def login(
        self,
        sub: str,
        *,
        ip: str | None = None,
        user_agent: str | None = None,
        device: str | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> TokenPair:
        """Create a session for ``sub`` and return its first access + refresh pair."""
        return self._run(
            self.core.login(sub, ip=ip, user_agent=user_agent, device=device, claims=claims)
        )

    def refresh(self, refresh_token: str) -> TokenPair:
        """Rotate a refresh token (see ``sessions_core`` for the exact decision)."""
        return self._run(self.core.refresh(refresh_token))

    def logout(self, session_id: str, *, reason: str = "logout") -> bool:
        """End and revoke one session; True when a live session was deleted."""
        return self._run(self.core.logout(session_id, reason=reason))

    def logout_all(self, sub: str, *, reason: str = "logout_all") -> int:
        """End every session of ``sub`` and revoke its tokens; the number of sessions ended."""
        return self._run(self.core.logout_all(sub, reason=reason))

    def list_sessions(self, sub: str) -> list[SessionInfo]:
        """The live sessions of ``sub``."""
        return self._run(self.core.list_sessions(sub))

    def get_session(self, session_id: str) -> SessionInfo:
        """One live session, or ``SessionNotFound``."""
        return self._run(self.core.get_session(session_id))

    def close(self) -> None:
        """Close the Redis client if this service created it."""
        if self._owns_client:
            self.redis.close()

    def __enter__(self) -> SessionService:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
