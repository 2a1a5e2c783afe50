"""The session operations' Redis steps on Redis Cluster: single-slot steps, ordered (pure).

On one Redis each operation is one script over the user's slot ``{u:<tag>}`` and ``{rev}``
(``sessionsvc.sessions.single``). A cluster refuses that (CROSSSLOT), so here each operation is
a few scripts of one slot each, answering what the one script answers. Invariants:

1. **A revocation is recorded before the session it ends disappears, and a session marked to
   end never comes back.** Logout: the session is marked ``ending`` (``user_mark``), the sid
   revoked through the apply path (``apply_own``), then the session ended (``user_end``).
   Eviction at the cap and refresh-token reuse mark the same way (``user_login``,
   ``user_refresh``). A marked session is refused by every refresh, which then revokes and ends
   it itself, and hidden from listing: a failure between the steps cannot let it live again
   once its revocation (which outlives only its access tokens) has expired.
2. **A refresh racing a logout-everywhere mints no token its cutoff misses.** The user's
   *fence* (``{u:<tag>}:fence``): ``fence_open`` records the operation's cutoff as pending
   (raised past every session's last activity, as on one Redis), the user revocation is applied
   with it, ``fence_close`` ends the sessions created before it and keeps it as ``before``. A
   refresh reads ``{rev}`` (``rev_read``), then rotates in ``{u}`` (``user_refresh``): one that
   rotated before the fence opened has ``iat`` < the cutoff; one that would rotate after it
   finds the pending entry (or ``before``) and is refused. A login is refused the same way.
   Each operation has an entry of its own (``p:<op>``), so one's end never clears another's.
3. **An operation that finds a pending logout-everywhere finishes it** (``_finish``: apply it
   with its recorded origin — a publisher's budget still counts — then close it) and starts
   again: a logout-everywhere interrupted between its steps blocks that user's logins and
   refreshes only until the next one comes.

A login that records an identity provider's session first adds the new sid to that IdP
session's index (``record_idp``: ``login_idp``, a slot of its own), as on one Redis: a failure
before the session exists leaves a member naming no session, never a session the IdP cannot end.

The operations' ``a`` is what their one-Redis script takes (``sessionsvc._redis.scripts``).

**Durability** (``durable``: ``SESSIONSVC_DURABILITY``, ``sessionsvc._redis.durability``): the
revocation steps (every ``apply_own``, an eviction's ``apply_batch``) are confirmed as the level
says: at ``replica`` each with the barrier and ``WAIT`` on one connection to the ``{rev}``
primary (``Replicated``), at ``aof`` after ``INFO persistence`` of that primary; a refresh's
rotation (``user_refresh``) with ``WAIT`` on the user's primary, as a rotation is confirmed on
one Redis. The other ``{u}`` steps stay bare: they acknowledge no revocation (a revocation is
recorded, and confirmed, before its session is ended).
"""

from __future__ import annotations

import json
from typing import Any, Final

from sessionsvc._redis import layout
from sessionsvc._redis.durability import Durable
from sessionsvc._redis.scripts import REVOCATION, SCRIPTS, Call
from sessionsvc.encoding import as_text
from sessionsvc.errors import SessionError
from sessionsvc.revocation.log import OVER_CAPACITY
from sessionsvc.revocation.log import format_number as num
from sessionsvc.sessions.keys import SessionKeys
from sessionsvc.sessions.model import Op
from sessionsvc.tokens.issuer import new_id

__all__ = ["ATTEMPTS", "ClusterSteps"]

ATTEMPTS: Final = 5
"""How often an operation starts again after finishing a pending logout-everywhere or
evicting sessions (another login may fill the cap meanwhile) before giving up."""
_BUDGET_INDEX: Final = str(len(layout.REV_APPLY) + 1)  # a publisher's budget: after {rev}'s


