"""Judging an identity provider's JWKS and picking the key for a token (pure, no I/O).

``parse`` refuses a JWKS holding an HMAC secret or any private member (``check_public``): a
public key is never usable as an HMAC secret. ``find`` gives the key for a token's ``kid`` and
``alg``: it verifies an ``alg`` token only if its ``kty``/``crv`` fit it, its ``alg``, ``use``
and ``key_ops`` (when present) allow it, and an RSA modulus has at least 2048 bits; a ``kid``
shared by two fitting keys, or no ``kid`` with two fitting keys, is refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from sessionsvc.encoding import StrictDecodeError, loads_object
from sessionsvc.errors import ConfigError, IdpTokenRejected
from sessionsvc.tokens.jwks_url import check_public

__all__ = ["FITS", "MIN_RSA_BITS", "Jwks", "find", "parse", "rejected", "shown"]

MIN_RSA_BITS: Final = 2048
_RSA: Final = ("RSA", frozenset[str]())
FITS: Final[Mapping[str, tuple[str, frozenset[str]]]] = {
    **dict.fromkeys(("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"), _RSA),
    "ES256": ("EC", frozenset({"P-256"})),
    "ES384": ("EC", frozenset({"P-384"})),
    "ES512": ("EC", frozenset({"P-521"})),
    "EdDSA": ("OKP", frozenset({"Ed25519", "Ed448"})),
}


@dataclass(frozen=True, slots=True, repr=False)
class Jwks:
    """One judged JWKS: its SHA-256, its public JWKs, and the ``PyJWK`` built per (index, alg)."""

    digest: bytes
    keys: tuple[dict[str, Any], ...]
    built: dict[tuple[int, str], jwt.PyJWK] = field(default_factory=dict)


def rejected(reason: str, detail: str) -> IdpTokenRejected:
    return IdpTokenRejected("invalid_key", reason, detail)


def shown(value: object) -> str:
    """A header value as a detail may show it: quoted, at most 64 characters."""
    return repr(value[:64] if isinstance(value, str) else value)[:70]


def parse(data: bytes, where: str) -> Jwks:
    """The judged JWKS ``data``; ``ConfigError`` (never quoting it) if it is refused."""
    try:
        doc = loads_object(data)
    except StrictDecodeError:
        raise ConfigError(f"{where}: the JWKS is not a strict JSON object") from None
    keys = doc.get("keys")
    if not isinstance(keys, list) or not keys or not all(isinstance(k, dict) for k in keys):
        raise ConfigError(f'{where}: the JWKS needs a non-empty "keys" array of objects')
    check_public(data.decode("utf-8"), where)  # no HMAC secret, no private member
    if not all(isinstance(k.get("kid", ""), str) for k in keys):
        raise ConfigError(f"{where}: a kid of the JWKS is not a string")
    return Jwks(hashlib.sha256(data).digest(), tuple(keys))


def _refusal(jwk: Mapping[str, Any], alg: str) -> tuple[str, str] | None:
    """Why ``jwk`` may not verify an ``alg`` token, as (reason, detail); None if it may."""
    kty, curves = FITS[alg]
    if jwk.get("kty") != kty or (curves and jwk.get("crv") not in curves):
        shape = f"{kty} ({', '.join(sorted(curves))})" if curves else kty
        return "wrong_key_type", f"an {alg} token needs a {shape} key"
    if jwk.get("alg", alg) != alg:
        return "wrong_alg", f"the key is pinned to another algorithm than {alg}"
    if jwk.get("use", "sig") != "sig":
        return "wrong_use", "the key's use is not sig"
    ops = jwk.get("key_ops", ["verify"])
    if not isinstance(ops, list) or "verify" not in ops:
        return "wrong_key_ops", "the key's key_ops do not include verify"
    return None


def find(jwks: Jwks, kid: str | None, alg: str, where: str) -> jwt.PyJWK | None:
    """The key for (``kid``, ``alg``); None if no key has that kid (no kid: none fits)."""
    if kid is None:
        fitting = [i for i, k in enumerate(jwks.keys) if _refusal(k, alg) is None]
        if len(fitting) > 1:
            raise rejected("unknown_key", f"{where}: no kid given and {len(fitting)} keys fit")
        return _build(jwks, fitting[0], alg, where) if fitting else None
    named = [i for i, k in enumerate(jwks.keys) if k.get("kid") == kid]
    if not named:
        return None
    fitting = [i for i in named if _refusal(jwks.keys[i], alg) is None]
    if len(fitting) > 1:
        raise rejected("ambiguous_key", f"{where}: {len(fitting)} keys of kid {shown(kid)}")
    if fitting:
        return _build(jwks, fitting[0], alg, where)
    reason, detail = _refusal(jwks.keys[named[0]], alg) or ("unknown_key", "")
    raise rejected(reason, f"{where}, kid {shown(kid)}: {detail}")


def _build(jwks: Jwks, index: int, alg: str, where: str) -> jwt.PyJWK:
    built = jwks.built.get((index, alg))
    if built is None:
        try:
            built = jwt.PyJWK(jwks.keys[index], alg)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:  # never its text
            detail = f"{where}: a key is unusable ({type(exc).__name__})"
            raise rejected("unusable_key", detail) from None
        if isinstance(built.key, rsa.RSAPublicKey) and built.key.key_size < MIN_RSA_BITS:
            bits = built.key.key_size
            raise rejected("weak_key", f"{where}: an RSA key of {bits} bits (< {MIN_RSA_BITS})")
        jwks.built[(index, alg)] = built
    return built
