"""What the receiver does with a token an identity provider pushed: verify it, then write it
into the idp intake with its jti claimed, in one script (``idp_accept.lua``).

The answer the provider gets means the token is in the intake, durable as
``SESSIONSVC_DURABILITY`` says, and its jti taken: a worker applies it within milliseconds
(``workers.idp_entries``), and no crash can lose it. A back-channel logout token whose jti was
received before is refused (``replayed``); a Security Event Token sent again is acknowledged
(a transmitter that missed our answer retries; RFC 8935 has no error for it), not applied twice.
A push is authenticated before its body is parsed: the ``Authorization: Bearer`` token must
be one of the issuer's ``receiver_tokens`` (constant-time comparison), and the SET's ``iss``
that issuer.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from typing import Any

import structlog

from sessionsvc._redis.durability import Durable
from sessionsvc._redis.run import run
from sessionsvc._redis.scripts import SCRIPTS
from sessionsvc.config import Settings
from sessionsvc.errors import IdpTokenRejected
from sessionsvc.idp.logout_token import verify_logout_token
from sessionsvc.idp.model import KeyLookup
from sessionsvc.idp.secevent import verify_set
from sessionsvc.idp.trust import Idps
from sessionsvc.revocation.intakes import Intakes

from .idp_entries import SET_CLAIM_TTL, claim_digest

__all__ = ["IdpReceiverIntake"]

log = structlog.get_logger("workers.idp")
ACCEPT = SCRIPTS["idp_accept"]


class IdpReceiverIntake:
    """The receiver's ``IdpIntake``: verified tokens into ``{<ns>:events}:idp.tokens``."""

    def __init__(
        self,
        settings: Settings,
        idps: Idps,
        keys: KeyLookup,
        redis: Any,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings, self.idps, self.keys, self.redis, self.clock = (
            settings,
            idps,
            keys,
            redis,
            clock,
        )
        self.intakes = Intakes.of(settings)
        self.durable = Durable.of(settings)

    def backchannel_logout(self, logout_token: str) -> None:
        """Verify a logout token and queue it; ``IdpTokenRejected`` (``replayed`` too)."""
        now = self.clock()
        try:
            req = verify_logout_token(logout_token, self.idps, self.keys, now, leeway=self.leeway)
        except IdpTokenRejected as exc:
            _refused("backchannel_logout", exc)
            raise
        ttl = max(req.exp - now, 0) + self.leeway
        if not self._accept("logout_token", logout_token, req.issuer, req.jti, ttl):
            replay = IdpTokenRejected(
                "invalid_request", "replayed", "this logout token's jti was received before"
            )
            _refused("backchannel_logout", replay, req.issuer)
            raise replay

    def security_event(self, set_token: str, authorization: str | None) -> None:
        """Authenticate the transmitter, verify its SET, queue it (a SET sent again is
        acknowledged, not queued twice)."""
        try:
            issuer = self._authenticated(authorization)
        except IdpTokenRejected as exc:
            _refused("ssf_events", exc)
            raise
        self.polled(issuer, set_token)

    def polled(self, issuer: str, set_token: str) -> None:
        """Verify a SET that ``issuer``'s transmitter sent (pushed, or answered to our poll)
        and queue it; ``IdpTokenRejected`` (``access_denied`` when another issuer signed it)."""
        try:
            tok = verify_set(set_token, self.idps, self.keys, self.clock(), leeway=self.leeway)
            if tok.issuer != issuer:
                raise IdpTokenRejected(
                    "access_denied", "wrong_transmitter", "the SET's iss is not this transmitter"
                )
        except IdpTokenRejected as exc:
            _refused("ssf_events", exc, issuer)
            raise
        if tok.verification is not None or not tok.events:
            log.info("idp_set_acknowledged", issuer=issuer, ignored=len(tok.ignored))
            return  # nothing to apply: a verification event, or event types we do not know
        self._accept("set", set_token, tok.issuer, tok.jti, SET_CLAIM_TTL)

    @property
    def leeway(self) -> int:
        return self.settings.leeway

    def _authenticated(self, authorization: str | None) -> str:
        """The issuer whose receiver token ``authorization`` presents."""
        scheme, _, given = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise IdpTokenRejected(
                "authentication_failed", "no_credentials", "a Bearer token is required"
            )
        presented = given.strip().encode("utf-8", "surrogatepass")
        found = None
        for trust in self.idps:  # every comparison runs: no early exit on a match
            for secret in trust.receiver_tokens:
                if hmac.compare_digest(presented, secret.get_secret_value().encode()):
                    found = trust.issuer
        if found is None:
            raise IdpTokenRejected(
                "authentication_failed", "bad_credentials", "the Bearer token is not accepted"
            )
        return found

    def _accept(self, field: str, token: str, issuer: str, jti: str, ttl: float) -> bool:
        """Write the token into the idp intake with its jti claimed; False when it was."""
        claim = self.intakes.idp_claim_key(claim_digest(issuer, jti))
        call = ACCEPT.call(
            {"stream": self.intakes.idp.stream, "claim": claim},
            {"ttl_ms": str(max(1000, int(ttl * 1000)))},
            more_argv=[field, token],
        )
        d = self.durable

        def op() -> Any:
            if d is None:
                return (yield call)
            return (yield from d.applied(call, "the identity provider's token", writes=True))

        entry = run(self.redis, op())
        return entry is not None and entry is not False


def _refused(route: str, exc: IdpTokenRejected, issuer: str | None = None) -> None:
    """Every refused token is logged with its reason (never the token)."""
    log.warning("idp_token_refused", route=route, issuer=issuer, code=exc.code, reason=exc.reason)