class ClusterSteps:
    """The session operations in single-slot steps (the module's invariants)."""

    __slots__ = ("_apply_keys", "_durable", "_fence_ttl", "_read_keys", "_till_offset", "keys")

    def __init__(
        self,
        keys: SessionKeys,
        *,
        till_offset: float,
        fence_ttl: float,
        durable: Durable | None = None,
    ) -> None:
        self.keys = keys
        self._durable = durable  # the revocation steps' confirmation (None: bare)
        ns = keys.namespace
        self._apply_keys = SCRIPTS["apply_own"].rev_keys(ns)
        self._read_keys = SCRIPTS["rev_read"].rev_keys(ns)
        self._till_offset = till_offset  # a revocation's until, after its before or now
        self._fence_ttl = str(max(1, int(fence_ttl * 1000)))

    # -- the operations (the answers of their one-Redis scripts) --------------------------

    def login(self, tag: str, a: dict[str, str]) -> Op[Any]:
        """``['ok']`` or ``['superseded', cutoff]`` (the eviction revoked and ended first)."""
        k, sid, sub = self.keys, a["sid"], a["sub"]
        keys = [k.index_of(tag), k.session_of(tag, sid), k.fence_of(tag)]
        argv = [a[name] for name in SCRIPTS["user_login"].argv.fields[:-1]]
        evicted: list[str] = []
        for _ in range(ATTEMPTS):
            read = yield self._read(sub)
            cutoff = num(max(float(as_text(read[0])), float(as_text(read[1]))))
            reply = yield Call("user_login", keys, [*argv, cutoff, *evicted])
            status = as_text(reply[0])
            if status == "pending":
                yield from self._finish(tag, sub, reply[1:])
            elif status == "evict":
                sids = [as_text(s) for s in reply[1:]]
                records = [self._session(s, a, reason="evicted") for s in sids]
                yield from self._revoked(SCRIPTS["apply_batch"].batch(self._apply_keys, records))
                evicted += sids
            else:
                return reply
        raise SessionError(f"login refused: the user's sessions kept changing ({ATTEMPTS} tries)")

    def record_idp(self, key: str, sid: str, ttl_ms: str) -> Op[Any]:
        """``login_idp``: ``sid`` joins the IdP session's index ``key``, a slot of its own (a
        step before the login's; bare, as the login's ``{u}`` steps)."""
        return (yield SCRIPTS["login_idp"].call({"idp": key}, {"sid": sid, "ttl_ms": ttl_ms}))

    def refresh(self, tag: str, sub: str, a: dict[str, str]) -> Op[Any]:
        """``refresh.lua``'s answers; on reuse the session is revoked, then ended."""
        k, sid = self.keys, a["sid"]
        keys = [k.index_of(tag), k.session_of(tag, sid), k.fence_of(tag)]
        names = ("now", "sid", "jti", "new_jti", "new_iat", "refresh_ttl", "idle_timeout")
        argv = [*(a[n] for n in names), a["overlap"], a["leeway"]]
        for _ in range(ATTEMPTS):
            read = yield self._read(sub, jti=a["jti"], kid=a["kid"], sids=(sid,))
            user, everyone, jti, kid, revoked = (as_text(x) for x in read)
            call = Call("user_refresh", keys, [*argv, user, everyone, revoked, jti, kid])
            reply = yield from self._rotated(call)
            status = as_text(reply[0])
            if status == "pending":
                yield from self._finish(tag, sub, reply[1:])
                continue
            if status == "ending":  # marked: revoke it, end it (whoever marked it stopped short)
                reason = as_text(reply[1])
                yield from self._revoked(self._apply(self._session(sid, a, reason=reason)))
                yield Call("user_end", keys[:2], [sid])
                return ["reuse"] if reason == "refresh_reuse" else ["revoked", "session"]
            return reply
        raise SessionError(f"refresh refused: a logout-everywhere kept coming ({ATTEMPTS} tries)")

    def logout(self, tag: str, budget: str | None, a: dict[str, str]) -> Op[Any]:
        """``[existed, log id or '']``, or ``[0, 'over_capacity']`` (nothing done)."""
        k, sid, reason = self.keys, a["sid"], a["reason"]
        session = k.session_of(tag, sid)
        yield Call("user_mark", [session], [reason, "0"])
        record = self._session(sid, a, reason=reason, origin=a, budget=budget)
        log_id = yield from self._revoked(self._apply(record, budget), "the logout")
        if as_text(log_id or "") == OVER_CAPACITY:
            yield Call("user_mark", [session], [reason, "1"])  # refused: the session stays
            return [0, OVER_CAPACITY]
        existed = yield Call("user_end", [k.index_of(tag), session], [sid])
        return [existed, log_id or ""]

    def logout_all(self, tag: str, budget: str | None, a: dict[str, str]) -> Op[Any]:
        """``[ended, before, log id or '']``, or ``[0, before, 'over_capacity']``."""
        keys = [self.keys.index_of(tag), self.keys.fence_of(tag)]
        op, origin = new_id(), _origin(a, budget)
        fence = [a["before"], a["clamp"], self._fence_ttl, op, json.dumps(origin)]
        opened = yield Call("fence_open", keys, fence)
        before, ended = as_text(opened[0]), int(opened[1])  # (another op may end them: ours)
        refused = yield from self._revoke_user(
            tag, a["sub"], op=op, before=before, origin=origin, now=a["now"]
        )
        return [0 if refused else ended, before, OVER_CAPACITY if refused else ""]

    def list_hashes(self, tag: str, sub: str, now: str) -> Op[list[Any]]:
        """The live session hashes, without those ``{rev}`` says are revoked."""
        hashes = yield SCRIPTS["list"].call({"idx": self.keys.index_of(tag)}, {"now": now})
        if not hashes:
            return []
        return (yield from self._unrevoked(sub, list(hashes)))

    def get_hash(self, tag: str, sub: str, session_id: str, now: str) -> Op[Any]:
        """One live session hash, or nothing (also when ``{rev}`` says it is revoked)."""
        session = self.keys.session_of(tag, session_id)
        found = yield SCRIPTS["get"].call({"session": session}, {"now": now})
        if not found:
            return None
        kept = yield from self._unrevoked(sub, [found])
        return kept[0] if kept else None

    # -- steps -----------------------------------------------------------------------------

    def _finish(self, tag: str, sub: str, pending: Any) -> Op[None]:
        # a logout-everywhere under way (another op's, interrupted?): apply it as it would
        # have (its origin: a publisher's budget still counts), then close its entry
        op, before, recorded = (as_text(x) for x in pending)
        try:
            origin = json.loads(recorded)
            if not isinstance(origin, dict):
                raise ValueError(recorded)
        except ValueError:  # (written by hand: apply it as our own)
            origin = {}
        yield from self._revoke_user(tag, sub, op=op, before=before, origin=origin, now=before)

    def _revoke_user(
        self, tag: str, sub: str, *, op: str, before: str, origin: dict[str, Any], now: str
    ) -> Op[bool]:
        # the user revocation of a fenced logout-everywhere, then its fence closed; True when
        # the publisher's budget refused it (then nothing is ended)
        budget = origin.get("budget") or None
        budget = budget if isinstance(budget, str) else None
        a = {"now": now, "reason": str(origin.get("reason") or "logout_all")}
        if budget is not None:
            a |= {k: str(origin.get(k, "")) for k in ("source", "id", "cap")}
        elif "source" in origin:
            a |= {k: str(origin.get(k, "")) for k in ("source", "id")} | {"cap": "0"}
        revocation = self._apply(self._user(sub, before, a, budget=budget), budget)
        log_id = yield from self._revoked(revocation, "the logout")
        refused = as_text(log_id or "") == OVER_CAPACITY
        keys = [self.keys.index_of(tag), self.keys.fence_of(tag)]
        yield Call("fence_close", keys, [op, before, "1" if refused else "0", self._fence_ttl])
        return refused

    def _unrevoked(self, sub: str, hashes: list[Any]) -> Op[list[Any]]:
        fields = [_fields(h) for h in hashes]
        read = yield self._read(sub, sids=[f["sid"] for f in fields])
        cutoff = max(float(as_text(read[0])), float(as_text(read[1])))
        flags = read[4:]
        return [
            h
            for h, f, revoked in zip(hashes, fields, flags, strict=True)
            if int(revoked) == 0 and float(f["created"]) >= cutoff and "ending" not in f
        ]

    def _revoked(self, call: Call, what: str = "the revocation") -> Op[Any]:
        """A revocation step's reply, confirmed as the durability level says."""
        d = self._durable
        return (yield call) if d is None else (yield from d.applied(call, what))

    def _rotated(self, call: Call) -> Op[Any]:
        """``user_refresh``'s reply; at ``replica`` with ``WAIT`` on the user's primary, as on
        one Redis: a rotation consumes the presented token (a failover must not bring it back
        unused). No barrier: a rotation always writes; any answer that wrote nothing refuses."""
        d = self._durable
        if d is None:
            return (yield call)
        return (yield from d.applied(call, "the refresh (rotation)", writes=True))

    def _read(self, sub: str, *, jti: str = "", kid: str = "", sids: Any = ()) -> Call:
        return Call("rev_read", self._read_keys, [sub, jti, kid, *sids])

    def _apply(self, record: list[str], budget: str | None = None) -> Call:
        keys = self._apply_keys if budget is None else [*self._apply_keys, budget]
        return Call("apply_own", keys, record)

    def _session(
        self,
        sid: str,
        a: dict[str, str],
        *,
        reason: str,
        origin: dict[str, str] | None = None,
        budget: str | None = None,
    ) -> list[str]:
        now = a["now"]
        return self._record(
            "session", sid, "0", num(float(now) + self._till_offset), now, reason, origin, budget
        )

    def _user(
        self,
        sub: str,
        before: str,
        a: dict[str, str],
        *,
        budget: str | None = None,
    ) -> list[str]:
        till = num(float(before) + self._till_offset)
        origin = a if "source" in a else None
        return self._record("user", sub, before, till, a["now"], a["reason"], origin, budget)

    def _record(  # noqa: PLR0917 (the record's fields, in its order)
        self,
        kind: str,
        value: str,
        before: str,
        till: str,
        now: str,
        reason: str,
        origin: dict[str, str] | None,
        budget: str | None,
    ) -> list[str]:
        o = origin or {}
        return REVOCATION.build(
            kind=kind,
            value=value,
            before=before,
            till=till,
            epoch=new_id(),
            id=o.get("id", ""),
            source=o.get("source", "sessionsvc"),
            reason=reason,
            at=now,
            cap=o.get("cap", "0") if budget else "0",
            budget=_BUDGET_INDEX if budget else "0",
        )


def _origin(a: dict[str, str], budget: str | None) -> dict[str, str]:
    # what a logout-everywhere records beside its pending cutoff, for whoever finishes it
    origin: dict[str, str] = {k: a[k] for k in ("source", "id", "reason") if k in a}
    if budget:
        origin |= {"budget": budget, "cap": a.get("cap", "0")}
    return origin


def _fields(flat: Any) -> dict[str, str]:
    return {as_text(flat[i]): as_text(flat[i + 1]) for i in range(0, len(flat) - 1, 2)}
