"""Generate private JWKs for the key rings (``sessionsvc keys generate``)."""

from __future__ import annotations

import secrets
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from sessionsvc.encoding import b64url_encode
from sessionsvc.errors import ConfigError, InvalidArgument
from sessionsvc.tokens.key_policy import SUPPORTED_ALGS, check_jwk

__all__ = ["generate_jwk", "generate_jwks"]


def _random_secret() -> str:
    """32 random bytes (base64url) that the key policy accepts: it refuses about one draw in
    10^11 (one that happens to look patterned or to hold a sample word), which is drawn again."""
    while True:
        k = b64url_encode(secrets.token_bytes(32))
        try:
            check_jwk({"kty": "oct", "alg": "HS256", "k": k}, "generated HS256 key")
        except ConfigError:
            continue
        return k


def generate_jwk(alg: str = "EdDSA", kid: str | None = None) -> dict[str, Any]:
    """A new private JWK for ``alg`` (EdDSA, ES256, RS256 with 3072 bits, HS256 with 32 bytes)."""
    if alg not in SUPPORTED_ALGS:
        raise InvalidArgument(f"unsupported alg {alg!r}; choose one of {', '.join(SUPPORTED_ALGS)}")
    jwk: dict[str, Any]
    if alg == "HS256":
        jwk = {"kty": "oct", "k": _random_secret()}
    elif alg == "EdDSA":
        jwk = OKPAlgorithm.to_jwk(ed25519.Ed25519PrivateKey.generate(), as_dict=True)
    elif alg == "ES256":
        jwk = ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()), as_dict=True)
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
        jwk = RSAAlgorithm.to_jwk(key, as_dict=True)
    return jwk | {"kid": kid or b64url_encode(secrets.token_bytes(12)), "alg": alg, "use": "sig"}


def generate_jwks(alg: str = "EdDSA", kid: str | None = None) -> dict[str, Any]:
    """A private JWKS document holding one new key."""
    return {"keys": [generate_jwk(alg, kid)]}
