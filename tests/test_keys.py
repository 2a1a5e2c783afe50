"""sessionsvc.tokens.keys: loading key rings, kid rules, the active key, rotation, public JWKS."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import jwt
import pytest
from tokens_harness import claims

from sessionsvc import (
    ConfigError,
    KeyRing,
    Settings,
    TokenRejected,
    Validator,
    generate_jwk,
    load_jwks,
)
from sessionsvc.encoding import b64url_decode
from sessionsvc.tokens.keys import check_disjoint
from tests.conftest import ManualClock

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k", "oth"}


def jwks(*keys: dict[str, Any]) -> str:
    return json.dumps({"keys": list(keys)})


def public(jwk: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in jwk.items() if k not in PRIVATE_MEMBERS}


def access_payload() -> dict[str, Any]:
    """The shared claim set (``tokens_harness.claims``) with a fresh ``jti``."""
    return claims(jti=secrets.token_urlsafe(16))


@pytest.fixture(scope="module")
def rsa_jwk() -> dict[str, Any]:
    return generate_jwk("RS256", "rsa-1")


# --- kid rules ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kid", ["a", "key-2026.01_x:y~z", "A" * 128])
def test_valid_kids_load(kid: str) -> None:
    assert list(load_jwks(jwks(generate_jwk("EdDSA", kid)), ring="access").keys) == [kid]


@pytest.mark.parametrize(
    "kid", ["", "A" * 129, "../../etc/passwd", "a b", "a/b", "k'; DROP TABLE", "ké", "a\n"]
)
def test_invalid_kid_is_refused(kid: str) -> None:
    with pytest.raises(ConfigError, match="needs a kid of 1-128"):
        load_jwks(jwks(generate_jwk("EdDSA") | {"kid": kid}), ring="access")


@pytest.mark.parametrize("kid", [None, 7, ["a"]])
def test_non_string_kid_is_refused(kid: object) -> None:
    with pytest.raises(ConfigError, match="needs a kid"):
        load_jwks(jwks(generate_jwk("EdDSA") | {"kid": kid}), ring="access")


def test_missing_kid_is_refused() -> None:
    jwk = generate_jwk("EdDSA")
    del jwk["kid"]
    with pytest.raises(ConfigError, match="needs a kid"):
        load_jwks(jwks(jwk), ring="access")


def test_duplicate_kid_is_refused() -> None:
    with pytest.raises(ConfigError, match="access key ring: duplicate kid 'k1'"):
        load_jwks(jwks(generate_jwk("EdDSA", "k1"), generate_jwk("ES256", "k1")), ring="access")


def test_key_policy_refusal_names_ring_and_kid() -> None:
    with pytest.raises(ConfigError, match=r"^refresh key ring, kid 'k9': alg 'none'"):
        load_jwks(jwks(generate_jwk("EdDSA", "k9") | {"alg": "none"}), ring="refresh")


# --- document shape -----------------------------------------------------------------------------


@pytest.mark.parametrize("doc", ['{"keys": []}', "{}", '{"keys": {}}', '{"keys": "x"}'])
def test_empty_or_missing_keys_array_is_refused(doc: str) -> None:
    with pytest.raises(ConfigError, match='non-empty "keys" array'):
        load_jwks(doc, ring="access")


def test_key_ring_without_keys_is_refused() -> None:
    with pytest.raises(ConfigError, match="access key ring: no keys"):
        KeyRing("access", [])


@pytest.mark.parametrize("entry", ['"x"', "1", "[]", "null"])
def test_non_object_key_entry_is_refused(entry: str) -> None:
    with pytest.raises(ConfigError, match="must be a JSON object"):
        load_jwks('{"keys": [' + entry + "]}", ring="access")


def test_jwks_with_duplicate_member_is_refused() -> None:
    with pytest.raises(ConfigError, match="not a strict JSON object"):
        load_jwks('{"keys": [], "keys": []}', ring="access")


def test_jwks_invalid_json_is_refused_without_echoing_it() -> None:
    secret = generate_jwk("HS256", "k1")["k"]
    with pytest.raises(ConfigError) as info:
        load_jwks('{"keys": [{"k": "' + secret + '",]}', ring="access")
    assert secret not in str(info.value)


def test_unusable_key_material_is_refused() -> None:
    jwk = generate_jwk("ES256", "k1") | {"x": "AAAA"}
    with pytest.raises(ConfigError, match=r"kid 'k1': unusable key") as info:
        load_jwks(jwks(jwk), ring="access")
    assert jwk["d"] not in str(info.value)


def test_non_string_private_member_is_refused() -> None:
    with pytest.raises(ConfigError, match="unusable key"):
        load_jwks(jwks(generate_jwk("EdDSA", "k1") | {"d": ["x"]}), ring="access")


# --- path vs inline -----------------------------------------------------------------------------


def test_inline_jwks_loads() -> None:
    ring = load_jwks(jwks(generate_jwk("EdDSA", "k1")), ring="access")
    assert ring.name == "access"
    assert list(ring.keys) == ["k1"]


def test_inline_jwks_with_surrounding_whitespace_loads() -> None:
    assert load_jwks("\n  " + jwks(generate_jwk("EdDSA", "k1")) + "\n", ring="access").get("k1")


def test_jwks_file_path_loads(tmp_path: Path) -> None:
    path = tmp_path / "access.jwks.json"
    path.write_text(jwks(generate_jwk("ES256", "file-key")), encoding="utf-8")
    assert list(load_jwks(str(path), ring="access").keys) == ["file-key"]


def test_missing_jwks_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read JWKS file: No such file"):
        load_jwks(str(tmp_path / "missing.json"), ring="access")


def test_directory_as_jwks_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read JWKS file"):
        load_jwks(str(tmp_path), ring="access")


def test_jwks_file_with_invalid_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(b'{"keys": ["\xff"]}')
    with pytest.raises(ConfigError, match="cannot read JWKS file"):
        load_jwks(str(path), ring="access")


def test_jwks_path_with_nul_byte_is_refused() -> None:
    with pytest.raises(ConfigError, match="cannot read JWKS file"):
        load_jwks("keys\x00.json", ring="access")


def test_pem_given_instead_of_jwks_is_refused_without_echoing_it() -> None:
    pem = (
        "-----BEGIN PRIVATE KEY-----\n"
        "MC4CAQAwBQYDK2VwBCIEIGV4YW1wbGVleGFtcGxl\n"
        "-----END PRIVATE KEY-----"
    )
    with pytest.raises(ConfigError, match="cannot read JWKS file") as info:
        load_jwks(pem, ring="access")
    assert "MC4CAQAw" not in str(info.value)


# --- the active signing key ---------------------------------------------------------------------


def test_active_key_is_the_first_private_key() -> None:
    ring = load_jwks(jwks(generate_jwk("EdDSA", "new"), generate_jwk("EdDSA", "old")), ring="a")
    assert ring.active is not None
    assert ring.active.kid == "new"
    assert ring.signing_key() is ring.active


def test_public_keys_before_the_private_one_do_not_sign() -> None:
    doc = jwks(public(generate_jwk("EdDSA", "pub")), generate_jwk("EdDSA", "priv"))
    assert load_jwks(doc, ring="access").signing_key().kid == "priv"


def test_private_key_with_verify_only_key_ops_does_not_sign() -> None:
    first = generate_jwk("EdDSA", "retired") | {"key_ops": ["verify"]}
    ring = load_jwks(jwks(first, generate_jwk("EdDSA", "current")), ring="access")
    assert ring.signing_key().kid == "current"
    assert ring.keys["retired"].signing_key is None


def test_hs256_key_with_verify_only_key_ops_does_not_sign() -> None:
    ring = load_jwks(jwks(generate_jwk("HS256", "h1") | {"key_ops": ["verify"]}), ring="access")
    assert ring.active is None


def test_public_only_ring_verifies_but_cannot_sign() -> None:
    ring = load_jwks(jwks(public(generate_jwk("EdDSA", "p1"))), ring="access")
    assert ring.active is None
    with pytest.raises(ConfigError, match="access key ring has no private key"):
        ring.signing_key()


def test_verification_only_key_refuses_to_sign() -> None:
    ring = load_jwks(jwks(public(generate_jwk("EdDSA", "p1"))), ring="access")
    with pytest.raises(ConfigError, match="'p1' holds no private material"):
        ring.keys["p1"].sign(access_payload(), "at+jwt")


def test_get_unknown_kid_is_none() -> None:
    ring = load_jwks(jwks(generate_jwk("EdDSA", "k1")), ring="access")
    assert ring.get("k2") is None


# --- signing and verifying ----------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "HS256"])
def test_key_verifies_its_own_signature_and_not_a_changed_one(alg: str) -> None:
    key = load_jwks(jwks(generate_jwk(alg, "k1")), ring="access").signing_key()
    header, payload, signature = key.sign(access_payload(), "at+jwt").split(".")
    signing_input = f"{header}.{payload}".encode()
    assert key.verify(signing_input, b64url_decode(signature))
    assert not key.verify(signing_input + b"x", b64url_decode(signature))


@pytest.mark.parametrize("signature", [b"", b"\x00", b"\x00" * 64, b"\xff" * 1000])
def test_key_verify_returns_false_for_garbage(signature: bytes) -> None:
    key = load_jwks(jwks(generate_jwk("ES256", "k1")), ring="access").signing_key()
    assert key.verify(b"a.b", signature) is False


def test_signed_header_names_alg_kid_and_typ() -> None:
    key = load_jwks(jwks(generate_jwk("ES256", "k1")), ring="access").signing_key()
    header = jwt.get_unverified_header(key.sign(access_payload(), "at+jwt"))
    assert header == {"alg": "ES256", "kid": "k1", "typ": "at+jwt"}


def test_rotation_ring_verifies_old_and_new_tokens_and_signs_with_new(settings: Settings) -> None:
    old, new = generate_jwk("EdDSA", "2025-old"), generate_jwk("EdDSA", "2026-new")
    old_key = load_jwks(jwks(old), ring="access").signing_key()
    old_token = old_key.sign(access_payload(), "at+jwt")

    rotated = load_jwks(jwks(new, old | {"key_ops": ["verify"]}), ring="access")
    new_token = rotated.signing_key().sign(access_payload(), "at+jwt")
    validator = Validator(settings, keys=rotated, clock=ManualClock())

    assert rotated.signing_key().kid == "2026-new"
    assert validator.validate(old_token)["jti"] != validator.validate(new_token)["jti"]


def test_token_of_a_key_removed_from_the_ring_is_unknown(settings: Settings) -> None:
    retired = load_jwks(jwks(generate_jwk("EdDSA", "gone")), ring="access").signing_key()
    ring = load_jwks(jwks(generate_jwk("EdDSA", "current")), ring="access")
    with pytest.raises(TokenRejected) as info:
        Validator(settings, keys=ring, clock=ManualClock()).validate(
            retired.sign(access_payload(), "at+jwt")
        )
    assert info.value.reason == "unknown_key"


# --- public JWKS --------------------------------------------------------------------------------


def test_public_jwks_has_no_private_members(rsa_jwk: dict[str, Any]) -> None:
    ring = load_jwks(
        jwks(generate_jwk("EdDSA", "ed"), generate_jwk("ES256", "ec"), rsa_jwk), ring="access"
    )
    published = ring.public_jwks()["keys"]
    assert [k["kid"] for k in published] == ["ed", "ec", "rsa-1"]
    for jwk in published:
        assert not PRIVATE_MEMBERS & jwk.keys()
        assert jwk["use"] == "sig"
    assert {k["alg"] for k in published} == {"EdDSA", "ES256", "RS256"}


def test_public_jwks_leaves_out_hs256_secrets() -> None:
    hs = generate_jwk("HS256", "hs")
    ring = load_jwks(jwks(hs, generate_jwk("EdDSA", "ed")), ring="access")
    text = json.dumps(ring.public_jwks())
    assert [k["kid"] for k in ring.public_jwks()["keys"]] == ["ed"]
    assert hs["k"] not in text


def test_public_jwks_loads_as_a_verify_only_ring() -> None:
    ring = load_jwks(jwks(generate_jwk("ES256", "ec")), ring="access")
    again = load_jwks(json.dumps(ring.public_jwks()), ring="access")
    assert again.active is None
    assert again.keys["ec"].thumbprint == ring.keys["ec"].thumbprint


def test_reprs_hold_no_key_material() -> None:
    hs, ed = generate_jwk("HS256", "hs"), generate_jwk("EdDSA", "ed")
    ring = load_jwks(jwks(hs, ed), ring="access")
    text = repr(ring) + repr(ring.keys["hs"]) + repr(ring.keys["ed"])
    assert hs["k"] not in text
    assert ed["d"] not in text
    assert repr(ring.keys["hs"]) == "Key(kid='hs', alg='HS256', signs=True)"


# --- check_disjoint -----------------------------------------------------------------------------


def test_disjoint_rings_pass() -> None:
    access = load_jwks(jwks(generate_jwk("EdDSA", "a1")), ring="access")
    refresh = load_jwks(jwks(generate_jwk("EdDSA", "r1")), ring="refresh")
    check_disjoint(access, refresh)


def test_rings_sharing_a_kid_are_refused() -> None:
    access = load_jwks(jwks(generate_jwk("EdDSA", "k1")), ring="access")
    refresh = load_jwks(jwks(generate_jwk("EdDSA", "k1")), ring="refresh")
    with pytest.raises(ConfigError, match=r"share kid\(s\) \['k1'\]"):
        check_disjoint(access, refresh)


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "HS256"])
def test_rings_sharing_key_material_under_other_kids_are_refused(alg: str) -> None:
    jwk = generate_jwk(alg, "a1")
    access = load_jwks(jwks(jwk), ring="access")
    refresh = load_jwks(jwks(jwk | {"kid": "r1"}), ring="refresh")
    with pytest.raises(ConfigError, match="'r1' has the same key material") as info:
        check_disjoint(access, refresh)
    assert jwk.get("k", jwk.get("d")) not in str(info.value)


def test_public_copy_of_an_access_key_in_the_refresh_ring_is_refused() -> None:
    jwk = generate_jwk("EdDSA", "a1")
    access = load_jwks(jwks(jwk), ring="access")
    refresh = load_jwks(jwks(public(jwk) | {"kid": "r1"}), ring="refresh")
    with pytest.raises(ConfigError, match="same key material"):
        check_disjoint(access, refresh)


def test_shared_material_deep_in_the_ring_is_refused() -> None:
    shared = generate_jwk("ES256", "a2")
    access = load_jwks(jwks(generate_jwk("EdDSA", "a1"), shared), ring="access")
    refresh = load_jwks(jwks(generate_jwk("EdDSA", "r1"), shared | {"kid": "r2"}), ring="refresh")
    with pytest.raises(ConfigError, match="'r2'"):
        check_disjoint(access, refresh)
