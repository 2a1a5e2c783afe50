"""The session operations' Redis steps on one Redis (or Sentinel): one script call each (pure).

``SessionCore`` decides and signs; a steps object runs an operation's part in Redis and
answers what that operation's script answers (``sessionsvc/_redis/lua``: ``login.lua``,
``refresh.lua``, …). Here each operation is its one script over the user's slot and ``{rev}``,
with the durability level's confirmation (``sessionsvc._redis.durability``): a login is a write
that acknowledges no revocation, a logout, a logout-everywhere and a refresh (a rotation
consumes the presented token, reuse revokes the session) are revocations. On Redis Cluster,
``sessionsvc.sessions.cluster`` answers the same in single-slot steps.

``a`` is the operation's script ARGV by name (``sessionsvc._redis.scripts``).
"""

from __future__ import annotations

from typing import Any

from sessionsvc._redis.durability import Durable
from sessionsvc._redis.scripts import SCRIPTS as REGISTRY
from sessionsvc.sessions.keys import SessionKeys
from sessionsvc.sessions.model import SESSION_SCRIPTS, Op

__all__ = ["OneRedis"]


class OneRedis:
    """Each session operation as one script call (the user's slot and ``{rev}`` together)."""

    __slots__ = ("_calls", "_durable", "keys")

    def __init__(self, keys: SessionKeys, durable: Durable | None) -> None:
        self.keys = keys
        self._durable = durable
        self._calls = {name: REGISTRY[name].bind(keys.namespace) for name in SESSION_SCRIPTS}

    def login(self, tag: str, a: dict[str, str]) -> Op[Any]:
        """``login.lua``'s reply: ``['ok', evicted…]`` or ``['superseded', cutoff]``."""
        k = self.keys
        call = self._calls["login"](idx=k.index_of(tag), session=k.session_of(tag, a["sid"]), **a)
        d = self._durable
        return (yield call) if d is None else (yield from d.written(call))

    def record_idp(self, key: str, sid: str, ttl_ms: str) -> Op[Any]:
        """``login_idp.lua``: ``sid`` joins the IdP session's index ``key`` (before the login,
        which acknowledges no revocation either: the ``aof`` check only)."""
        call = self._calls["login_idp"](idp=key, sid=sid, ttl_ms=ttl_ms)
        d = self._durable
        return (yield call) if d is None else (yield from d.written(call))

    def refresh(self, tag: str, sub: str, a: dict[str, str]) -> Op[Any]:
        """``refresh.lua``'s reply (``sub``: the token's, which the script reads itself)."""
        k = self.keys
        call = self._calls["refresh"](idx=k.index_of(tag), session=k.session_of(tag, a["sid"]), **a)
        d = self._durable
        if d is None:
            return (yield call)
        # every answer is confirmed: a rejection says the session is dead (a retry confirms too)
        return (yield from d.applied(call, "the refresh (rotation or revocation)"))

    def logout(self, tag: str, budget: str | None, a: dict[str, str]) -> Op[Any]:
        """``logout.lua``'s reply: ``[existed, log id or '']`` or ``[0, 'over_capacity']``."""
        k = self.keys
        call = self._calls["logout"](
            idx=k.index_of(tag), session=k.session_of(tag, a["sid"]), budget=budget, **a
        )
        d = self._durable
        return (yield call) if d is None else (yield from d.applied(call, "the logout"))

    def logout_all(self, tag: str, budget: str | None, a: dict[str, str]) -> Op[Any]:
        """``logout_all.lua``'s reply: ``[ended, before, log id or '' or 'over_capacity']``."""
        call = self._calls["logout_all"](idx=self.keys.index_of(tag), budget=budget, **a)
        d = self._durable
        return (yield call) if d is None else (yield from d.applied(call, "the logout"))

    def list_hashes(self, tag: str, sub: str, now: str) -> Op[list[Any]]:
        """The live session hashes of the user (flat field/value lists), oldest first."""
        hashes: list[Any] = yield self._calls["list"](idx=self.keys.index_of(tag), now=now)
        return hashes

    def get_hash(self, tag: str, sub: str, session_id: str, now: str) -> Op[Any]:
        """One live session hash, or nothing."""
        session = self.keys.session_of(tag, session_id)
        return (yield self._calls["get"](session=session, now=now))
