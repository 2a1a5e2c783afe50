"""RFC 9493 subject identifiers, as far as revocation uses them (pure, no I/O).

Formats read: ``opaque`` (``id`` → ``sub``), ``iss_sub``, ``email``, ``jwt_id`` (Shared Signals
Framework 1.0 §3.4.1) and ``complex`` (SSF §3.2): its ``user`` (``opaque``, ``iss_sub`` or
``email``) gives ``sub``/``iss``/``email``, its ``session`` (``opaque``) gives ``sid``; one of
the two is needed, its other members (``device``, ``tenant``…) are ignored, which can only
widen what a revocation covers. Any other format (``phone_number``, ``account``, ``aliases``…)
is refused (``unknown_subject_format``): nothing is revoked on a subject we cannot read.
Members are strict: strings, printable, bounded; members not listed here are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from sessionsvc.errors import IdpTokenRejected
from sessionsvc.idp.model import Subject

__all__ = ["MAX_EMAIL", "MAX_ID", "MAX_ISSUER", "parse_subject"]

MAX_ID: Final = 256
MAX_ISSUER: Final = 2048
MAX_EMAIL: Final = 320  # RFC 5321's 64 + "@" + 255
_USER_FORMATS: Final = frozenset({"opaque", "iss_sub", "email"})


def parse_subject(obj: object) -> Subject:
    """The ``Subject`` that the RFC 9493 subject identifier ``obj`` (a decoded JSON object)
    names; ``IdpTokenRejected`` (``invalid_request``) when it is not one we can act on."""
    members = _members(obj, "subject")
    fmt = _format(members)
    if fmt != "complex":
        return _simple(members, fmt)
    user = _nested(members, "user", _USER_FORMATS)
    session = _nested(members, "session", frozenset({"opaque"}))
    if user is None and session is None:
        raise IdpTokenRejected(
            "invalid_request", "no_subject", "a complex subject needs a user or a session"
        )
    return Subject(
        format="complex",
        sub=user.sub if user else None,
        iss=user.iss if user else None,
        email=user.email if user else None,
        sid=session.sub if session else None,
    )


def _simple(members: Mapping[str, Any], fmt: str) -> Subject:
    if fmt == "opaque":
        return Subject(format=fmt, sub=_text(members, "id", MAX_ID))
    if fmt == "iss_sub":
        return Subject(
            format=fmt, iss=_text(members, "iss", MAX_ISSUER), sub=_text(members, "sub", MAX_ID)
        )
    if fmt == "email":
        email = _text(members, "email", MAX_EMAIL)
        if "@" not in email[1:-1]:
            raise _bad("member 'email' is not an e-mail address")
        return Subject(format=fmt, email=email)
    if fmt == "jwt_id":
        return Subject(
            format=fmt, iss=_text(members, "iss", MAX_ISSUER), jti=_text(members, "jti", MAX_ID)
        )
    raise IdpTokenRejected(
        "invalid_request", "unknown_subject_format", "subject format is not one we act on"
    )


def _nested(members: Mapping[str, Any], name: str, formats: frozenset[str]) -> Subject | None:
    if name not in members:
        return None
    inner = _members(members[name], f"complex subject's {name!r}")
    fmt = _format(inner)
    if fmt not in formats:
        raise IdpTokenRejected(
            "invalid_request",
            "unknown_subject_format",
            f"a complex subject's {name!r} must be {' or '.join(sorted(formats))}",
        )
    return _simple(inner, fmt)


def _members(obj: object, what: str) -> Mapping[str, Any]:
    if not isinstance(obj, dict):
        raise _bad(f"{what} must be a JSON object")
    return obj


def _format(members: Mapping[str, Any]) -> str:
    fmt = members.get("format")
    if not isinstance(fmt, str):
        raise _bad("subject member 'format' must be a string")
    return fmt


def _text(members: Mapping[str, Any], name: str, limit: int) -> str:
    value = members.get(name)
    if not isinstance(value, str) or not value or len(value) > limit or not value.isprintable():
        raise _bad(f"member {name!r} must be a printable string of at most {limit} characters")
    return value


def _bad(detail: str) -> IdpTokenRejected:
    return IdpTokenRejected("invalid_request", "bad_subject", detail)
