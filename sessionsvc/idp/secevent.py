"""Security Event Tokens (RFC 8417) as the Shared Signals Framework 1.0 profiles them, with the
CAEP 1.0 events we act on (pure, no I/O: keys come from a ``KeyLookup``, the time from the
caller).

Check order: the signature layer of ``logout_token.verify_signed``, ``typ`` ``secevent+jwt``
required (SSF §4.1.1) → no ``sub`` (§4.1.2: ``sub_present``) → no ``exp`` (§4.1.7:
``exp_present``) → ``events`` an object of exactly one member (§4.2.1 says "SHOULD"; two are
refused: ``multiple_events``) whose value is an object → ``aud`` → ``iat`` (not in the
future) → ``jti`` → ``txn`` (a string or an integer, if given) → the event:

- ``SESSION_REVOKED``, ``CREDENTIAL_CHANGE``: the subject is ``sub_id`` (SSF §3.1), else the
  event's ``subject`` (CAEP before SSF); ``event_timestamp`` if given; a credential change
  needs ``change_type`` (``create``, ``revoke``, ``update``, ``delete``) and
  ``credential_type``; then the issuer's ``trust.events`` must allow the kind (``access_denied``);
- ``SSF_VERIFICATION``: ``verification`` is its ``state`` (``""`` without one), no events;
- any other event type: its URI in ``ignored``, no events: acknowledged, never an error.
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
from sessionsvc.idp.model import (
    CREDENTIAL_CHANGE,
    SESSION_REVOKED,
    SSF_VERIFICATION,
    KeyLookup,
    SecurityEvent,
    SecurityEventToken,
)
from sessionsvc.idp.subjects import parse_subject
from sessionsvc.idp.trust import Idps

__all__ = ["CHANGE_TYPES", "SET_TYP", "verify_set"]

SET_TYP: Final = "secevent+jwt"
CHANGE_TYPES: Final = frozenset({"create", "revoke", "update", "delete"})
_KINDS: Final = {SESSION_REVOKED: "session_revoked", CREDENTIAL_CHANGE: "credential_change"}
_MAX_TEXT: Final = 2048


def verify_set(
    token: str,
    idps: Idps,
    keys: KeyLookup | None,
    now: float,
    *,
    leeway: float = 30,
    max_size: int = 16384,
) -> SecurityEventToken:
    """The verified SET ``token``, its one event read if we know its type; otherwise
    ``IdpTokenRejected`` (``IdpKeysUnavailable`` when the issuer's keys cannot be had)."""
    trust, claims = verify_signed(
        token, idps, keys, typ=SET_TYP, require_typ=True, max_size=max_size
    )
    for name in ("sub", "exp"):
        if name in claims:
            raise IdpTokenRejected("invalid_request", f"{name}_present", f"a SET has no {name!r}")
    uri, body = _one_event(claims)
    check_audience(claims, trust)
    iat = numeric_date(required_claim(claims, "iat"), "iat")
    check_issued_at(iat, now, leeway)
    if now - iat > trust.max_set_age + leeway:  # (its jti is remembered a day longer)
        raise IdpTokenRejected(
            "invalid_request", "too_old", f"iat is over {trust.max_set_age} s old"
        )
    jti, txn = identifier(claims, "jti"), _txn(claims)
    if uri == SSF_VERIFICATION:
        state = _state(body)
        return SecurityEventToken(trust.issuer, jti, iat, (), verification=state, txn=txn)
    kind = _KINDS.get(uri)
    if kind is None:
        return SecurityEventToken(trust.issuer, jti, iat, (), ignored=(uri,), txn=txn)
    event = _event(uri, body, claims)
    if kind not in trust.events:
        raise IdpTokenRejected("access_denied", "not_allowed", f"issuer may not send {kind}")
    return SecurityEventToken(trust.issuer, jti, iat, (event,), txn=txn)


def _one_event(claims: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    events = claims.get("events")
    if "events" not in claims:
        raise IdpTokenRejected("invalid_request", "missing_events", "no events claim")
    if not isinstance(events, dict):
        raise IdpTokenRejected("invalid_request", "bad_claim", "events must be a JSON object")
    if not events:
        raise IdpTokenRejected("invalid_request", "missing_events", "events holds no event")
    if len(events) > 1:
        raise IdpTokenRejected("invalid_request", "multiple_events", "a SET holds one event")
    ((uri, body),) = events.items()
    if len(uri) > _MAX_TEXT or not uri.isprintable():
        raise IdpTokenRejected("invalid_request", "bad_claim", "event type is not a short URI")
    if not isinstance(body, dict):
        raise IdpTokenRejected("invalid_request", "bad_claim", "the event must be a JSON object")
    return uri, body


def _event(uri: str, body: Mapping[str, Any], claims: Mapping[str, Any]) -> SecurityEvent:
    if "sub_id" in claims:
        subject = parse_subject(claims["sub_id"])
    elif "subject" in body:
        subject = parse_subject(body["subject"])
    else:
        raise IdpTokenRejected("invalid_request", "no_subject", "neither sub_id nor subject")
    stamp = body.get("event_timestamp")
    event_time = numeric_date(stamp, "event_timestamp") if "event_timestamp" in body else None
    if uri != CREDENTIAL_CHANGE:
        return SecurityEvent(uri, subject, event_time)
    change_type = required_claim(body, "change_type")
    if not isinstance(change_type, str) or change_type not in CHANGE_TYPES:
        raise IdpTokenRejected(
            "invalid_request", "bad_claim", f"change_type must be one of {sorted(CHANGE_TYPES)}"
        )
    credential_type = identifier(body, "credential_type")
    return SecurityEvent(uri, subject, event_time, change_type, credential_type)


def _state(body: Mapping[str, Any]) -> str:
    state = body.get("state", "")
    if not isinstance(state, str) or len(state) > _MAX_TEXT or not state.isprintable():
        raise IdpTokenRejected("invalid_request", "bad_claim", "state must be a short string")
    return state


def _txn(claims: Mapping[str, Any]) -> str | None:
    if "txn" not in claims:
        return None
    txn = claims["txn"]
    if isinstance(txn, int) and not isinstance(txn, bool) and 0 <= txn < 2**63:
        return str(txn)  # RFC 8417 says a string; SSF 1.0's own examples send a number
    return identifier(claims, "txn")
