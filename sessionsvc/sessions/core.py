"""Sessions, the pure core: script arguments, result decoding, the rotation decision.

Each operation is a generator of effects; its Redis part is a *steps* object's: on one Redis
(or Sentinel) ``sessionsvc.sessions.single`` (one script call, built by name through the script
registry, and the durability level's confirmation), on Redis Cluster
``sessionsvc.sessions.cluster`` (single-slot steps, ordered so that a revocation is always
recorded before the session it ends disappears). Both answer what the one-Redis script answers;
the decisions on those answers, signing and verification happen here, with the injected clock;
there is no I/O.

**Rotation decision** (``sessionsvc/_redis/lua/refresh.lua``; RFC 9700), for a refresh token
whose signature and claims verified:

1. no session hash → ``TokenRejected("revoked")`` (logged out, evicted, timed out, or lost);
2. the session is revoked in ``{rev}`` (its sid, the token's jti or kid, or a user/global
   ``before`` later than the session's creation) → session deleted, ``TokenRejected("revoked")``;
3. idle or absolute timeout passed → session deleted, ``TokenRejected("expired")``;
4. jti is the current one → rotate: a new refresh token becomes current, the presented one
   becomes *previous*, the idle expiry slides;
5. jti is the previous one and the last rotation is at most ``refresh_overlap`` seconds old →
   the **current** refresh token is answered again (same claims, re-signed: byte-identical for
   EdDSA/HS256/RS256) with a fresh access token; no new branch, no logout on a retry;
6. anything else (older tokens, the previous one after the window) → reuse: the session is
   revoked through the apply path, then deleted, ``RefreshReuseDetected``.

**Cutoffs ahead of the clock.** The tokens of a login or refresh must not predate a user/global
``before`` (the cutoff), or validators reject them as revoked. When the cutoff is later than this
node's clock (a node behind the one that logged the user out), login signs again as of it (the
script answered ``superseded`` with the cutoff: a second round trip only then) and refresh signs
with ``iat = max(floor(now), ceil(cutoff))`` (the script returns the cutoff). A cutoff whose
ceiling lies more than the leeway ahead would give tokens validators refuse as issued in the
future: ``SessionError``.

**Identity providers' sessions.** A login may record the IdP session it comes from
(``idp_issuer``, ``idp_sid``: kept in the session hash as ``idp_iss``/``idp_sid``). Its sid then
joins that IdP session's index (``SessionKeys.idp``, a set whose TTL covers the absolute timeout
plus the longest access-token lifetime, only ever extended) in a step **before** the login
script, on one Redis as on a cluster: a failure in between leaves a member that names no
session (its logout ends nothing), never a session the IdP's back-channel logout cannot find.
``idp_sessions`` answers the members; the caller logs each out (idempotent).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, NamedTuple

from sessionsvc._redis.durability import Durable
from sessionsvc._redis.run import Command
from sessionsvc.config import Settings
from sessionsvc.encoding import as_text as _text
from sessionsvc.errors import (
    InvalidArgument,
    OverCapacity,
    RefreshReuseDetected,
    SessionError,
    SessionNotFound,
    TokenRejected,
)
from sessionsvc.revocation.events import Lifetimes
from sessionsvc.revocation.log import OVER_CAPACITY
from sessionsvc.revocation.log import format_number as num
from sessionsvc.sessions.cluster import ClusterSteps
from sessionsvc.sessions.keys import (
    SessionKeys,
    idp_field,
    idp_pair,
    is_session_id,
    parse_session_id,
    user_tag,
)
from sessionsvc.sessions.model import REV_KEYS, Call, Op, SessionInfo
from sessionsvc.sessions.single import OneRedis
from sessionsvc.tokens.claims import REFRESH_CLAIMS, ClaimRules
from sessionsvc.tokens.issuer import (
    REFRESH_TYPE,
    RESERVED_CLAIMS,
    TokenIssuer,
    TokenPair,
    dump_claims,
    new_id,
)
from sessionsvc.tokens.verify import TokenVerifier

__all__ = [
    "LOCAL",
    "REV_KEYS",
    "Call",
    "Op",
    "Origin",
    "OverCapacity",
    "SessionCore",
    "SessionInfo",
]

LOGIN_ATTEMPTS: Final = 3
_LIMITS: Final = {"ip": 64, "user_agent": 512, "device": 128}


def _meta(name: str, value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidArgument(f"{name} must be a string")
    return value[: _LIMITS[name]]


class Origin(NamedTuple):
    """Where a revocation comes from, as the revocation log records it: its ``source`` and
    event id; for a publisher's event, that publisher's ``budget`` key and its ``cap`` (the
    live revocations it may hold)."""

    source: str = "sessionsvc"
    event_id: str = ""
    budget: str | None = None
    cap: int = 0


def _refused(reply: Any, origin: Origin) -> bool:
    """Does a logout or logout-everywhere reply say the origin's budget refused it?"""
    return origin.budget is not None and any(
        x in (OVER_CAPACITY, OVER_CAPACITY.encode()) for x in reply[1:]
    )


