"""Key rotation of one private JWKS document in three steps (pure: documents in, documents out).

1. ``stage``: a new key is added verification-only (``key_ops: ["verify"]``): deployed, every
   node learns it before anything is signed with it. The earliest promotion is recorded.
2. ``promote`` (refused before ``promote_after``, a delay longer than any node's reload
   interval): the new key moves to first position without ``key_ops`` — the active signing key
   (``sessionsvc.tokens.keys``: the first private key that may sign) — and every other private
   key becomes ``key_ops: ["verify"]``. The earliest retirement is recorded.
3. ``retire`` (refused before ``retire_after``: the longest token the old key signed has
   expired): the old key is removed and the record with it.

The record is the JWKS member ``sessionsvc:rotation`` (``load_jwks`` reads ``keys`` only; the
public JWKS never carries it). Every result is judged by ``load_jwks`` (the key policy: pinned
``alg``, sizes) before it is returned; a refusal is ``RotationRefused`` (a ``ConfigError``).
"""

from __future__ import annotations

import json
from typing import Any, Final

from sessionsvc.errors import ConfigError
from sessionsvc.tokens.keys import KeyRing, load_jwks

__all__ = ["ROTATION", "RotationRefused", "promote", "retire", "stage", "summary"]

ROTATION: Final = "sessionsvc:rotation"
Doc = dict[str, Any]


class RotationRefused(ConfigError):
    """The step is not allowed (yet): the message says why and when."""


def ring_of(doc: Doc, ring: str) -> KeyRing:
    """The key ring ``doc`` makes (``ConfigError`` from the key policy)."""
    return load_jwks(json.dumps(doc), ring=ring)


def stage(doc: Doc, new_jwk: dict[str, Any], *, ring: str, now: float, delay: float) -> Doc:
    """Add ``new_jwk`` verification-only; promotion allowed from ``now + delay``."""
    if ROTATION in doc:
        _refuse_in_progress(doc)
    current = ring_of(doc, ring)
    if current.active is None:
        raise RotationRefused(f"{ring} key ring holds no signing key: nothing to rotate")
    if new_jwk.get("kid") in current.keys:
        raise RotationRefused(f"{ring} key ring already holds kid {new_jwk.get('kid')!r}")
    staged = dict(new_jwk) | {"key_ops": ["verify"]}
    out = doc | {
        "keys": [*doc["keys"], staged],
        ROTATION: {
            "state": "staged",
            "kid": staged["kid"],
            "previous": current.active.kid,
            "staged_at": int(now),
            "promote_after": int(now + delay),
        },
    }
    _expect_signing(out, ring, current.active.kid)
    return out


def promote(doc: Doc, *, ring: str, now: float, lifetime: float) -> Doc:
    """Make the staged key the signing key, the others verification-only; retirement of the
    previous key allowed from ``now + lifetime`` (the longest token it signed, plus margins)."""
    record = _record(doc, "staged", "promote")
    if now < record["promote_after"]:
        raise RotationRefused(
            f"promote refused: {record['kid']!r} was staged at {record['staged_at']}; not before "
            f"{record['promote_after']} ({record['promote_after'] - int(now)} s from now), so "
            "that every node has reloaded the ring that can verify it"
        )
    new = record["kid"]
    first = [_signing(jwk) for jwk in doc["keys"] if jwk.get("kid") == new]
    others = [_verify_only(jwk) for jwk in doc["keys"] if jwk.get("kid") != new]
    promoted = record | {
        "state": "promoted",
        "promoted_at": int(now),
        "retire_after": int(now + lifetime),
    }
    out = doc | {"keys": first + others, ROTATION: promoted}
    _expect_signing(out, ring, new)
    return out


def retire(doc: Doc, *, ring: str, now: float) -> Doc:
    """Remove the previous signing key once ``retire_after`` has passed; end the rotation."""
    record = _record(doc, "promoted", "retire")
    if now < record["retire_after"]:
        raise RotationRefused(
            f"retire refused: tokens signed by {record['previous']!r} may be valid until "
            f"{record['retire_after']} ({record['retire_after'] - int(now)} s from now)"
        )
    keys = [jwk for jwk in doc["keys"] if jwk.get("kid") != record["previous"]]
    out = {k: v for k, v in doc.items() if k != ROTATION} | {"keys": keys}
    _expect_signing(out, ring, record["kid"])
    return out


def summary(doc: Doc, *, ring: str) -> dict[str, Any]:
    """What the document holds, without key material: kids, the signing kid, the rotation."""
    keys = ring_of(doc, ring)
    return {
        "ring": ring,
        "kids": list(keys.keys),
        "signing": keys.active.kid if keys.active else None,
        "rotation": doc.get(ROTATION),
    }


def _record(doc: Doc, state: str, step: str) -> dict[str, Any]:
    record = doc.get(ROTATION)
    if not isinstance(record, dict) or record.get("state") != state:
        have = record.get("state") if isinstance(record, dict) else "none"
        raise RotationRefused(f"{step} refused: the rotation must be {state!r}, it is {have!r}")
    for name in ("promote_after", "retire_after"):  # (an edited record: refused, not a crash)
        if name in record and (type(record[name]) is not int or record[name] < 0):
            raise RotationRefused(f"{step} refused: the rotation record's {name} is not a time")
    for name in ("new", "previous"):
        if name in record and not isinstance(record[name], str):
            raise RotationRefused(f"{step} refused: the rotation record's {name} is not a kid")
    return dict(record)


def _refuse_in_progress(doc: Doc) -> None:
    record = doc[ROTATION]
    state = record.get("state") if isinstance(record, dict) else record
    raise RotationRefused(
        f"a rotation is in progress ({state!r}): finish it with --promote / --retire first"
    )


def _signing(jwk: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in jwk.items() if k != "key_ops"}


def _verify_only(jwk: dict[str, Any]) -> dict[str, Any]:
    private = jwk.get("kty") == "oct" or "d" in jwk
    return jwk | {"key_ops": ["verify"]} if private else dict(jwk)


def _expect_signing(doc: Doc, ring: str, kid: str) -> None:
    active = ring_of(doc, ring).active
    if active is None or active.kid != kid:
        found = active.kid if active else None
        raise ConfigError(f"{ring} key ring would sign with {found!r}, not {kid!r}: refused")
