"""sessionsvc.tokens.keygen: generated keys pass the start-up checks and round-trip a token."""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from tokens_harness import claims

from sessionsvc import KeyRing, Validator, generate_jwk, generate_jwks, load_jwks
from sessionsvc.encoding import b64url_decode
from sessionsvc.tokens.key_policy import SUPPORTED_ALGS, check_jwk
from tests.conftest import ManualClock, make_settings

ALGS = ["EdDSA", "ES256", "RS256", "HS256"]
SHAPES = {
    "EdDSA": {"kty": "OKP", "crv": "Ed25519"},
    "ES256": {"kty": "EC", "crv": "P-256"},
    "RS256": {"kty": "RSA"},
    "HS256": {"kty": "oct"},
}


@pytest.fixture(scope="module")
def generated() -> dict[str, dict[str, Any]]:
    """One generated JWK per algorithm (RS256 is slow: generated once for the module)."""
    return {alg: generate_jwk(alg, f"gen-{alg}") for alg in ALGS}


@pytest.mark.parametrize("alg", ALGS)
def test_generated_jwk_has_kid_alg_use_and_shape(alg: str, generated: dict[str, Any]) -> None:
    jwk = generated[alg]
    assert jwk["kid"] == f"gen-{alg}"
    assert jwk["alg"] == alg
    assert jwk["use"] == "sig"
    assert SHAPES[alg].items() <= jwk.items()


@pytest.mark.parametrize("alg", ALGS)
def test_generated_jwk_holds_private_material(alg: str, generated: dict[str, Any]) -> None:
    assert ("k" if alg == "HS256" else "d") in generated[alg]


@pytest.mark.parametrize("alg", ALGS)
def test_generated_key_loads_as_an_active_signing_key(alg: str, generated: dict[str, Any]) -> None:
    ring = load_jwks(json.dumps({"keys": [generated[alg]]}), ring="access")
    assert ring.signing_key().kid == f"gen-{alg}"
    assert ring.signing_key().alg == alg


@pytest.mark.parametrize("alg", ALGS)
def test_generated_key_round_trips_a_token(alg: str, generated: dict[str, Any]) -> None:
    ring = load_jwks(json.dumps({"keys": [generated[alg]]}), ring="access")
    payload = claims()
    token = ring.signing_key().sign(payload, "at+jwt")
    validator = Validator(make_settings("EdDSA"), keys=ring, clock=ManualClock())
    assert dict(validator.validate(token)) == payload


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "RS256"])
def test_generated_public_jwks_verifies_tokens_of_the_private_key(
    alg: str, generated: dict[str, Any]
) -> None:
    private = load_jwks(json.dumps({"keys": [generated[alg]]}), ring="access")
    public = load_jwks(json.dumps(private.public_jwks()), ring="access")
    header, payload, signature = private.signing_key().sign({"x": 1}, "at+jwt").split(".")
    assert public.active is None
    assert public.keys[f"gen-{alg}"].verify(
        f"{header}.{payload}".encode(), b64url_decode(signature)
    )


def test_rsa_keys_are_3072_bits(generated: dict[str, Any]) -> None:
    ring = load_jwks(json.dumps({"keys": [generated["RS256"]]}), ring="access")
    key = ring.signing_key().signing_key
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 3072


def test_hs256_secret_is_32_bytes(generated: dict[str, Any]) -> None:
    assert len(b64url_decode(generated["HS256"]["k"])) == 32


def test_default_alg_is_eddsa() -> None:
    assert generate_jwk()["alg"] == "EdDSA"


def test_default_kid_is_random_and_valid() -> None:
    kids = {generate_jwk("HS256")["kid"] for _ in range(20)}
    assert len(kids) == 20
    assert all(len(kid) == 16 for kid in kids)  # 12 random bytes, base64url


def test_generated_secrets_differ() -> None:
    assert generate_jwk("HS256", "a")["k"] != generate_jwk("HS256", "a")["k"]


@pytest.mark.parametrize("alg", ["none", "HS512", "RS512", "eddsa", ""])
def test_unsupported_alg_raises_value_error(alg: str) -> None:
    with pytest.raises(ValueError, match="unsupported alg"):
        generate_jwk(alg)


def test_generate_jwks_wraps_one_key() -> None:
    doc = generate_jwks("ES256", "only")
    assert list(doc) == ["keys"]
    assert [k["kid"] for k in doc["keys"]] == ["only"]
    assert isinstance(load_jwks(json.dumps(doc), ring="access"), KeyRing)


def test_generator_covers_every_supported_alg() -> None:
    assert set(ALGS) == set(SUPPORTED_ALGS)


def test_generated_hs256_secrets_always_pass_the_key_policy() -> None:
    for _ in range(2000):
        check_jwk(generate_jwk("HS256", "k1"), "generated")


def test_generation_draws_again_when_a_secret_would_be_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    draws = iter([bytes(range(32)), b"a" * 32, b"correct horse battery staple 24!"])
    good = hashlib.sha256(b"sessionsvc").digest()
    real = secrets.token_bytes

    def token_bytes(n: int) -> bytes:
        return next(draws, good) if n == 32 else real(n)

    monkeypatch.setattr(secrets, "token_bytes", token_bytes)
    assert b64url_decode(generate_jwk("HS256", "k1")["k"]) == good
