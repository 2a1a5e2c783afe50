"""Token verification without cache or revocation: header layer, signature layer, claims layer.

``TokenVerifier`` is pure (no I/O, no clock of its own) and shared by the access-token
``Validator`` and the refresh path of the session service. Check order, which decides the reason a
hostile token gets (each step trusts nothing the earlier steps did not establish):

1. size cap (``too_large``) before any decoding;
2. three canonical base64url segments, header a strict JSON object (``malformed``);
3. header members: ``jku x5u jwk x5c crit zip cty b64 …`` or anything but ``alg kid typ``
   (``forbidden_header``); ``alg`` ``none`` in any case (``alg_not_allowed``);
4. ``typ`` exactly ours (``wrong_type``) — so a refresh token shown as an access token says so;
5. ``kid`` in our ring (``unknown_key``); header ``alg`` equal to the key's pinned ``alg``
   (``alg_not_allowed``) — the header never chooses the algorithm;
6. signature (``bad_signature``); only then the payload is parsed (``malformed``);
7. claims (``sessionsvc.tokens.claims``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from sessionsvc.encoding import StrictDecodeError, b64url_decode, loads_object
from sessionsvc.errors import TokenRejected
from sessionsvc.tokens.claims import ClaimRules, validate_claims
from sessionsvc.tokens.keys import Key, KeyRing

__all__ = ["ALLOWED_HEADERS", "TokenVerifier", "Verified", "parse_compact"]

ALLOWED_HEADERS: Final = frozenset({"alg", "kid", "typ"})


@dataclass(frozen=True, slots=True)
class Compact:
    """A structurally valid compact JWS, payload still undecoded."""

    header: dict[str, Any]
    signing_input: bytes
    payload: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class Verified:
    """A token whose header, signature and claims passed."""

    key: Key
    claims: dict[str, Any]


def parse_compact(token: object, max_size: int) -> Compact:
    """Steps 1–2: size cap, segments, strict header JSON."""
    if isinstance(token, str | bytes) and len(token) > max_size:  # before even ASCII-decoding
        raise TokenRejected("too_large", f"token is longer than {max_size} characters")
    if isinstance(token, bytes):
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError:
            raise TokenRejected("malformed", "token is not ASCII") from None
    if not isinstance(token, str):
        raise TokenRejected("malformed", "token must be a string")
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenRejected("malformed", f"token has {len(parts)} segments, not 3")
    try:
        header = loads_object(b64url_decode(parts[0]))
        payload = b64url_decode(parts[1])
        signature = b64url_decode(parts[2])
    except StrictDecodeError as exc:
        raise TokenRejected("malformed", str(exc)) from None
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    return Compact(header, signing_input, payload, signature)


class TokenVerifier:
    """Verifies one kind of token (``typ``) against one key ring and one set of claim rules."""

    def __init__(self, ring: KeyRing, typ: str, rules: ClaimRules, max_size: int = 8192) -> None:
        self.ring = ring
        self.typ = typ
        self.rules = rules
        self.max_size = max_size

    def verify(self, token: object, now: float) -> Verified:
        """Run every layer; return the key and claims or raise ``TokenRejected``."""
        compact = parse_compact(token, self.max_size)
        key = self.check_header(compact.header)
        if not key.verify(compact.signing_input, compact.signature):
            raise TokenRejected("bad_signature", "signature does not verify")
        try:
            claims = loads_object(compact.payload)
        except StrictDecodeError as exc:
            raise TokenRejected("malformed", f"payload: {exc}") from None
        validate_claims(claims, self.rules, now)
        return Verified(key, claims)

    def check_header(self, header: dict[str, Any]) -> Key:
        """Steps 3–5: the header may only name our ``typ`` and a key of ours, with its ``alg``."""
        extra = header.keys() - ALLOWED_HEADERS
        if extra:
            raise TokenRejected("forbidden_header", f"header member(s) {sorted(extra)} not allowed")
        alg = header.get("alg")
        if not isinstance(alg, str):
            raise TokenRejected("malformed", "header alg must be a string")
        if alg.lower() == "none":
            raise TokenRejected("alg_not_allowed", "alg none is never allowed")
        if header.get("typ") != self.typ:
            raise TokenRejected("wrong_type", f"typ must be {self.typ!r}")
        kid = header.get("kid")
        if kid is None:
            raise TokenRejected("unknown_key", "header has no kid")
        if not isinstance(kid, str):
            raise TokenRejected("malformed", "header kid must be a string")
        key = self.ring.get(kid)
        if key is None:
            raise TokenRejected("unknown_key", f"kid not in the {self.ring.name} key ring")
        if alg != key.alg:
            raise TokenRejected("alg_not_allowed", f"this key only verifies {key.alg}")
        return key
