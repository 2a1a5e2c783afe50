"""The claims layer: one ``_validate_<claim>`` per rule, run after the signature layer (pure).

Order is part of the contract (it decides which reason a token with several faults gets):
required claims → shapes → ``iss`` → ``aud`` → ``exp`` → ``nbf`` → ``iat`` → lifetime.

The lifetime rule (``exp − iat`` at most ``max_lifetime``: ``access_ttl`` for access tokens,
``refresh_ttl`` for refresh tokens) exists because revocation entries are kept for a time computed
from those settings: a token living longer would outlive the entry that revokes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from sessionsvc.errors import TokenRejected

__all__ = ["ACCESS_CLAIMS", "REFRESH_CLAIMS", "ClaimRules", "id_claim_problem", "validate_claims"]

ACCESS_CLAIMS: Final = ("iss", "aud", "sub", "sid", "jti", "iat", "nbf", "exp")
REFRESH_CLAIMS: Final = ("iss", "aud", "sub", "sid", "jti", "iat", "exp")
MAX_NUMERIC_DATE: Final = 2**53  # beyond any real date; also where JSON numbers stop being exact
MAX_ID_LENGTH: Final = 256


@dataclass(frozen=True, slots=True)
class ClaimRules:
    """What a token's claims must satisfy."""

    issuer: str
    audience: str
    leeway: int
    required: tuple[str, ...] = ACCESS_CLAIMS
    max_lifetime: int = field(kw_only=True)
    """The longest ``exp − iat`` accepted, in seconds (no leeway applies)."""


def validate_claims(claims: Mapping[str, Any], rules: ClaimRules, now: float) -> None:
    """Raise ``TokenRejected`` with the first failing rule's reason."""
    _validate_required(claims, rules.required)
    _validate_shapes(claims)
    _validate_iss(claims["iss"], rules.issuer)
    _validate_aud(claims["aud"], rules.audience)
    _validate_exp(claims["exp"], now, rules.leeway)
    if "nbf" in claims:
        _validate_nbf(claims["nbf"], now, rules.leeway)
    _validate_iat(claims["iat"], now, rules.leeway)
    _validate_lifetime(claims["exp"], claims["iat"], rules.max_lifetime)


def _validate_required(claims: Mapping[str, Any], required: tuple[str, ...]) -> None:
    for name in required:
        if name not in claims:
            raise TokenRejected("missing_claim", f"claim {name!r} is required")


def _validate_shapes(claims: Mapping[str, Any]) -> None:
    for name in ("iat", "nbf", "exp"):
        value = claims.get(name, 0)
        if type(value) is not int or not 0 <= value < MAX_NUMERIC_DATE:
            raise TokenRejected("malformed", f"claim {name!r} must be an integer NumericDate")
    for name in ("sub", "sid", "jti"):
        problem = id_claim_problem(claims.get(name, "x"))
        if problem is not None:
            raise TokenRejected("malformed", f"claim {name!r} {problem}")


def id_claim_problem(value: object) -> str | None:
    """Why ``value`` cannot be a ``sub``, ``sid`` or ``jti`` claim, or ``None`` if it can: a
    string of 1 to 256 characters, all printable. The one rule for ids: the shape check above,
    the issuer (``TokenIssuer``) and the session service (``sessions.keys.user_tag``) all apply it,
    so nothing is issued that validation would reject."""
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
    if len(value) > MAX_ID_LENGTH:
        return f"must be a non-empty string of at most {MAX_ID_LENGTH} characters"
    if not value.isprintable():  # controls, zero-width/format, separators, lone surrogates
        return "has unprintable characters (controls, format or zero-width characters)"
    return None


def _validate_iss(iss: object, issuer: str) -> None:
    if not isinstance(iss, str) or iss != issuer:
        raise TokenRejected("bad_issuer", "iss is not this issuer")


def _validate_aud(aud: object, audience: str) -> None:
    if isinstance(aud, str):
        ok = aud == audience
    elif isinstance(aud, list):
        ok = all(isinstance(a, str) for a in aud) and audience in aud
    else:
        ok = False
    if not ok:
        raise TokenRejected("bad_audience", "aud does not name this audience")


def _validate_exp(exp: int, now: float, leeway: int) -> None:
    if now >= exp + leeway:
        raise TokenRejected("expired", "token has expired")


def _validate_nbf(nbf: int, now: float, leeway: int) -> None:
    if nbf > now + leeway:
        raise TokenRejected("not_yet_valid", "token is not valid yet (nbf)")


def _validate_iat(iat: int, now: float, leeway: int) -> None:
    if iat > now + leeway:
        raise TokenRejected("issued_in_future", "token was issued in the future (iat)")


def _validate_lifetime(exp: int, iat: int, max_lifetime: int) -> None:
    if exp - iat > max_lifetime:
        raise TokenRejected("bad_lifetime", f"token lives longer (exp - iat) than {max_lifetime} s")
