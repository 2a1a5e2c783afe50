"""Key rings loaded from JWKS documents (RFC 7517), judged once at start-up.

Invariants:

- every key has an explicit ``kid`` and ``alg``; the algorithm is pinned by the key and a token's
  header can never choose another (``Key.alg`` is the only algorithm tried with that key);
- supported pairs only: ``EdDSA``/OKP Ed25519, ``ES256``/EC P-256, ``RS256``/RSA >= 2048 bits,
  ``HS256``/oct >= 32 random bytes; ``none`` and everything else is refused;
- the first key that holds private material and whose ``key_ops`` (if given) allow ``sign`` is the
  active signing key; every key verifies (rotation: publish a key for verification before it signs,
  keep a retired key until the longest-lived token it signed has expired);
- the access and refresh rings share no ``kid`` and no key material.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from jwt import PyJWK
from jwt.algorithms import Algorithm
from jwt.exceptions import PyJWKError, PyJWTError

from sessionsvc._boundary import Rule, map_exceptions
from sessionsvc.encoding import StrictDecodeError, b64url_encode, loads_object
from sessionsvc.errors import ConfigError, SessionError
from sessionsvc.tokens.key_policy import check_jwk

__all__ = ["Key", "KeyRing", "check_disjoint", "load_jwks"]

_COMPACT = (",", ":")
_KID = re.compile(r"[A-Za-z0-9._:~-]{1,128}")
_THUMBPRINT_MEMBERS = {
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
    "RSA": ("e", "kty", "n"),
    "oct": ("k", "kty"),
}


@dataclass(frozen=True, slots=True, repr=False)
class Key:
    """One usable key: its id, its pinned algorithm, and the prepared key objects."""

    kid: str
    alg: str
    algorithm: Algorithm
    verify_key: Any
    signing_key: Any | None
    thumbprint: str
    public_jwk: Mapping[str, Any] | None

    def verify(self, signing_input: bytes, signature: bytes) -> bool:
        """Signature layer: does ``signature`` sign ``signing_input`` under this key?"""
        try:
            return bool(self.algorithm.verify(signing_input, self.verify_key, signature))
        except (ValueError, TypeError):
            return False

    def sign(self, payload: Mapping[str, Any], typ: str) -> str:
        """Sign ``payload`` as a compact JWS with header ``{alg, kid, typ}``."""
        if self.signing_key is None:
            raise ConfigError(f"key {self.kid!r} holds no private material: it cannot sign")
        header = b64url_encode(
            json.dumps({"alg": self.alg, "kid": self.kid, "typ": typ}, separators=_COMPACT)
        )
        body = b64url_encode(json.dumps(payload, separators=_COMPACT, allow_nan=False))
        signing_input = f"{header}.{body}"
        signature = self.algorithm.sign(signing_input.encode("ascii"), self.signing_key)
        return f"{signing_input}.{b64url_encode(signature)}"

    def __repr__(self) -> str:
        return f"Key(kid={self.kid!r}, alg={self.alg!r}, signs={self.signing_key is not None})"


class KeyRing:
    """The keys of one token type (``access`` or ``refresh``), by ``kid``."""

    def __init__(self, name: str, keys: Iterable[Key]) -> None:
        self.name = name
        self.keys: dict[str, Key] = {}
        for key in keys:
            if key.kid in self.keys:
                raise ConfigError(f"{name} key ring: duplicate kid {key.kid!r}")
            self.keys[key.kid] = key
        if not self.keys:
            raise ConfigError(f"{name} key ring: no keys")
        self.active: Key | None = next((k for k in self.keys.values() if k.signing_key), None)

    def get(self, kid: str) -> Key | None:
        """The key with this ``kid``, or ``None``."""
        return self.keys.get(kid)

    def signing_key(self) -> Key:
        """The active signing key; ``ConfigError`` when the ring holds public keys only."""
        if self.active is None:
            raise ConfigError(f"{self.name} key ring has no private key: it can verify, not sign")
        return self.active

    def public_jwks(self) -> dict[str, Any]:
        """The ring's public JWKS (``HS256`` secrets are never published and are left out)."""
        return {"keys": [dict(k.public_jwk) for k in self.keys.values() if k.public_jwk]}

    def __repr__(self) -> str:
        active = self.active.kid if self.active else None
        return f"KeyRing({self.name!r}, kids={list(self.keys)}, active={active!r})"