LOCAL: Final = Origin()
"""A revocation this process makes itself (logout, refresh reuse)."""


class SessionCore:
    """The decisions of the session service; ``SessionService``/``AsyncSessionService`` run them."""

    def __init__(
        self,
        settings: Settings,
        *,
        issuer: TokenIssuer | None = None,
        clock: Callable[[], float] = time.time,
        plain: bool = False,
        cluster: bool | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.keys = keys = SessionKeys(settings.namespace)
        self._allowed = frozenset(settings.app_claims) - RESERVED_CLAIMS
        self._issuer = issuer
        self._verifier: TokenVerifier | None = None
        self._lifetimes = lifetimes = Lifetimes.of(settings)
        # an IdP session's index outlives every session it lists, and their access tokens
        idp_ttl = settings.absolute_timeout + lifetimes.longest_access
        self._idp_ttl_ms = str(max(1, math.ceil(idp_ttl * 1000)))
        # the Redis steps: single-slot ones on a cluster (``cluster``: default, the setting)
        self.redis: OneRedis | ClusterSteps
        # SESSIONSVC_DURABILITY: None at ``none`` (one call per op, as always). On one Redis
        # also for ``plain`` (the worker, which confirms its batches itself: workers.scripts);
        # on a cluster the worker runs a logout's steps as an op, so they confirm themselves
        durable = Durable.of(settings)
        if settings.redis_cluster if cluster is None else cluster:
            till, fence = lifetimes.longest_access, settings.absolute_timeout
            self.redis = ClusterSteps(keys, till_offset=till, fence_ttl=fence, durable=durable)
        else:
            self.redis = OneRedis(keys, None if plain else durable)

    @property
    def issuer(self) -> TokenIssuer:
        """The token issuer, built on first use (listing and revoking need no signing keys)."""
        if self._issuer is None:
            self._issuer = TokenIssuer(self.settings, clock=self.clock)
        return self._issuer

    @property
    def verifier(self) -> TokenVerifier:
        """Verifies refresh tokens against the issuer's refresh ring."""
        if self._verifier is None:
            s = self.settings
            rules = ClaimRules(
                s.issuer, s.audience, s.leeway, REFRESH_CLAIMS, max_lifetime=s.refresh_ttl
            )
            ring = self.issuer.refresh_keys
            self._verifier = TokenVerifier(ring, REFRESH_TYPE, rules, s.max_token_size)
        self.issuer.poll_keys()  # (a reloaded refresh ring verifies at once)
        self._verifier.ring = self.issuer.refresh_keys
        return self._verifier

    def _revocation_until(self, now: float) -> str:
        # no access token of a revoked session outlives this; refresh needs the deleted hash
        return num(now + self._lifetimes.longest_access)

    def login(
        self,
        sub: str,
        *,
        ip: str | None = None,
        user_agent: str | None = None,
        device: str | None = None,
        claims: Mapping[str, Any] | None = None,
        idp_issuer: str | None = None,
        idp_sid: str | None = None,
    ) -> Op[TokenPair]:
        """Create a session and its first token pair (evicting the oldest session at the cap).
        ``idp_issuer`` and ``idp_sid`` (both or neither): the identity provider's session this
        login comes from; the new sid is added to its index first (``idp_sessions``)."""
        tag = user_tag(sub)
        ip, ua, device = _meta("ip", ip), _meta("user_agent", user_agent), _meta("device", device)
        idp = idp_pair(idp_issuer, idp_sid)
        idp_key = self.keys.idp(*idp) if idp is not None else ""
        idp_iss, idp_id = idp if idp is not None else ("", "")
        s, issuer = self.settings, self.issuer
        app_claims = dump_claims(claims) if claims else "{}"
        epoch = new_id() if s.max_sessions_per_user else ""  # only eviction applies a revocation
        cutoff = 0.0  # a logout-everywhere ahead of our clock: issue from it (see below)
        for _ in range(LOGIN_ATTEMPTS):
            now = max(self.clock(), math.ceil(cutoff))
            sid, jti, iat = f"{tag}.{new_id()}", new_id(), int(now)
            idle_exp, abs_exp = now + s.idle_timeout, now + s.absolute_timeout
            exp = min(iat + s.refresh_ttl, int(abs_exp))
            access = issuer.access_token(sub, sid, claims, now=iat)  # ClaimNotAllowed before I/O
            refresh = issuer.refresh_token(sub, sid, jti=jti, exp=exp, now=iat)
            a = {
                "now": num(now),
                "sub": sub,
                "sid": sid,
                "jti": jti,
                "iat": str(iat),
                "exp": str(exp),
                "idle_exp": num(idle_exp),
                "abs_exp": num(abs_exp),
                "ip": ip,
                "ua": ua,
                "device": device,
                "idp_iss": idp_iss,
                "idp_sid": idp_id,
                "claims": app_claims,
                "max_sessions": str(s.max_sessions_per_user),
                "till": self._revocation_until(now),
                "epoch": epoch,
            }
            if idp_key:  # the IdP session's index first: then no session it cannot find
                yield from self.redis.record_idp(idp_key, sid, self._idp_ttl_ms)
            reply = yield from self.redis.login(tag, a)
            if _text(reply[0]) == "ok":
                return TokenPair(access, refresh, sid, s.access_ttl, exp - iat)
            # 'superseded': the session would be born revoked. Sign again as of the cutoff
            # (iat >= before, created >= before), unless validators would then refuse the tokens
            # as issued in the future: a second round trip, only in this rare case.
            cutoff, clock = float(_text(reply[1])), self.clock()
            if math.ceil(cutoff) > clock + s.leeway:
                raise self._cutoff_error(cutoff, clock, "login")
        raise SessionError(
            "login refused: a logout-everywhere of this user kept moving past this node's "
            f"clock ({LOGIN_ATTEMPTS} attempts)"
        )

    def _cutoff_error(self, cutoff: float, now: float, what: str) -> SessionError:
        # tokens issued as of ``cutoff`` (iat = its ceiling) would be refused at ``now``
        ahead = math.ceil(cutoff) - now
        return SessionError(
            f"{what} refused: tokens issued after a logout-everywhere of this user carry iat "
            f"at or after its cutoff, {ahead:.1f} s ahead of this node's clock: more than the "
            f"leeway of {self.settings.leeway} s (clock skew between nodes, or a leeway under 1 s "
            "within the second of the logout)"
        )

    def refresh(self, refresh_token: str) -> Op[TokenPair]:
        """Rotate: verify the refresh token, apply the rotation decision, sign the answer."""
        s, now = self.settings, self.clock()
        verified = self.verifier.verify(refresh_token, now)
        c = verified.claims
        sub, sid = c["sub"], c["sid"]
        try:
            owner, tag = parse_session_id(sid)
        except SessionNotFound:
            raise TokenRejected("malformed", "sid is not a session id") from None
        if owner != sub:
            raise TokenRejected("malformed", "sid does not belong to sub")
        iat, new_jti = int(now), new_id()
        # the epoch candidate (needed only when reuse revokes the session, and then the new jti
        # is never handed out) may be the new jti: any fresh random id will do
        a = {
            "now": num(now),
            "sid": sid,
            "jti": c["jti"],
            "kid": verified.key.kid,
            "new_jti": new_jti,
            "new_iat": str(iat),
            "refresh_ttl": str(s.refresh_ttl),
            "idle_timeout": str(s.idle_timeout),
            "overlap": num(s.refresh_overlap),
            "till": self._revocation_until(now),
            "epoch": new_jti,
            "leeway": str(s.leeway),
        }
        reply = yield from self.redis.refresh(tag, sub, a)
        status = _text(reply[0])
        if status == "missing":
            raise TokenRejected("revoked", "the session has ended")
        if status == "revoked":
            raise TokenRejected("revoked", f"the session was revoked ({_text(reply[1])})")
        if status == "expired":
            raise TokenRejected("expired", "the session timed out")
        if status == "reuse":
            raise RefreshReuseDetected(sid)
        if status == "ahead":
            raise self._cutoff_error(float(_text(reply[1])), now, "refresh")
        app_claims, jti, jiat, jexp, cutoff = (_text(x) for x in reply[2:7])
        iat = max(iat, math.ceil(float(cutoff)))  # a logout-everywhere ahead of our clock
        # app claims stored at login; any the config no longer allows are dropped
        extra = {}
        if app_claims != "{}":
            extra = {k: v for k, v in json.loads(app_claims).items() if k in self._allowed}
        access = self.issuer.access_token(sub, sid, extra, now=iat)
        refresh = self.issuer.refresh_token(sub, sid, jti=jti, exp=int(jexp), now=int(jiat))
        return TokenPair(access, refresh, sid, s.access_ttl, max(0, int(jexp) - iat))

    def logout(
        self, session_id: str, *, reason: str = "logout", origin: Origin = LOCAL
    ) -> Op[bool]:
        """End one session and revoke it; True when a live session was deleted. ``origin`` is
        recorded in the revocation log (the worker passes the event's); ``OverCapacity`` when
        its budget refused the revocation (nothing was ended)."""
        source, event_id, budget, cap = origin
        tag, now = parse_session_id(session_id)[1], self.clock()
        a = {
            "now": num(now),
            "sid": session_id,
            "till": self._revocation_until(now),
            "epoch": new_id(),
            "reason": reason,
            "source": source,
            "id": event_id,
            "cap": str(cap),
        }
        reply = yield from self.redis.logout(tag, budget or None, a)
        if _refused(reply, origin):
            raise OverCapacity("the origin's revocations in force reached its cap")
        return int(reply[0]) == 1

    def logout_all(
        self, sub: str, *, reason: str = "logout_all", origin: Origin = LOCAL, clamp: bool = False
    ) -> Op[int]:
        """Delete every session of ``sub`` and revoke its tokens; the number of sessions ended.
        ``origin`` is recorded in the revocation log; the worker, for an event, passes its
        origin and ``clamp`` (the cutoff is at most Redis' clock); ``OverCapacity`` when the
        origin's budget refused it."""
        source, event_id, budget, cap = origin
        now, tag = num(self.clock()), user_tag(sub)
        a = {
            "now": now,
            "sub": sub,
            "before": now,
            "till_offset": str(self._lifetimes.longest_access),
            "epoch": new_id(),
            "reason": reason,
            "source": source,
            "id": event_id,
            "cap": str(cap),
            "clamp": "1" if clamp else "0",
        }
        reply = yield from self.redis.logout_all(tag, budget or None, a)
        if _refused(reply, origin):
            raise OverCapacity("the origin's revocations in force reached its cap")
        return int(reply[0])

    def idp_sessions(self, issuer: str, idp_sid: str) -> Op[list[str]]:
        """Our session ids recorded for the identity provider's session (``issuer``, its
        ``idp_sid``), sorted: the members of its index, which may name sessions that have ended
        since (logging each out is idempotent); ``[]`` for one never recorded. A member that is
        not one of our session ids (written by hand) is left out."""
        key = self.keys.idp(idp_field("issuer", issuer), idp_field("idp_sid", idp_sid))
        members = yield Command(("SMEMBERS", key))
        return sorted(sid for sid in map(_text, members) if is_session_id(sid))

    def list_sessions(self, sub: str) -> Op[list[SessionInfo]]:
        """The live sessions of ``sub``, oldest first."""
        reply = yield from self.redis.list_hashes(user_tag(sub), sub, num(self.clock()))
        return [SessionInfo.from_hash(h) for h in reply]

    def get_session(self, session_id: str) -> Op[SessionInfo]:
        """One live session; ``SessionNotFound`` if it is unknown, ended or timed out."""
        sub, tag = parse_session_id(session_id)
        reply = yield from self.redis.get_hash(tag, sub, session_id, num(self.clock()))
        if not reply:
            raise SessionNotFound("no live session with this id")
        return SessionInfo.from_hash(reply)
