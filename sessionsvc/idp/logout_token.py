"""OpenID Connect Back-Channel Logout 1.0 §2.6: logout token verification (pure, no I/O: keys
come from a ``KeyLookup``, the time from the caller).

The signature layer is ``sessionsvc.idp.jws`` (shared with ``secevent``). Then the logout
token's claims, kind first (an ID token shown here is told it is no logout token): ``events``
with the back-channel-logout member → no ``nonce`` → ``aud`` → ``iat`` (not in the future, not
older than ``max_token_age``, both give or take ``leeway``) → ``exp`` (not expired, give or take
``leeway``; ``exp - iat`` at most ``max_token_age``: a short ``exp``) → ``jti`` → ``sub``
and/or ``sid`` → the issuer's ``trust.events`` allow logouts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from sessionsvc.errors import IdpTokenRejected
from sessionsvc.idp.claims import (
    check_audience,
    check_issued_at,
    identifier,
    numeric_date,
    required_claim,
)
from sessionsvc.idp.jws import verify_signed
from sessionsvc.idp.model import BACKCHANNEL_LOGOUT, KeyLookup, LogoutRequest
from sessionsvc.idp.trust import Idps

__all__ = ["LOGOUT_TYP", "verify_logout_token"]

LOGOUT_TYP: Final = "logout+jwt"


def verify_logout_token(
    token: str,
    idps: Idps,
    keys: KeyLookup | None,
    now: float,
    *,
    leeway: float = 30,
    max_size: int = 16384,
) -> LogoutRequest:
    """The logout request ``token`` carries, if every check of §2.6 passes; otherwise
    ``IdpTokenRejected`` (``IdpKeysUnavailable`` when the issuer's keys cannot be had)."""
    trust, claims = verify_signed(
        token, idps, keys, typ=LOGOUT_TYP, require_typ=None, max_size=max_size
    )
    _validate_events(claims)
    if "nonce" in claims:
        raise IdpTokenRejected("invalid_request", "nonce_present", "a logout token has no nonce")
    check_audience(claims, trust)
    iat = numeric_date(required_claim(claims, "iat"), "iat")
    exp = numeric_date(required_claim(claims, "exp"), "exp")
    _validate_iat(iat, now, leeway, trust.max_token_age)
    _validate_exp(exp, iat, now, leeway, trust.max_token_age)
    jti = identifier(claims, "jti")
    sub, sid = _validate_subject(claims)
    if "backchannel_logout" not in trust.events:
        raise IdpTokenRejected("access_denied", "not_allowed", "issuer may not send logouts")
    return LogoutRequest(trust.issuer, jti, iat, exp, sub, sid)


def _validate_events(claims: Mapping[str, Any]) -> None:
    events = claims.get("events")
    if "events" not in claims:
        raise IdpTokenRejected("invalid_request", "missing_events", "no events claim")
    if not isinstance(events, dict):
        raise IdpTokenRejected("invalid_request", "bad_claim", "events must be a JSON object")
    if BACKCHANNEL_LOGOUT not in events:
        raise IdpTokenRejected("invalid_request", "missing_events", "not a back-channel logout")
    if not isinstance(events[BACKCHANNEL_LOGOUT], dict):
        raise IdpTokenRejected("invalid_request", "bad_claim", "the logout event is no object")


def _validate_iat(iat: float, now: float, leeway: float, max_age: int) -> None:
    check_issued_at(iat, now, leeway)
    if now - iat > max_age + leeway:
        raise IdpTokenRejected("invalid_request", "too_old", f"iat is over {max_age} s old")


def _validate_exp(exp: float, iat: float, now: float, leeway: float, max_age: int) -> None:
    if now >= exp + leeway:
        raise IdpTokenRejected("invalid_request", "expired", "the logout token has expired")
    if not 0 < exp - iat <= max_age:
        raise IdpTokenRejected("invalid_request", "bad_lifetime", f"exp - iat over {max_age} s")


def _validate_subject(claims: Mapping[str, Any]) -> tuple[str | None, str | None]:
    if "sub" not in claims and "sid" not in claims:
        raise IdpTokenRejected("invalid_request", "no_subject", "neither sub nor sid is given")
    sub = identifier(claims, "sub") if "sub" in claims else None
    sid = identifier(claims, "sid") if "sid" in claims else None
    return sub, sid
