"""sessionsvc.tokens.key_policy: every refusal of one JWK at start-up."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from sessionsvc import ConfigError, generate_jwk
from sessionsvc.encoding import b64url_encode
from sessionsvc.tokens.key_policy import MIN_RSA_BITS, SUPPORTED_ALGS, check_jwk

WHERE = "access key ring, kid 'k1'"


b64 = b64url_encode


def hs256(secret: bytes, **extra: Any) -> dict[str, Any]:
    return {"kty": "oct", "alg": "HS256", "kid": "k1", "k": b64(secret), **extra}


@pytest.fixture(scope="module")
def rsa_jwk() -> dict[str, Any]:
    return generate_jwk("RS256", "k1")  # 3072 bits, generated once for the module


def refused(jwk: dict[str, Any], match: str) -> ConfigError:
    with pytest.raises(ConfigError, match=match) as info:
        check_jwk(jwk, WHERE)
    assert str(info.value).startswith(WHERE + ": ")  # every message names the key
    return info.value


# --- accepted ---------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "HS256"])
def test_generated_keys_pass(alg: str) -> None:
    check_jwk(generate_jwk(alg, "k1"), WHERE)


def test_generated_rsa_key_passes(rsa_jwk: dict[str, Any]) -> None:
    check_jwk(rsa_jwk, WHERE)


def test_public_key_passes() -> None:
    jwk = generate_jwk("EdDSA", "k1")
    del jwk["d"]
    check_jwk(jwk, WHERE)


def test_use_may_be_omitted() -> None:
    jwk = generate_jwk("EdDSA", "k1")
    del jwk["use"]
    check_jwk(jwk, WHERE)


@pytest.mark.parametrize("ops", [["sign"], ["verify"], ["sign", "verify"]])
def test_key_ops_sign_and_verify_pass(ops: list[str]) -> None:
    check_jwk(generate_jwk("EdDSA", "k1") | {"key_ops": ops}, WHERE)


# --- alg ----------------------------------------------------------------------------------------


def test_alg_missing_is_refused() -> None:
    jwk = generate_jwk("EdDSA", "k1")
    del jwk["alg"]
    refused(jwk, "alg is required")


def test_alg_not_a_string_is_refused() -> None:
    refused(generate_jwk("EdDSA", "k1") | {"alg": ["EdDSA"]}, "alg is required")


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_is_refused_in_any_case(alg: str) -> None:
    refused(generate_jwk("EdDSA", "k1") | {"alg": alg}, "'none' is never allowed")


@pytest.mark.parametrize("alg", ["HS512", "RS512", "PS256", "ES384", "ES256K", "Ed25519", "eddsa"])
def test_unsupported_alg_is_refused(alg: str) -> None:
    refused(generate_jwk("EdDSA", "k1") | {"alg": alg}, "is not supported")


# --- alg fitting the key ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key_alg", "claimed"),
    [
        ("EdDSA", "ES256"),
        ("EdDSA", "HS256"),
        ("ES256", "EdDSA"),
        ("ES256", "RS256"),
        ("HS256", "EdDSA"),
        ("HS256", "RS256"),
    ],
)
def test_alg_not_fitting_kty_is_refused(key_alg: str, claimed: str) -> None:
    refused(generate_jwk(key_alg, "k1") | {"alg": claimed}, f"alg {claimed} needs a key of kty")


def test_rsa_key_claiming_hs256_is_refused(rsa_jwk: dict[str, Any]) -> None:
    refused(rsa_jwk | {"alg": "HS256"}, "alg HS256 needs a key of kty 'oct'")


def test_eddsa_with_x25519_curve_is_refused() -> None:
    refused(generate_jwk("EdDSA", "k1") | {"crv": "X25519"}, "crv 'Ed25519'")


def test_es256_with_other_curve_is_refused() -> None:
    refused(generate_jwk("ES256", "k1") | {"crv": "P-384"}, "crv 'P-256'")


def test_missing_kty_is_refused() -> None:
    jwk = generate_jwk("ES256", "k1")
    del jwk["kty"]
    refused(jwk, "needs a key of kty 'EC'")


# --- use and key_ops ----------------------------------------------------------------------------


@pytest.mark.parametrize("use", ["enc", "SIG", "", None])
def test_use_other_than_sig_is_refused(use: object) -> None:
    refused(generate_jwk("EdDSA", "k1") | {"use": use}, "use must be 'sig'")


@pytest.mark.parametrize(
    "ops",
    [[], ["encrypt"], ["sign", "deriveKey"], "sign", ["Sign"], [1], [None], {"sign": True}],
)
def test_bad_key_ops_are_refused(ops: object) -> None:
    refused(generate_jwk("EdDSA", "k1") | {"key_ops": ops}, "key_ops may only hold")


@pytest.mark.parametrize("ops", [[["sign"]], [{}]])
def test_unhashable_key_ops_are_refused_with_config_error(ops: object) -> None:
    refused(generate_jwk("EdDSA", "k1") | {"key_ops": ops}, "key_ops may only hold")


# --- HS256 secrets ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 16, 31])
def test_short_secret_is_refused(size: int) -> None:
    refused(hs256(secrets.token_bytes(size)), f"HS256 secret is {size} bytes; at least 32")


def test_secret_of_exactly_32_random_bytes_passes() -> None:
    check_jwk(hs256(hashlib.sha256(b"sessionsvc").digest()), WHERE)


@pytest.mark.parametrize("secret", [b"a" * 64, b"ab" * 32, bytes(range(15)) * 4])
def test_low_variety_secret_is_refused(secret: bytes) -> None:
    refused(hs256(secret), "not random enough")


@pytest.mark.parametrize(
    "secret",
    [
        b"correct horse battery staple 2024",
        b"my_company_jwt_signing_key_v1_prod",
        b"Tr0ub4dor&3 is not a key, is it?!",
        hashlib.sha512(b"hex").hexdigest().encode(),  # the bytes of hex text, not of the key
        base64.b64encode(hashlib.sha256(b"b64").digest()),
        b"multi-line\npassphrase\twith whitespace\r\n",
        "Contraseña muy segura del servicio de sesión".encode(),
        "Größenwahnsinniges Schlüsselwort für Übergänge".encode(),
    ],
    ids=[
        "passphrase",
        "identifier",
        "password",
        "hex-text",
        "base64-text",
        "whitespace",
        "utf8-spanish",
        "utf8-german",
    ],
)
def test_text_like_secret_is_refused(secret: bytes) -> None:
    refused(hs256(secret), "looks like text")


@pytest.mark.parametrize(
    "secret",
    [
        bytes(range(32)),
        bytes(range(100, 164)),
        bytes(range(0, 256, 8)),
        bytes((7 * i + 3) % 256 for i in range(48)),
        bytes(range(255, 191, -2)),
        bytes(range(128, 160)) * 2,  # a sawtooth: two differences
        hashlib.sha256(b"x").digest()[:20] * 2,  # a repeating period of 20 random bytes
        hashlib.sha256(b"y").digest()[:17] * 3,
    ],
    ids=[
        "0-31",
        "100-163",
        "step-8",
        "step-7-wrapping",
        "descending",
        "sawtooth",
        "period-20",
        "period-17",
    ],
)
def test_patterned_secret_is_refused(secret: bytes) -> None:
    refused(hs256(secret), "patterned")


@pytest.mark.parametrize(
    "word",
    [b"secret", b"SECRET", b"changeme", b"password", b"your-256-bit", b"example", b"123456"],
)
def test_secret_containing_a_sample_value_is_refused(word: bytes) -> None:
    refused(hs256(bytes(range(128, 160)) + word), "well-known sample value")


def test_well_known_sample_secret_is_refused() -> None:
    refused(hs256(b"your-256-bit-secret-your-256-bit-secret!"), "HS256 secret")


@pytest.mark.parametrize("k", ["YWJj=", "a b", "+/+/", 123, None])
def test_secret_not_canonical_base64url_is_refused(k: object) -> None:
    refused({"kty": "oct", "alg": "HS256", "k": k}, "k ")


@pytest.mark.parametrize(
    "secret",
    [
        b"short-but-random?",
        b"a" * 64,
        bytes(range(128, 160)) + b"changeme",
        b"your-256-bit-secret-your-256-bit-secret!",
        b"correct horse battery staple 2024",
        bytes(range(32)),
    ],
)
def test_secret_refusals_never_echo_the_secret(secret: bytes) -> None:
    error = refused(hs256(secret), "HS256 secret")
    text = str(error)
    assert b64(secret) not in text
    assert secret.decode("latin-1") not in text
    assert repr(secret) not in text


# --- RSA size -----------------------------------------------------------------------------------


def test_rsa_under_2048_bits_is_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    jwk = RSAAlgorithm.to_jwk(small.public_key(), as_dict=True) | {"alg": "RS256"}
    refused(jwk, f"RSA modulus is 1024 bits; at least {MIN_RSA_BITS}")


def test_rsa_modulus_one_bit_short_is_refused() -> None:
    n = (1 << 2046) | 1  # 2047 bits; only the size is judged here
    refused({"kty": "RSA", "alg": "RS256", "n": b64(n.to_bytes(256, "big")), "e": "AQAB"}, "2047")


def test_rsa_modulus_of_2048_bits_passes() -> None:
    n = (1 << 2047) | 1
    check_jwk({"kty": "RSA", "alg": "RS256", "n": b64(n.to_bytes(256, "big")), "e": "AQAB"}, WHERE)


@pytest.mark.parametrize("n", [None, 42, "AQAB=", "a+b"])
def test_rsa_modulus_not_base64url_is_refused(n: object) -> None:
    refused({"kty": "RSA", "alg": "RS256", "n": n, "e": "AQAB"}, "n ")


# --- published example keys ---------------------------------------------------------------------

RFC7515_A1_HS256 = {
    "kty": "oct",
    "alg": "HS256",
    "k": "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow",
}
RFC7515_A3_ES256 = {
    "kty": "EC",
    "alg": "ES256",
    "crv": "P-256",
    "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    "y": "x_FEzRjmW-BmL3aIXg8ZFO3DvhU1YLuDeyqFFdHXr6g",
    "d": "jpsQnnGQmL-YBIffH1136cLmtFsTgzQ0ELnAV1UMA04",
}
RFC8037_A1_ED25519 = {
    "kty": "OKP",
    "alg": "EdDSA",
    "crv": "Ed25519",
    "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
    "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
}


@pytest.mark.parametrize("jwk", [RFC7515_A1_HS256, RFC7515_A3_ES256, RFC8037_A1_ED25519])
def test_rfc_example_keys_are_refused(jwk: dict[str, Any]) -> None:
    error = refused(dict(jwk), "published example key")
    assert jwk.get("d", jwk.get("k")) not in str(error)


def test_rfc_example_public_key_alone_passes() -> None:
    # only the private half is secret; the example public key verifies nothing of ours anyway
    public = {k: v for k, v in RFC8037_A1_ED25519.items() if k != "d"}
    check_jwk(public, WHERE)


def test_non_string_secret_is_refused_with_config_error() -> None:
    refused(hs256(secrets.token_bytes(32)) | {"k": ["x"]}, "k must be a base64url string")


def test_non_string_private_member_does_not_crash_the_sample_check() -> None:
    check_jwk(generate_jwk("EdDSA", "k1") | {"d": ["x"]}, WHERE)  # refused later, by PyJWK


def test_supported_algs_are_the_four_of_the_design() -> None:
    assert set(SUPPORTED_ALGS) == {"EdDSA", "ES256", "RS256", "HS256"}