def load_jwks(source: str, *, ring: str) -> KeyRing:
    """Build a ``KeyRing`` from a JWKS document, given as JSON text or as a path to a file."""
    if not isinstance(source, str):
        raise ConfigError(f"{ring} key ring: the JWKS must be given as JSON text or a path")
    text = source.strip()
    if not text.startswith("{"):
        try:
            text = Path(text).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{ring} key ring: cannot read JWKS file: {exc.strerror}") from None
        except ValueError:  # a NUL byte in the path, or a file that is not UTF-8
            raise ConfigError(
                f"{ring} key ring: cannot read JWKS file: invalid path or not UTF-8 text"
            ) from None
    try:
        doc = loads_object(text.encode("utf-8"))
    except StrictDecodeError as exc:
        raise ConfigError(f"{ring} key ring: JWKS is not a strict JSON object ({exc})") from None
    keys = doc.get("keys")
    if not isinstance(keys, list) or not keys:
        raise ConfigError(f'{ring} key ring: JWKS needs a non-empty "keys" array')
    return KeyRing(ring, (_load_key(jwk, ring) for jwk in keys))


def _unusable(exc: Exception, what: str) -> SessionError:
    return ConfigError(f"{what} ({type(exc).__name__})")  # never the text: it may quote the key


# PyJWT and cryptography over key material: their errors (ValueError from a bad point or an
# unsupported curve, TypeError or KeyError from a member of the wrong shape) mean the key.
_KEY_MATERIAL: Final = tuple(
    Rule(source, ConfigError, _unusable, chain=False)
    for source in (PyJWKError, PyJWTError, ValueError, TypeError, KeyError)
)


def _load_key(jwk: object, ring: str) -> Key:
    if not isinstance(jwk, dict):
        raise ConfigError(f"{ring} key ring: every entry of keys must be a JSON object")
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not _KID.fullmatch(kid):
        raise ConfigError(f"{ring} key ring: every key needs a kid of 1-128 of [A-Za-z0-9._:~-]")
    where = f"{ring} key ring, kid {kid!r}"
    check_jwk(jwk, where)
    alg = jwk["alg"]
    with map_exceptions(f"{where}: unusable key", _KEY_MATERIAL):
        parsed = PyJWK(jwk, alg)
    algorithm, key = parsed.Algorithm, parsed.key
    private = _has_private(jwk)
    can_sign = private and "sign" in jwk.get("key_ops", ["sign"])
    if jwk["kty"] == "oct":
        verify_key, public_jwk = key, None
    else:
        verify_key = key.public_key() if private else key
        public_jwk = algorithm.to_jwk(verify_key, as_dict=True) | {
            "kid": kid,
            "alg": alg,
            "use": "sig",
        }
    return Key(
        kid=kid,
        alg=alg,
        algorithm=algorithm,
        verify_key=verify_key,
        signing_key=key if can_sign else None,
        thumbprint=_thumbprint(public_jwk or jwk),
        public_jwk=public_jwk,
    )


def _has_private(jwk: Mapping[str, Any]) -> bool:
    return jwk["kty"] == "oct" or "d" in jwk


def _thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url) of the key's defining members."""
    members = {m: jwk[m] for m in _THUMBPRINT_MEMBERS[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return b64url_encode(hashlib.sha256(canonical).digest())


def check_disjoint(access: KeyRing, refresh: KeyRing) -> None:
    """Refuse rings that share a ``kid`` or key material (a refresh key must never sign access)."""
    shared_kids = access.keys.keys() & refresh.keys.keys()
    if shared_kids:
        raise ConfigError(f"access and refresh key rings share kid(s) {sorted(shared_kids)}")
    thumbs = {k.thumbprint for k in access.keys.values()}
    for key in refresh.keys.values():
        if key.thumbprint in thumbs:
            raise ConfigError(
                f"refresh key {key.kid!r} has the same key material as an access key: "
                "use separate keys for the two rings"
            )
