"""Start-up judgement of one JWK: refuse what must never sign or verify our tokens (pure).

Refused, each with a message naming the key and what to do: ``alg`` missing, ``none`` or not one
of EdDSA/ES256/RS256/HS256; an ``alg`` the key type cannot do; ``use`` other than ``sig``;
``key_ops`` other than sign/verify; RSA moduli under 2048 bits; HMAC secrets under 32 bytes, with
too little variety to be random, containing a well-known sample secret, that look like text (every
byte printable ASCII or whitespace: 32 random bytes are, with probability ~1e-14) or that are
patterned (few distinct steps from byte to byte, as in a sequence, or a repeating period);
private keys published as examples in the RFCs.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any, Final

from sessionsvc.encoding import StrictDecodeError, b64url_decode
from sessionsvc.errors import ConfigError

__all__ = ["SUPPORTED_ALGS", "check_jwk"]

SUPPORTED_ALGS: Final = {
    "EdDSA": ("OKP", "Ed25519"),
    "ES256": ("EC", "P-256"),
    "RS256": ("RSA", None),
    "HS256": ("oct", None),
}
MIN_RSA_BITS: Final = 2048
MIN_SECRET_BYTES: Final = 32
MIN_DISTINCT_BYTES: Final = 16  # 32 random bytes have ~30 distinct values; "aaaa…" has 1
MIN_DISTINCT_STEPS: Final = 16  # the 31 steps between 32 random bytes take ~29 distinct values
_TEXT_BYTES: Final = frozenset(range(0x20, 0x7F)) | frozenset(b"\t\n\v\f\r")

# Secrets and private keys that appear in documentation and tutorials; never acceptable.
_SAMPLE_WORDS: Final = (
    b"secret",
    b"changeme",
    b"change-me",
    b"password",
    b"passw0rd",
    b"example",
    b"your-256-bit",
    b"jwt-key",
    b"jwtkey",
    b"qwerty",
    b"letmein",
    b"123456",
    b"abcdef",
)
_SAMPLE_PRIVATE: Final = frozenset(
    {
        # RFC 7515 A.1 (HS256)
        "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow",
        # RFC 7515 A.3 (ES256) d
        "jpsQnnGQmL-YBIffH1136cLmtFsTgzQ0ELnAV1UMA04",
        # RFC 8037 A.1 (Ed25519) d
        "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
    }
)


def check_jwk(jwk: Mapping[str, Any], where: str) -> None:
    """Raise ``ConfigError`` naming ``where`` if this JWK must not be used."""
    alg = jwk.get("alg")
    if not isinstance(alg, str):
        raise ConfigError(f"{where}: alg is required (the algorithm is pinned per key)")
    if alg.lower() == "none":
        raise ConfigError(f"{where}: alg 'none' is never allowed")
    if alg not in SUPPORTED_ALGS:
        raise ConfigError(f"{where}: alg {alg!r} is not supported ({', '.join(SUPPORTED_ALGS)})")
    kty, crv = SUPPORTED_ALGS[alg]
    if jwk.get("kty") != kty or (crv is not None and jwk.get("crv") != crv):
        shape = f"kty {kty!r}" + (f" with crv {crv!r}" if crv else "")
        raise ConfigError(f"{where}: alg {alg} needs a key of {shape}")
    if jwk.get("use", "sig") != "sig":
        raise ConfigError(f"{where}: use must be 'sig'")
    ops = jwk.get("key_ops", ["sign", "verify"])
    if not isinstance(ops, list) or not ops or not all(op in ("sign", "verify") for op in ops):
        raise ConfigError(f"{where}: key_ops may only hold 'sign' and 'verify'")
    for member in ("d", "k"):
        value = jwk.get(member)
        if isinstance(value, str) and value in _SAMPLE_PRIVATE:
            raise ConfigError(f"{where}: this is a published example key; generate your own")
    if kty == "oct":
        _check_secret(jwk.get("k"), where)
    elif kty == "RSA":
        _check_rsa(jwk.get("n"), where)


def _decode(value: object, member: str, where: str) -> bytes:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: {member} must be a base64url string")
    try:
        return b64url_decode(value)
    except StrictDecodeError:
        raise ConfigError(f"{where}: {member} is not canonical unpadded base64url") from None


def _check_secret(k: object, where: str) -> None:
    secret = _decode(k, "k", where)
    generate = "generate one with: sessionsvc keys generate --alg HS256"
    if len(secret) < MIN_SECRET_BYTES:
        raise ConfigError(
            f"{where}: HS256 secret is {len(secret)} bytes; at least {MIN_SECRET_BYTES} random "
            f"bytes are required ({generate})"
        )
    if len(set(secret)) < MIN_DISTINCT_BYTES:
        raise ConfigError(f"{where}: HS256 secret is not random enough ({generate})")
    lowered = secret.lower()
    if any(word in lowered for word in _SAMPLE_WORDS):
        raise ConfigError(f"{where}: HS256 secret contains a well-known sample value ({generate})")
    if _is_text(secret):
        raise ConfigError(
            f"{where}: HS256 secret looks like text (a passphrase, or hex or base64 text used as "
            f"the key bytes), not random bytes ({generate})"
        )
    if _is_patterned(secret):
        raise ConfigError(
            f"{where}: HS256 secret is patterned (a sequence or a repetition), not random "
            f"({generate})"
        )


def _is_text(secret: bytes) -> bool:
    """Every byte printable ASCII or whitespace (a passphrase, an identifier, hex, base64), or
    printable UTF-8 text (a passphrase in any language: random bytes are almost never UTF-8)."""
    if set(secret) <= _TEXT_BYTES:
        return True
    try:
        text = secret.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c.isspace() for c in text)


def _is_patterned(secret: bytes) -> bool:
    """Few distinct byte-to-byte steps (an arithmetic progression, a sawtooth), or a period of at
    most half the length (a block repeated)."""
    steps = {(b - a) % 256 for a, b in itertools.pairwise(secret)}
    if len(steps) < MIN_DISTINCT_STEPS:
        return True
    return any(secret[p:] == secret[:-p] for p in range(1, len(secret) // 2 + 1))


def _check_rsa(n: object, where: str) -> None:
    bits = int.from_bytes(_decode(n, "n", where), "big").bit_length()
    if bits < MIN_RSA_BITS:
        raise ConfigError(f"{where}: RSA modulus is {bits} bits; at least {MIN_RSA_BITS} required")
