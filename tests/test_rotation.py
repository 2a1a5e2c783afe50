"""sessionsvc.tokens.rotation: stage, promote and retire on JWKS documents (pure; an explicit
``now``)."""

from __future__ import annotations

from typing import Any

import pytest

from sessionsvc.errors import ConfigError
from sessionsvc.tokens.keygen import generate_jwk, generate_jwks
from sessionsvc.tokens.rotation import (
    ROTATION,
    RotationRefused,
    promote,
    retire,
    ring_of,
    stage,
)

NOW = 1_800_000_000
DELAY = 300
LIFETIME = 900 + 30 + 10


@pytest.fixture
def doc() -> dict[str, Any]:
    return generate_jwks("EdDSA", "old")


@pytest.fixture
def staged(doc: dict[str, Any]) -> dict[str, Any]:
    return stage(doc, generate_jwk("EdDSA", "new"), ring="access", now=NOW, delay=DELAY)


@pytest.fixture
def promoted(staged: dict[str, Any]) -> dict[str, Any]:
    return promote(staged, ring="access", now=NOW + DELAY, lifetime=LIFETIME)


def test_stage_adds_the_new_key_for_verification_only(staged: dict[str, Any]) -> None:
    ring = ring_of(staged, "access")
    assert list(ring.keys) == ["old", "new"]
    assert ring.signing_key().kid == "old"


def test_stage_records_when_promotion_is_allowed(staged: dict[str, Any]) -> None:
    assert staged[ROTATION] == {
        "state": "staged",
        "kid": "new",
        "previous": "old",
        "staged_at": NOW,
        "promote_after": NOW + DELAY,
    }


def test_stage_is_refused_while_a_rotation_is_in_progress(staged: dict[str, Any]) -> None:
    with pytest.raises(RotationRefused, match="in progress"):
        stage(staged, generate_jwk("EdDSA", "newer"), ring="access", now=NOW, delay=DELAY)


def test_stage_is_refused_for_a_ring_that_cannot_sign() -> None:
    public = ring_of(generate_jwks("EdDSA", "old"), "access").public_jwks()
    with pytest.raises(RotationRefused, match="no signing key"):
        stage(public, generate_jwk("EdDSA", "new"), ring="access", now=NOW, delay=DELAY)


def test_stage_is_refused_for_a_kid_the_ring_holds(doc: dict[str, Any]) -> None:
    with pytest.raises(RotationRefused, match="already holds"):
        stage(doc, generate_jwk("EdDSA", "old"), ring="access", now=NOW, delay=DELAY)


def test_stage_keeps_the_key_policy(doc: dict[str, Any]) -> None:
    weak = {"kty": "oct", "alg": "HS256", "kid": "weak", "k": "c2VjcmV0"}
    with pytest.raises(ConfigError, match="HS256 secret"):
        stage(doc, weak, ring="access", now=NOW, delay=DELAY)


def test_promote_is_refused_before_the_delay(staged: dict[str, Any]) -> None:
    with pytest.raises(RotationRefused, match="promote refused"):
        promote(staged, ring="access", now=NOW + DELAY - 1, lifetime=LIFETIME)


def test_promote_is_refused_without_a_staged_key(doc: dict[str, Any]) -> None:
    with pytest.raises(RotationRefused, match="must be 'staged'"):
        promote(doc, ring="access", now=NOW, lifetime=LIFETIME)


def test_promote_makes_the_new_key_sign_and_keeps_the_old_for_verification(
    promoted: dict[str, Any],
) -> None:
    ring = ring_of(promoted, "access")
    assert ring.signing_key().kid == "new"
    assert list(ring.keys) == ["new", "old"]
    old = next(jwk for jwk in promoted["keys"] if jwk["kid"] == "old")
    assert old["key_ops"] == ["verify"]


def test_promote_records_when_retirement_is_allowed(promoted: dict[str, Any]) -> None:
    record = promoted[ROTATION]
    assert record["state"] == "promoted"
    assert record["promoted_at"] == NOW + DELAY
    assert record["retire_after"] == NOW + DELAY + LIFETIME


def test_retire_is_refused_before_the_old_keys_tokens_expired(promoted: dict[str, Any]) -> None:
    with pytest.raises(RotationRefused, match="retire refused"):
        retire(promoted, ring="access", now=NOW + DELAY + LIFETIME - 1)


def test_retire_is_refused_before_promotion(staged: dict[str, Any]) -> None:
    with pytest.raises(RotationRefused, match="must be 'promoted'"):
        retire(staged, ring="access", now=NOW + 10**9)


def test_retire_removes_the_old_key_and_ends_the_rotation(promoted: dict[str, Any]) -> None:
    retired = retire(promoted, ring="access", now=NOW + DELAY + LIFETIME)
    ring = ring_of(retired, "access")
    assert list(ring.keys) == ["new"] and ring.signing_key().kid == "new"
    assert ROTATION not in retired


def test_a_second_rotation_can_start_after_retirement(promoted: dict[str, Any]) -> None:
    retired = retire(promoted, ring="access", now=NOW + DELAY + LIFETIME)
    again = stage(retired, generate_jwk("EdDSA", "newer"), ring="access", now=NOW, delay=DELAY)
    assert again[ROTATION]["previous"] == "new"


def test_other_verification_keys_survive_the_rotation() -> None:
    doc = generate_jwks("EdDSA", "old")
    doc["keys"].append(generate_jwk("ES256", "partner") | {"key_ops": ["verify"]})
    staged = stage(doc, generate_jwk("EdDSA", "new"), ring="access", now=NOW, delay=0)
    done = retire(promote(staged, ring="access", now=NOW, lifetime=0), ring="access", now=NOW)
    assert list(ring_of(done, "access").keys) == ["new", "partner"]
