"""The ``direct`` staleness policy: while the view is stale, ask Redis about each token.

The check is a pure op (``check``: the reads of ``check_commands`` in one MULTI/EXEC, no script,
judged by ``check_verdict``), run by ``DirectCheck`` (redis-py, blocking) or ``AsyncDirectCheck``
(``redis.asyncio``, awaited: what ``Validator.avalidate`` uses, so nothing blocks the loop).
A Redis error raises ``StoreUnavailable`` (an error reply in place, its ``ResponseError``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from sessionsvc._redis.clients import (
    AsyncClient,
    SyncClient,
    blocking_async_client,
    blocking_client,
)
from sessionsvc._redis.run import Op, Transaction
from sessionsvc._redis.shells import Awaiting, Blocking, operation
from sessionsvc.config import Settings
from sessionsvc.encoding import as_text
from sessionsvc.revocation.log import RevKeys, parse_number
from sessionsvc.revocation.replies import raise_errors, score
from sessionsvc.revocation.view import Kind

__all__ = ["AsyncDirectCheck", "DirectCheck", "DirectCore", "check_commands", "check_verdict"]

Ids = tuple[str, str, str, int, str]  # sid, jti, sub, iat, kid
Client = TypeVar("Client", SyncClient, AsyncClient)
NAME = "sessionsvc-direct-check"


def check_commands(keys: RevKeys, ids: Ids) -> list[tuple[Any, ...]]:
    """The ``direct`` policy's reads for one token (one MULTI/EXEC, no script)."""
    sid, jti, sub, _iat, kid = ids
    return [
        ("ZSCORE", keys.key("sid"), sid),
        ("ZSCORE", keys.key("jti"), jti),
        ("HGET", keys.key("user"), sub),
        ("HGET", keys.key("all"), "before"),
        ("SISMEMBER", keys.key("kid"), kid),
    ]


def check_verdict(replies: Sequence[Any], iat: int, now: float) -> Kind | None:
    """The kind of revocation the replies of ``check_commands`` say rejects the token."""
    sid_until, jti_until, user_before, all_before, key = raise_errors(replies)

    def live(value: Any) -> bool:
        return value is not None and score(value) > now

    if live(sid_until):
        return "session"
    if live(jti_until):
        return "token"
    if user_before is not None and iat < parse_number(as_text(user_before)):
        return "user"
    if all_before is not None and iat < parse_number(as_text(all_before)):
        return "all"
    if key:
        return "key"
    return None


class DirectCore:
    """The check as an op, for the keys of one namespace (pure)."""

    def __init__(self, keys: RevKeys) -> None:
        self.keys = keys

    def check(self, ids: Ids, now: float) -> Op[Kind | None]:
        """The kind that revokes a token with these ids, per Redis: the same state the log is
        written with, read in one MULTI/EXEC (no script)."""
        replies = yield Transaction(check_commands(self.keys, ids))
        return check_verdict(replies, ids[3], now)


class _Direct(Generic[Client]):
    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        self.core = DirectCore(RevKeys(settings.namespace))
        self._client: Client = client if client is not None else self._connect(settings)

    def _connect(self, settings: Settings) -> Client:
        raise NotImplementedError

    check = operation(DirectCore.check)


class DirectCheck(_Direct[SyncClient], Blocking):
    """``check(ids, now)`` on a redis-py client (blocks: for threads)."""

    def _connect(self, settings: Settings) -> SyncClient:
        return blocking_client(settings, 0.0, NAME)

    def close(self) -> None:
        """Release the connection pool."""
        self._client.close()


class AsyncDirectCheck(_Direct[AsyncClient], Awaiting):
    """``await check(ids, now)`` on a ``redis.asyncio`` client."""

    def _connect(self, settings: Settings) -> AsyncClient:
        return blocking_async_client(settings, 0.0, NAME)

    async def aclose(self) -> None:
        """Release the connection pool."""
        await self._client.aclose()
