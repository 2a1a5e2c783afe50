"""The signature layer of identity providers' tokens (pure, no I/O: keys come from a
``KeyLookup``), shared by logout tokens and Security Event Tokens; it trusts nothing the
earlier steps did not establish:

1. size cap (``too_large``) before any decoding; three canonical segments, strict JSON header
   and payload (``malformed``); ``alg`` one of ``trust.ALGORITHMS`` (never ``none``, never HMAC:
   ``alg_not_allowed``); ``kid`` a printable string if given; ``crit`` refused
   (``forbidden_header``); ``jku``, ``x5u``, ``jwk``, ``x5c`` never honoured (ignored);
2. ``typ``, when present, the expected media type, ``application/`` prefix optional, any case
   (``wrong_typ``); when required, present (``missing_typ``);
3. the unverified ``iss`` only picks the trust entry (``invalid_issuer``), whose
   ``algorithms`` must list ``alg``; ``keys.key(iss, kid, alg)`` gives the key (its errors and
   ``IdpKeysUnavailable`` pass through), bound to that ``alg``; PyJWT verifies with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from jwt import PyJWK, PyJWTError

from sessionsvc._boundary import Rule, map_exceptions
from sessionsvc.encoding import StrictDecodeError, loads_object
from sessionsvc.errors import IdpTokenRejected, SessionError, TokenRejected
from sessionsvc.idp.claims import identifier
from sessionsvc.idp.model import KeyLookup
from sessionsvc.idp.trust import ALGORITHMS, Idps, IdpTrust
from sessionsvc.tokens.claims import id_claim_problem
from sessionsvc.tokens.verify import Compact, parse_compact

__all__ = ["verify_signed"]


def _bad_key(exc: Exception, what: str) -> SessionError:
    return IdpTokenRejected("invalid_key", "bad_signature", f"{what} ({type(exc).__name__})")


# PyJWT and cryptography, handed a key that does not fit the signature: the key is refused.
_SIGNATURE: Final = tuple(
    Rule(source, IdpTokenRejected, _bad_key, chain=False)
    for source in (PyJWTError, ValueError, TypeError)
)


def verify_signed(
    token: object,
    idps: Idps,
    keys: KeyLookup | None,
    *,
    typ: str,
    require_typ: bool | None,
    max_size: int,
) -> tuple[IdpTrust, dict[str, Any]]:
    """Steps 1–3 above: the trust entry of the token's issuer and its verified claims.
    ``require_typ=None`` leaves it to the issuer's ``trust.require_typ``. ``keys=None``: the
    signature was verified before, by a receiver (the idp intake, which only workers write),
    so a key the provider has rotated away since cannot lose a logout it was told we took."""
    try:
        compact = parse_compact(token, max_size)
    except TokenRejected as exc:
        raise IdpTokenRejected("invalid_request", exc.reason, exc.detail) from None
    alg, kid = _check_header(compact.header, typ)
    try:
        claims = loads_object(compact.payload)
    except StrictDecodeError as exc:
        raise IdpTokenRejected("invalid_request", "malformed", f"payload: {exc}") from None
    iss = identifier(claims, "iss", limit=2048)
    trust = idps.get(iss)
    if trust is None:
        raise IdpTokenRejected("invalid_issuer", "unknown_issuer", "iss is not a trusted issuer")
    if alg not in trust.algorithms:
        raise IdpTokenRejected("invalid_key", "alg_not_allowed", "alg not allowed for this issuer")
    if "typ" not in compact.header and (trust.require_typ if require_typ is None else require_typ):
        raise IdpTokenRejected("invalid_request", "missing_typ", f"header typ {typ!r} required")
    if keys is not None:
        _verify_signature(keys.key(trust.issuer, kid, alg), alg, compact)
    return trust, claims


def _check_header(header: Mapping[str, Any], typ: str) -> tuple[str, str | None]:
    alg, kid = header.get("alg"), header.get("kid")
    if not isinstance(alg, str):
        raise IdpTokenRejected("invalid_request", "malformed", "header alg must be a string")
    if alg not in ALGORITHMS:  # none, HMAC, anything unknown: before the payload is looked at
        raise IdpTokenRejected("invalid_key", "alg_not_allowed", "alg must be asymmetric")
    if kid is not None and id_claim_problem(kid) is not None:
        raise IdpTokenRejected("invalid_request", "malformed", "header kid must be a short string")
    if "crit" in header:
        raise IdpTokenRejected("invalid_request", "forbidden_header", "header crit not supported")
    if "typ" in header:
        given = header["typ"]
        media = given.lower().removeprefix("application/") if isinstance(given, str) else None
        if media != typ:
            raise IdpTokenRejected("invalid_request", "wrong_typ", f"header typ must be {typ!r}")
    return alg, kid


def _verify_signature(jwk: PyJWK, alg: str, compact: Compact) -> None:
    if jwk.algorithm_name != alg:  # the key's own algorithm; the header never picks another
        raise IdpTokenRejected("invalid_key", "alg_not_allowed", "the key is not for this alg")
    with map_exceptions("the key cannot verify this signature", _SIGNATURE):
        valid = jwk.Algorithm.verify(compact.signing_input, jwk.key, compact.signature)
    if not valid:
        raise IdpTokenRejected("invalid_key", "bad_signature", "signature does not verify")
