"""The claims rules identity providers' tokens share (pure, no I/O): required claims,
identifiers, NumericDates, the audience, ``iat``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from sessionsvc.errors import IdpTokenRejected
from sessionsvc.idp.trust import IdpTrust
from sessionsvc.tokens.claims import MAX_NUMERIC_DATE

__all__ = ["check_audience", "check_issued_at", "identifier", "numeric_date", "required_claim"]


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
