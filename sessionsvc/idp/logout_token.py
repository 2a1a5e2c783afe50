"""OpenID Connect Back-Channel Logout 1.0 §2.6: logout token verification (pure, no I/O: keys
come from a ``KeyLookup``, the time from the caller).

``verify_signed`` is the signature layer this module shares with ``secevent``; it trusts
nothing the earlier steps did not establish:

1. size cap (``too_large``) before any decoding; three canonical segments, strict JSON header
   and payload (``malformed``); ``alg`` one of ``trust.ALGORITHMS`` (never ``none``, never HMAC:
   ``alg_not_allowed``); ``kid`` a printable string if given; ``crit`` refused
   (``forbidden_header``); ``jku``, ``x5u``, ``jwk``, ``x5c`` never honoured (ignored);
2. ``typ``, when present, the expected media type, ``application/`` prefix optional, any case
   (``wrong_typ``); when required, present (``missing_typ``);
3. the unverified ``iss`` only picks the trust entry (``invalid_issuer``), whose
   ``algorithms`` must list ``alg``; ``keys.key(iss, kid, alg)`` gives the key (its errors and
   ``IdpKeysUnavailable`` pass through), bound to that ``alg``; PyJWT verifies with it.

Then the logout token's claims, kind first (an ID token shown here is told it is no logout
token): ``events`` with the back-channel-logout member → no ``nonce`` → ``aud`` → ``iat``
(not in the future, not older than ``max_token_age``, both give or take ``leeway``) → ``exp``
(not expired, give or take ``leeway``; ``exp - iat`` at most ``max_token_age``: a short ``exp``)
→ ``jti`` → ``sub`` and/or ``sid`` → the issuer's ``trust.events`` allow logouts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

from jwt import PyJWK, PyJWTError

from sessionsvc._boundary import Rule, map_exceptions
from sessionsvc.encoding import StrictDecodeError, loads_object
from sessionsvc.errors import IdpTokenRejected, SessionError, TokenRejected
from sessionsvc.idp.model import BACKCHANNEL_LOGOUT, KeyLookup, LogoutRequest
from sessionsvc.idp.trust import ALGORITHMS, Idps, IdpTrust
from sessionsvc.tokens.claims import MAX_NUMERIC_DATE, id_claim_problem
from sessionsvc.tokens.verify import Compact, parse_compact

__all__ = [
    "check_audience",
    "check_issued_at",
    "identifier",
    "numeric_date",
    "required_claim",
    "verify_logout_token",
    "verify_signed",
]

LOGOUT_TYP: Final = "logout+jwt"


def _bad_key(exc: Exception, what: str) -> SessionError:
    return IdpTokenRejected("invalid_key", "bad_signature", f"{what} ({type(exc).__name__})")


# PyJWT and cryptography, handed a key that does not fit the signature: the key is refused.
_SIGNATURE: Final = tuple(
    Rule(source, IdpTokenRejected, _bad_key, chain=False)
    for source in (PyJWTError, ValueError, TypeError)
)


def verify_signed(
    token: object,
    idps: Idps,
    keys: KeyLookup | None,
    *,
    typ: str,
    require_typ: bool | None,
    max_size: int,
) -> tuple[IdpTrust, dict[str, Any]]:
    """Steps 1–3 above: the trust entry of the token's issuer and its verified claims.
    ``require_typ=None`` leaves it to the issuer's ``trust.require_typ``. ``keys=None``: the
    signature was verified before, by a receiver (the idp intake, which only workers write),
    so a key the provider has rotated away since cannot lose a logout it was told we took."""
    try:
        compact = parse_compact(token, max_size)
    except TokenRejected as exc:
        raise IdpTokenRejected("invalid_request", exc.reason, exc.detail) from None
    alg, kid = _check_header(compact.header, typ)
    try:
        claims = loads_object(compact.payload)
    except StrictDecodeError as exc:
        raise IdpTokenRejected("invalid_request", "malformed", f"payload: {exc}") from None
    iss = identifier(claims, "iss", limit=2048)
    trust = idps.get(iss)
    if trust is None:
        raise IdpTokenRejected("invalid_issuer", "unknown_issuer", "iss is not a trusted issuer")
    if alg not in trust.algorithms:
        raise IdpTokenRejected("invalid_key", "alg_not_allowed", "alg not allowed for this issuer")
    if "typ" not in compact.header and (trust.require_typ if require_typ is None else require_typ):
        raise IdpTokenRejected("invalid_request", "missing_typ", f"header typ {typ!r} required")
    if keys is not None:
        _verify_signature(keys.key(trust.issuer, kid, alg), alg, compact)
    return trust, claims


def _check_header(header: Mapping[str, Any], typ: str) -> tuple[str, str | None]:
    alg, kid = header.get("alg"), header.get("kid")
    if not isinstance(alg, str):
        raise IdpTokenRejected("invalid_request", "malformed", "header alg must be a string")
    if alg not in ALGORITHMS:  # none, HMAC, anything unknown: before the payload is looked at
        raise IdpTokenRejected("invalid_key", "alg_not_allowed", "alg must be asymmetric")
    if kid is not None and id_claim_problem(kid) is not None:
        raise IdpTokenRejected("invalid_request", "malformed", "header kid must be a short string")
    if "crit" in header:
        raise IdpTokenRejected("invalid_request", "forbidden_header", "header crit not supported")
    if "typ" in header:
        given = header["typ"]
        media = given.lower().removeprefix("application/") if isinstance(given, str) else None
        if media != typ:
            raise IdpTokenRejected("invalid_request", "wrong_typ", f"header typ must be {typ!r}")
    return alg, kid


def _verify_signature(jwk: PyJWK, alg: str, compact: Compact) -> None:
    if jwk.algorithm_name != alg:  # the key's own algorithm; the header never picks another
        raise IdpTokenRejected("invalid_key", "alg_not_allowed", "the key is not for this alg")
    with map_exceptions("the key cannot verify this signature", _SIGNATURE):
        valid = jwk.Algorithm.verify(compact.signing_input, jwk.key, compact.signature)
    if not valid:
        raise IdpTokenRejected("invalid_key", "bad_signature", "signature does not verify")


def required_claim(claims: Mapping[str, Any], name: str) -> object:
    """The claim ``name`` (``missing_claim`` when absent)."""
    if name not in claims:
        raise IdpTokenRejected("invalid_request", "missing_claim", f"claim {name!r} is required")
    return claims[name]


def identifier(claims: Mapping[str, Any], name: str, *, limit: int = 256) -> str:
    """The required claim ``name``: a non-empty printable string of at most ``limit``."""
    value = required_claim(claims, name)
    if not isinstance(value, str) or not value or len(value) > limit or not value.isprintable():
        raise IdpTokenRejected(
            "invalid_request", "bad_claim", f"claim {name!r} must be a printable string"
        )
    return value


def numeric_date(value: object, name: str) -> float:
    """``value`` as a NumericDate (a JSON number, not a boolean, within 0 and 2**53)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise IdpTokenRejected("invalid_request", "bad_claim", f"{name!r} must be a NumericDate")
    if not (math.isfinite(value) and 0 <= value < MAX_NUMERIC_DATE):
        raise IdpTokenRejected("invalid_request", "bad_claim", f"{name!r} is out of range")
    return float(value)


def check_audience(claims: Mapping[str, Any], trust: IdpTrust) -> None:
    """``aud``, a string or a non-empty list of strings, names one of ``trust.audience``."""
    aud = required_claim(claims, "aud")
    names = [aud] if isinstance(aud, str) else aud
    if not isinstance(names, list) or not names or not all(isinstance(a, str) for a in names):
        raise IdpTokenRejected("invalid_request", "bad_claim", "aud must be a string or strings")
    if not any(a in trust.audience for a in names):
        raise IdpTokenRejected("invalid_audience", "wrong_audience", "aud does not name us")


def check_issued_at(iat: float, now: float, leeway: float) -> None:
    """``iat`` is not in the future (beyond ``leeway``)."""
    if iat > now + leeway:
        raise IdpTokenRejected("invalid_request", "issued_in_future", "iat is in the future")


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
