"""The shared claims fixture of the token tests: one valid claim set, one header, one signer.

``claims(**overrides)`` is a valid access-token claim set at ``NOW`` for conftest's ``ISSUER`` and
``AUDIENCE``; an override replaces a member, ``DROP`` leaves it out. ``token_for(key, ...)`` signs
such a claim set under our header ``{alg, kid, typ}`` with ``key``; the ``make_token`` fixture of
``conftest.py`` does so with the access key of the ``settings`` fixture (one algorithm, EdDSA).
Claims-layer tests use these; only signature-layer tests vary the algorithm.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from conftest import AUDIENCE, ISSUER, NOW

from sessionsvc import Key, TokenRejected, Validator

__all__ = [
    "DROP",
    "TYP",
    "b64",
    "claims",
    "claims_with_raw",
    "dumps",
    "header_for",
    "jws",
    "reason",
    "sign_segments",
    "token_for",
]

TYP = "at+jwt"
DROP: Any = object()  # as a member value: leave the member out


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _members(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in (base | overrides).items() if v is not DROP}


def claims(**overrides: Any) -> dict[str, Any]:
    """A valid access-token claim set at ``NOW`` with members replaced (``DROP`` removes one)."""
    base = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "sid": "sid-1",
        "jti": "jti-1",
        "iat": NOW,
        "nbf": NOW,
        "exp": NOW + 900,
    }
    return _members(base, overrides)


def claims_with_raw(name: str, raw_json: str) -> bytes:
    """Valid claims whose member ``name`` is the literal JSON text ``raw_json`` (NaN, 1e400…)."""
    rest = dumps(claims(**{name: DROP}))
    return rest[:-1] + f',"{name}":{raw_json}}}'.encode()


def header_for(key: Key, **overrides: Any) -> dict[str, Any]:
    """Our header ``{alg, kid, typ}`` with members replaced (``DROP`` removes one)."""
    return _members({"alg": key.alg, "kid": key.kid, "typ": TYP}, overrides)


def sign_segments(header_b64: str, payload_b64: str, key: Key) -> str:
    """``header.payload.signature`` over exactly these (possibly hostile) encoded segments."""
    signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
    return f"{header_b64}.{payload_b64}.{b64(key.algorithm.sign(signing_input, key.signing_key))}"


def jws(header: bytes | dict[str, Any], payload: bytes | dict[str, Any], key: Key) -> str:
    """A compact JWS of raw header/payload bytes (dicts are JSON-encoded), validly signed."""
    raw_header = header if isinstance(header, bytes) else dumps(header)
    raw_payload = payload if isinstance(payload, bytes) else dumps(payload)
    return sign_segments(b64(raw_header), b64(raw_payload), key)


def token_for(key: Key, **claim_overrides: Any) -> str:
    """Our header and ``claims(**claim_overrides)``, validly signed with ``key``."""
    return jws(header_for(key), claims(**claim_overrides), key)


def reason(validator: Validator, token: object) -> str:
    """The reason ``validator`` rejects ``token`` with (fails the test if it is accepted)."""
    with pytest.raises(TokenRejected) as info:
        validator.validate(token)  # type: ignore[arg-type]
    return info.value.reason
