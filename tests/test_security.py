"""sessionsvc.tokens.verify through the public ``Validator``: one test per attack, each asserting
the exact ``TokenRejected.reason``.

Most hostile tokens here carry a *valid* signature made with the real access key, so a rejection
proves that the rule under test fired, not merely that the signature broke. The check order that
decides which reason a token with several faults gets is documented in
``sessionsvc.tokens.verify`` and ``sessionsvc.tokens.claims``;
``test_first_failing_check_decides_the_reason`` pins it.

Fixtures: header, structure and claims tests use conftest's single-algorithm ``validator`` and
``access_key`` (EdDSA; tokens from ``tokens_harness``). Only signature-layer tests (alg pinning
and confusion, tampered signatures, foreign keys) run per algorithm: ``alg_validator`` and
``alg_key`` over EdDSA and HS256, and their own ES256 and public-key/HMAC settings. The rule
tables of the claims layer are in ``test_claims.py``; here each claims rule is reached once
through the validator.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import pytest
from conftest import AUDIENCE, ISSUER, NOW, ManualClock, make_settings
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from tokens_harness import (
    DROP,
    TYP,
    b64,
    claims,
    claims_with_raw,
    dumps,
    header_for,
    jws,
    reason,
    sign_segments,
    token_for,
)

import sessionsvc.tokens.verify
from sessionsvc import (
    REASONS,
    Key,
    Revocation,
    Settings,
    TokenIssuer,
    Validator,
    generate_jwks,
    load_jwks,
)
from sessionsvc.tokens.claims import ACCESS_CLAIMS

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

# --- helpers --------------------------------------------------------------------------------------


def unaligned(data: bytes) -> bytes:
    """``data`` with trailing JSON whitespace so that its base64url needs padding (4 spare bits)."""
    return data + b" " * ((1 - len(data)) % 3)


def noncanonical(segment: str) -> str:
    """``segment`` with non-zero unused low bits in its last character: same bytes when decoded
    leniently, so a lenient decoder would accept it (the signature still verifies)."""
    assert len(segment) % 4 in (2, 3)
    last = B64_ALPHABET.index(segment[-1])
    assert last & 1 == 0
    mutated = segment[:-1] + B64_ALPHABET[last | 1]
    lenient = base64.urlsafe_b64decode(mutated + "=" * (-len(mutated) % 4))
    assert lenient == base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    return mutated


def private_key(settings: Settings, ring: str = "access") -> Key:
    source = settings.access_jwks if ring == "access" else settings.refresh_jwks
    assert source is not None
    return load_jwks(source.get_secret_value(), ring=ring).signing_key()


def attacker_key(alg: str, kid: str) -> Key:
    """A key of the same algorithm that is not ours, named with ``kid``."""
    return load_jwks(json.dumps(generate_jwks(alg, kid)), ring="attacker").signing_key()


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["EdDSA", "HS256"])
def alg_settings(request: pytest.FixtureRequest) -> Settings:
    """Settings per algorithm, for the signature-layer tests only."""
    return make_settings(request.param)


@pytest.fixture
def alg_key(alg_settings: Settings) -> Key:
    return private_key(alg_settings)


@pytest.fixture
def alg_validator(alg_settings: Settings, clock: ManualClock) -> Validator:
    return Validator(alg_settings, clock=clock)


@pytest.fixture
def key(access_key: Key) -> Key:
    """The one access key (EdDSA) of conftest's ``settings``, which ``validator`` trusts."""
    return access_key


@pytest.fixture(scope="module")
def es256_settings() -> Settings:
    return make_settings("ES256")


@pytest.fixture(scope="module", params=["EdDSA", "ES256", "RS256"])
def asym_settings(request: pytest.FixtureRequest) -> Settings:
    return make_settings(request.param)


# --- baseline: the helpers build tokens the validator accepts ------------------------------------


def test_baseline_token_is_accepted(alg_validator: Validator, alg_key: Key) -> None:
    assert alg_validator.validate(token_for(alg_key))["sub"] == "alice"


def test_baseline_helper_signs_like_key_sign(alg_validator: Validator, alg_key: Key) -> None:
    assert alg_validator.validate(alg_key.sign(claims(), TYP))["jti"] == "jti-1"


def test_baseline_es256_token_is_accepted(es256_settings: Settings, clock: ManualClock) -> None:
    key = private_key(es256_settings)
    assert Validator(es256_settings, clock=clock).validate(token_for(key))["sub"] == "alice"


# --- alg: none, other algorithms, confusion ------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize("signature", ["empty", "real"])
@pytest.mark.parametrize("with_kid", [True, False], ids=["our-kid", "no-kid"])
def test_alg_none_is_not_allowed(
    alg_validator: Validator, alg_key: Key, alg: str, signature: str, with_kid: bool
) -> None:
    header = header_for(alg_key, alg=alg, kid=alg_key.kid if with_kid else DROP)
    token = jws(header, claims(), alg_key)  # "real": a valid signature of our key over these bytes
    if signature == "empty":
        token = token.rsplit(".", 1)[0] + "."
    assert reason(alg_validator, token) == "alg_not_allowed"


@pytest.mark.parametrize(
    "alg",
    [
        "HS384",
        "HS512",
        "RS256",
        "ES256",
        "PS256",
        "ES256K",
        "Ed25519",
        "Ed448",
        "eddsa",
        "hs256",
        "EdDSA ",
        "",
        "none ",
    ],
)
def test_header_alg_other_than_the_keys_is_not_allowed(
    alg_validator: Validator, alg_key: Key, alg: str
) -> None:
    assert (
        reason(alg_validator, jws(header_for(alg_key, alg=alg), claims(), alg_key))
        == "alg_not_allowed"
    )


def test_header_alg_of_our_other_supported_family_is_not_allowed(
    alg_validator: Validator, alg_key: Key
) -> None:
    other = "HS256" if alg_key.alg == "EdDSA" else "EdDSA"
    assert (
        reason(alg_validator, jws(header_for(alg_key, alg=other), claims(), alg_key))
        == "alg_not_allowed"
    )


@pytest.mark.parametrize(
    "alg",
    [DROP, None, 1, ["EdDSA"], {"alg": "EdDSA"}, True],
    ids=["missing", "null", "int", "list", "object", "bool"],
)
def test_header_alg_that_is_not_a_string_is_malformed(
    validator: Validator, key: Key, alg: object
) -> None:
    assert reason(validator, jws(header_for(key, alg=alg), claims(), key)) == "malformed"


def _public_key_forms(key: Key) -> dict[str, bytes]:
    """Our public key as an attacker would feed it to HMAC: PEM, DER, JWK JSON, JWKS JSON."""
    pub = key.verify_key
    pem = pub.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    der = pub.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    jwk = dict(key.public_jwk or {})
    return {
        "pem": pem,
        "pem-stripped": pem.strip(),
        "der": der,
        "jwk-json": json.dumps(jwk).encode(),
        "jwk-json-compact": dumps(jwk),
        "jwks-json": dumps({"keys": [jwk]}),
    }


PUBLIC_KEY_FORMS = ["pem", "pem-stripped", "der", "jwk-json", "jwk-json-compact", "jwks-json"]


def _hs256_with_public_key(key: Key, form: str, kid: object) -> tuple[str, bytes, bytes]:
    """A token whose HS256 MAC is keyed with our public key; also its signing input and MAC."""
    header = {"alg": "HS256", "kid": kid, "typ": TYP}
    signing_input = f"{b64(dumps(header))}.{b64(dumps(claims()))}".encode()
    mac = hmac.new(_public_key_forms(key)[form], signing_input, hashlib.sha256).digest()
    return f"{signing_input.decode()}.{b64(mac)}", signing_input, mac


@pytest.mark.parametrize("form", PUBLIC_KEY_FORMS)
def test_hs256_keyed_with_our_public_key_is_not_allowed(
    asym_settings: Settings, clock: ManualClock, form: str
) -> None:
    key = private_key(asym_settings)
    token, _, _ = _hs256_with_public_key(key, form, key.kid)
    assert reason(Validator(asym_settings, clock=clock), token) == "alg_not_allowed"


@pytest.mark.parametrize("form", PUBLIC_KEY_FORMS)
def test_hs256_keyed_with_our_public_key_and_unknown_kid_is_unknown_key(
    asym_settings: Settings, clock: ManualClock, form: str
) -> None:
    key = private_key(asym_settings)
    token, _, _ = _hs256_with_public_key(key, form, "hmac-key")
    assert reason(Validator(asym_settings, clock=clock), token) == "unknown_key"


@pytest.mark.parametrize("form", PUBLIC_KEY_FORMS)
def test_hs256_mac_with_our_public_key_fails_our_pinned_algorithm(
    asym_settings: Settings, form: str
) -> None:
    # Defence in depth: even past the header check, the key only runs its own algorithm.
    key = private_key(asym_settings)
    _, signing_input, mac = _hs256_with_public_key(key, form, key.kid)
    assert key.verify(signing_input, mac) is False


# --- forbidden header members --------------------------------------------------------------------

FORBIDDEN_MEMBERS: dict[str, Any] = {
    "jwk": {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
    "jku": "https://attacker.example/jwks.json",
    "x5u": "https://attacker.example/cert.pem",
    "x5c": ["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"],
    "x5t": "dGhpcyBpcyBub3QgYSB0aHVtYnByaW50",
    "x5t#S256": "dGhpcyBpcyBub3QgYSB0aHVtYnByaW50IGVpdGhlcg",
    "crit": ["exp"],
    "zip": "DEF",
    "cty": "JWT",
    "b64": False,
    "enc": "A256GCM",
    "nonce": "n-0S6_WzA2Mj",
    "": "empty member name",
}


@pytest.mark.parametrize(
    ("member", "value"), FORBIDDEN_MEMBERS.items(), ids=list(FORBIDDEN_MEMBERS)
)
def test_forbidden_header_member_is_rejected(
    validator: Validator, key: Key, member: str, value: Any
) -> None:
    token = jws(header_for(key, **{member: value}), claims(), key)
    assert reason(validator, token) == "forbidden_header"


def test_empty_crit_is_still_forbidden(validator: Validator, key: Key) -> None:
    assert reason(validator, jws(header_for(key, crit=[]), claims(), key)) == "forbidden_header"


def test_embedded_jwk_of_the_attackers_signing_key_is_forbidden(
    alg_validator: Validator, alg_key: Key
) -> None:
    # CVE-2018-0114 style: the attacker signs with their own key and ships it in the header.
    evil = attacker_key(alg_key.alg, alg_key.kid)
    evil_jwk = evil.public_jwk or {"kty": "oct", "k": b64(evil.signing_key)}
    token = jws(header_for(alg_key, jwk=dict(evil_jwk)), claims(), evil)
    assert reason(alg_validator, token) == "forbidden_header"


# --- kid -----------------------------------------------------------------------------------------

HOSTILE_KIDS = {
    "unknown": "no-such-key",
    "path-traversal": "../../etc/passwd",
    "absolute-path": "/dev/null",
    "sql": "' OR 1=1--",
    "url": "https://attacker.example/key.pem",
    "empty": "",
    "ours-with-nul": "{kid}\x00",
    "ours-with-space": "{kid} ",
    "ours-upper-case": "{KID}",
    "ours-with-traversal": "../{kid}",
}


@pytest.mark.parametrize("kid", HOSTILE_KIDS.values(), ids=list(HOSTILE_KIDS))
def test_hostile_kid_is_unknown_key(validator: Validator, key: Key, kid: str) -> None:
    kid = kid.replace("{kid}", key.kid).replace("{KID}", key.kid.upper())
    assert reason(validator, jws(header_for(key, kid=kid), claims(), key)) == "unknown_key"


@pytest.mark.parametrize("kid", [DROP, None], ids=["missing", "null"])
def test_absent_kid_is_unknown_key(validator: Validator, key: Key, kid: object) -> None:
    assert reason(validator, jws(header_for(key, kid=kid), claims(), key)) == "unknown_key"


@pytest.mark.parametrize(
    "kid",
    [1, 1.5, True, ["access-EdDSA"], {"kid": "access-EdDSA"}],
    ids=["int", "float", "bool", "list", "object"],
)
def test_non_string_kid_is_malformed(validator: Validator, key: Key, kid: object) -> None:
    assert reason(validator, jws(header_for(key, kid=kid), claims(), key)) == "malformed"


def test_10kb_kid_is_too_large_under_the_default_cap(validator: Validator, key: Key) -> None:
    token = jws(header_for(key, kid="A" * 10240), claims(), key)
    assert reason(validator, token) == "too_large"


def test_10kb_kid_is_unknown_key_under_a_raised_cap(
    settings: Settings, key: Key, clock: ManualClock
) -> None:
    roomy = Validator(settings.model_copy(update={"max_token_size": 65536}), clock=clock)
    token = jws(header_for(key, kid="A" * 10240), claims(), key)
    assert reason(roomy, token) == "unknown_key"


def test_refresh_key_cannot_sign_access_tokens(
    alg_validator: Validator, alg_settings: Settings
) -> None:
    refresh_key = private_key(alg_settings, ring="refresh")
    assert reason(alg_validator, token_for(refresh_key)) == "unknown_key"


# --- signature -----------------------------------------------------------------------------------


def _with_signature(token: str, signature: bytes | str) -> str:
    encoded = signature if isinstance(signature, str) else b64(signature)
    return token.rsplit(".", 1)[0] + "." + encoded


def _signature(token: str) -> bytes:
    segment = token.rsplit(".", 1)[1]
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


SIGNATURE_MUTATIONS: dict[str, Callable[[bytes], bytes | str]] = {
    "empty": lambda sig: "",
    "truncated": lambda sig: sig[:-1],
    "extended": lambda sig: sig + b"\x00",
    "doubled": lambda sig: sig + sig,
    "zeros": lambda sig: bytes(len(sig)),
    "bit-flip-first": lambda sig: bytes([sig[0] ^ 1]) + sig[1:],
    "bit-flip-last": lambda sig: sig[:-1] + bytes([sig[-1] ^ 0x80]),
}


@pytest.mark.parametrize("mutation", SIGNATURE_MUTATIONS.values(), ids=list(SIGNATURE_MUTATIONS))
def test_broken_signature_is_bad_signature(
    alg_validator: Validator, alg_key: Key, mutation: Callable[[bytes], bytes | str]
) -> None:
    token = token_for(alg_key)
    assert (
        reason(alg_validator, _with_signature(token, mutation(_signature(token))))
        == "bad_signature"
    )


def test_stripped_signature_and_separator_is_malformed(validator: Validator, key: Key) -> None:
    assert reason(validator, token_for(key).rsplit(".", 1)[0]) == "malformed"


def test_signature_of_another_key_with_our_kid_is_bad_signature(
    alg_validator: Validator, alg_key: Key
) -> None:
    assert (
        reason(alg_validator, token_for(attacker_key(alg_key.alg, alg_key.kid))) == "bad_signature"
    )


def test_signature_transplanted_from_another_token_is_bad_signature(
    alg_validator: Validator, alg_key: Key
) -> None:
    donor = token_for(alg_key, sub="mallory")
    token = _with_signature(token_for(alg_key, sub="admin"), _signature(donor))
    assert reason(alg_validator, token) == "bad_signature"


def test_tampered_payload_is_bad_signature(alg_validator: Validator, alg_key: Key) -> None:
    header, _, signature = token_for(alg_key).split(".")
    payload = b64(dumps(claims(sub="admin")))
    assert reason(alg_validator, f"{header}.{payload}.{signature}") == "bad_signature"


def test_tampered_header_bytes_are_bad_signature(alg_validator: Validator, alg_key: Key) -> None:
    # Same header meaning, other bytes: the signature covers the bytes, not the JSON value.
    _, payload, signature = token_for(alg_key).split(".")
    header = b64(json.dumps(header_for(alg_key)).encode())  # with spaces after ':' and ','
    assert reason(alg_validator, f"{header}.{payload}.{signature}") == "bad_signature"


def _es256_raw(r: int, s: int) -> bytes:
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


ES256_SIGNATURES: dict[str, Callable[[bytes], bytes]] = {
    "r=s=0": lambda sig: _es256_raw(0, 0),
    "r=s=n": lambda sig: _es256_raw(P256_ORDER, P256_ORDER),
    "r=0,s=real": lambda sig: bytes(32) + sig[32:],
    "r=real,s=0": lambda sig: sig[:32] + bytes(32),
    "r=n,s=real": lambda sig: P256_ORDER.to_bytes(32, "big") + sig[32:],
    "r=real,s=n": lambda sig: sig[:32] + P256_ORDER.to_bytes(32, "big"),
    "r=s=1": lambda sig: _es256_raw(1, 1),
    "r=s=n-1": lambda sig: _es256_raw(P256_ORDER - 1, P256_ORDER - 1),
    "der-encoded": lambda sig: encode_dss_signature(
        int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
    ),
}


@pytest.mark.parametrize("make", ES256_SIGNATURES.values(), ids=list(ES256_SIGNATURES))
def test_es256_special_signature_is_bad_signature(
    es256_settings: Settings, clock: ManualClock, make: Callable[[bytes], bytes]
) -> None:
    key = private_key(es256_settings)
    token = token_for(key)
    forged = _with_signature(token, make(_signature(token)))
    assert reason(Validator(es256_settings, clock=clock), forged) == "bad_signature"


# --- structure: segments, base64url, encoding -----------------------------------------------------

SEGMENT_FORMS: dict[str, Callable[[str], str]] = {
    "empty-string": lambda t: "",
    "one-segment": lambda t: t.split(".")[0],
    "two-segments": lambda t: t.rsplit(".", 1)[0],
    "four-segments-empty": lambda t: t + ".",
    "four-segments": lambda t: t + ".e30",
    "five-segments": lambda t: t + ".e30.e30",
    "dots-only": lambda t: "..",
    "json-serialization": lambda t: json.dumps(
        dict(zip(("protected", "payload", "signature"), t.split("."), strict=True))
    ),
}


@pytest.mark.parametrize("form", SEGMENT_FORMS.values(), ids=list(SEGMENT_FORMS))
def test_wrong_segment_structure_is_malformed(
    validator: Validator, key: Key, form: Callable[[str], str]
) -> None:
    assert reason(validator, form(token_for(key))) == "malformed"


def _signed_with_segment(key: Key, index: int, mutate: Callable[[str], str]) -> str:
    """A token whose segment ``index`` is mutated; header/payload mutations are re-signed so the
    signature is valid over the hostile bytes and only the strict decoder can object."""
    header = b64(unaligned(dumps(header_for(key))))
    payload = b64(unaligned(dumps(claims())))
    if index == 0:
        return sign_segments(mutate(header), payload, key)
    if index == 1:
        return sign_segments(header, mutate(payload), key)
    h, p, s = sign_segments(header, payload, key).split(".")
    return f"{h}.{p}.{mutate(s)}"


SEGMENTS = {"header": 0, "payload": 1, "signature": 2}


@pytest.mark.parametrize("index", SEGMENTS.values(), ids=list(SEGMENTS))
def test_padded_segment_is_malformed(validator: Validator, key: Key, index: int) -> None:
    def pad(segment: str) -> str:
        assert len(segment) % 4  # the unpadded form is shorter, so this is real padding
        return segment + "=" * (-len(segment) % 4)

    assert reason(validator, _signed_with_segment(key, index, pad)) == "malformed"


@pytest.mark.parametrize("index", SEGMENTS.values(), ids=list(SEGMENTS))
def test_stray_padding_character_is_malformed(validator: Validator, key: Key, index: int) -> None:
    token = _signed_with_segment(key, index, lambda s: s + "=")
    assert reason(validator, token) == "malformed"


@pytest.mark.parametrize("index", SEGMENTS.values(), ids=list(SEGMENTS))
def test_noncanonical_last_character_is_malformed(
    validator: Validator, key: Key, index: int
) -> None:
    assert reason(validator, _signed_with_segment(key, index, noncanonical)) == "malformed"


def _to_standard_alphabet(segment: str) -> str:
    standard = segment.replace("-", "+").replace("_", "/")
    assert standard != segment
    return standard


def test_standard_alphabet_in_payload_is_malformed(validator: Validator, key: Key) -> None:
    # '>>>' encodes to 'Pj4-' and '???' to 'Pz8_': five of each always hold an aligned triple.
    header = b64(dumps(header_for(key)))
    payload = b64(dumps(claims(scope=">>>>>?????")))
    token = sign_segments(header, _to_standard_alphabet(payload), key)
    assert reason(validator, token) == "malformed"


def test_standard_alphabet_in_signature_is_malformed(validator: Validator, key: Key) -> None:
    token = next(
        t
        for t in (token_for(key, jti=f"jti-{i}") for i in range(200))
        if {"-", "_"} & set(t.rsplit(".", 1)[1])
    )
    h, p, s = token.split(".")
    assert reason(validator, f"{h}.{p}.{_to_standard_alphabet(s)}") == "malformed"


WHITESPACE_FORMS: dict[str, Callable[[str], str]] = {
    "leading-space": lambda t: " " + t,
    "trailing-newline": lambda t: t + "\n",
    "trailing-crlf": lambda t: t + "\r\n",
    "space-after-dot": lambda t: t.replace(".", ". ", 1),
    "tab-in-header": lambda t: t[:5] + "\t" + t[5:],
    "newline-in-signature": lambda t: t[:-10] + "\n" + t[-10:],
    "nbsp-in-payload": lambda t: t.replace(".", ".\u00a0", 1),
}


@pytest.mark.parametrize("form", WHITESPACE_FORMS.values(), ids=list(WHITESPACE_FORMS))
def test_whitespace_in_token_is_malformed(
    validator: Validator, key: Key, form: Callable[[str], str]
) -> None:
    assert reason(validator, form(token_for(key))) == "malformed"


def test_whitespace_inside_a_signed_segment_is_malformed(validator: Validator, key: Key) -> None:
    payload = b64(dumps(claims()))
    token = sign_segments(b64(dumps(header_for(key))), payload[:8] + " " + payload[8:], key)
    assert reason(validator, token) == "malformed"


@pytest.mark.parametrize(
    "char",
    ["\u00e9", "\uff10", "\u0660", "\U0001d400", "\ud800"],
    ids=["e-acute", "fullwidth-0", "arabic-0", "math-A", "lone-surrogate"],
)
def test_non_ascii_character_is_malformed(validator: Validator, key: Key, char: str) -> None:
    token = token_for(key)
    assert reason(validator, token[:10] + char + token[11:]) == "malformed"


@pytest.mark.parametrize(
    "token",
    [None, 123, 1.5, ["a.b.c"], {"a": 1}, bytearray(b"a.b.c")],
    ids=["none", "int", "float", "list", "dict", "bytearray"],
)
def test_non_string_token_is_malformed(validator: Validator, token: object) -> None:
    assert reason(validator, token) == "malformed"


# --- strict JSON (valid signatures over hostile JSON) --------------------------------------------


DUPLICATE_HEADERS: dict[str, Callable[[Key], bytes]] = {
    "alg-then-none": lambda k: (
        dumps({"alg": k.alg})[:-1]
        + b',"alg":"none","kid":"'
        + k.kid.encode()
        + b'","typ":"at+jwt"}'
    ),
    "none-then-alg": lambda k: b'{"alg":"none",' + dumps(header_for(k))[1:],
    "kid": lambda k: dumps(header_for(k))[:-1] + b',"kid":"other"}',
    "typ": lambda k: dumps(header_for(k))[:-1] + b',"typ":"JWT"}',
    "escaped-name": lambda k: dumps(header_for(k))[:-1] + b',"\\u0074yp":"at+jwt"}',
}


@pytest.mark.parametrize("make", DUPLICATE_HEADERS.values(), ids=list(DUPLICATE_HEADERS))
def test_duplicate_header_member_is_malformed(
    validator: Validator, key: Key, make: Callable[[Key], bytes]
) -> None:
    assert reason(validator, jws(make(key), claims(), key)) == "malformed"


DUPLICATE_CLAIMS = {
    "sub": b',"sub":"admin"}',
    "exp": b',"exp":4102444800}',
    "iss": b',"iss":"https://evil.example"}',
    "aud": b',"aud":"other"}',
    "escaped-sub": b',"\\u0073ub":"admin"}',
    "same-value": b',"jti":"jti-1"}',
}


@pytest.mark.parametrize("suffix", DUPLICATE_CLAIMS.values(), ids=list(DUPLICATE_CLAIMS))
def test_duplicate_claim_is_malformed(validator: Validator, key: Key, suffix: bytes) -> None:
    payload = dumps(claims())[:-1] + suffix
    assert reason(validator, jws(header_for(key), payload, key)) == "malformed"


NOT_AN_OBJECT = {
    "empty": b"",
    "array": b"[]",
    "string": b'"x"',
    "number": b"1",
    "null": b"null",
    "two-objects": b"{}{}",
    "trailing-garbage": b"{}x",
    "bom": b"\xef\xbb\xbf{}",
    "invalid-utf8": b'{"a":"\xff"}',
    "lone-continuation": b'{"a":"\x80"}',
    "comment": b"{/* hi */}",
    "single-quotes": b"{'a':1}",
    "trailing-comma": b'{"a":1,}',
    "deep-nesting": b'{"a":' + b"[" * 2000 + b"]" * 2000 + b"}",
}


@pytest.mark.parametrize("raw", NOT_AN_OBJECT.values(), ids=list(NOT_AN_OBJECT))
def test_header_that_is_not_a_strict_json_object_is_malformed(
    validator: Validator, key: Key, raw: bytes
) -> None:
    assert reason(validator, jws(raw, claims(), key)) == "malformed"


@pytest.mark.parametrize("raw", NOT_AN_OBJECT.values(), ids=list(NOT_AN_OBJECT))
def test_payload_that_is_not_a_strict_json_object_is_malformed(
    validator: Validator, key: Key, raw: bytes
) -> None:
    assert reason(validator, jws(header_for(key), raw, key)) == "malformed"


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity", "1e400", "1" * 5000])
def test_non_json_number_in_an_app_claim_is_malformed(
    validator: Validator, key: Key, raw: str
) -> None:
    assert (
        reason(validator, jws(header_for(key), claims_with_raw("scope", raw), key)) == "malformed"
    )


# --- claim shapes --------------------------------------------------------------------------------

BAD_NUMERIC_DATES = {
    "string": '"1800000900"',
    "true": "true",
    "false": "false",
    "null": "null",
    "NaN": "NaN",
    "Infinity": "Infinity",
    "-Infinity": "-Infinity",
    "1e400": "1e400",
    "float": "1800000900.0",
    "fraction": "1800000900.5",
    "exponent": "1.8e9",
    "negative": "-1",
    "2**53": str(2**53),
    "4000-digit-integer": "9" * 4000,
    "5000-digit-integer": "9" * 5000,
    "array": "[1800000900]",
    "object": '{"t":1800000900}',
}


@pytest.mark.parametrize("raw", BAD_NUMERIC_DATES.values(), ids=list(BAD_NUMERIC_DATES))
def test_exp_in_json_that_is_not_an_integer_numeric_date_is_malformed(
    validator: Validator, key: Key, raw: str
) -> None:
    # The same shape rule applies to nbf and iat (test_claims.py checks each name).
    assert reason(validator, jws(header_for(key), claims_with_raw("exp", raw), key)) == "malformed"


@pytest.mark.parametrize("claim", ACCESS_CLAIMS)
def test_missing_required_claim_is_missing_claim(
    validator: Validator, key: Key, claim: str
) -> None:
    assert reason(validator, token_for(key, **{claim: DROP})) == "missing_claim"


def test_id_claim_of_the_wrong_shape_is_malformed(validator: Validator, key: Key) -> None:
    # One case through the validator; test_claims.py has the table for sub, sid and jti.
    assert reason(validator, token_for(key, sid="")) == "malformed"


# --- time window (leeway 30 s) -------------------------------------------------------------------


def test_expired_token_is_expired(validator: Validator, key: Key) -> None:
    assert reason(validator, token_for(key, iat=NOW - 3600, nbf=NOW - 3600, exp=NOW - 600)) == (
        "expired"
    )


def test_token_expired_just_outside_the_leeway_is_expired(
    validator: Validator, key: Key, settings: Settings
) -> None:
    exp = NOW - settings.leeway  # now == exp + leeway: no longer valid
    assert reason(validator, token_for(key, iat=exp - 900, nbf=exp - 900, exp=exp)) == "expired"


def test_token_expired_just_inside_the_leeway_is_accepted(
    validator: Validator, key: Key, settings: Settings
) -> None:
    exp = NOW - settings.leeway + 1
    assert validator.validate(token_for(key, iat=exp - 900, nbf=exp - 900, exp=exp))["exp"] == exp


def test_nbf_just_outside_the_leeway_is_not_yet_valid(
    validator: Validator, key: Key, settings: Settings
) -> None:
    assert reason(validator, token_for(key, nbf=NOW + settings.leeway + 1)) == "not_yet_valid"


def test_nbf_just_inside_the_leeway_is_accepted(
    validator: Validator, key: Key, settings: Settings
) -> None:
    nbf = NOW + settings.leeway
    assert validator.validate(token_for(key, nbf=nbf))["nbf"] == nbf


def test_iat_just_outside_the_leeway_is_issued_in_future(
    validator: Validator, key: Key, settings: Settings
) -> None:
    token = token_for(key, iat=NOW + settings.leeway + 1)
    assert reason(validator, token) == "issued_in_future"


def test_token_living_one_second_longer_than_access_ttl_is_bad_lifetime(
    validator: Validator, key: Key, settings: Settings
) -> None:
    # validly signed, not expired: exp − iat = access_ttl + 1 would outlive revocation entries
    token = token_for(key, exp=NOW + settings.access_ttl + 1)
    assert reason(validator, token) == "bad_lifetime"


def test_token_living_exactly_access_ttl_is_accepted(
    validator: Validator, key: Key, settings: Settings
) -> None:
    exp = NOW + settings.access_ttl
    assert validator.validate(token_for(key, exp=exp))["exp"] == exp


def test_long_lived_token_issued_long_ago_is_bad_lifetime(validator: Validator, key: Key) -> None:
    # a year-long token minted last month, with a signing key that leaked: refused although its
    # exp is far away and its iat is in the past
    iat = NOW - 30 * 86400
    token = token_for(key, iat=iat, nbf=iat, exp=iat + 365 * 86400)
    assert reason(validator, token) == "bad_lifetime"


def test_iat_just_inside_the_leeway_is_accepted(
    validator: Validator, key: Key, settings: Settings
) -> None:
    iat = NOW + settings.leeway
    assert validator.validate(token_for(key, iat=iat))["iat"] == iat


# --- iss, aud, typ -------------------------------------------------------------------------------


def test_iss_that_is_not_exactly_ours_is_bad_issuer(validator: Validator, key: Key) -> None:
    # One case through the validator; test_claims.py has the table of near-miss issuers.
    assert reason(validator, token_for(key, iss=ISSUER + "/")) == "bad_issuer"


def test_aud_that_does_not_name_us_is_bad_audience(validator: Validator, key: Key) -> None:
    # One case through the validator; test_claims.py has the table of near-miss audiences.
    assert reason(validator, token_for(key, aud=[AUDIENCE.upper()])) == "bad_audience"


@pytest.mark.parametrize(
    "aud", [[AUDIENCE], ["other.example.test", AUDIENCE]], ids=["ours-only", "ours-among-others"]
)
def test_aud_list_containing_ours_is_accepted(validator: Validator, key: Key, aud: object) -> None:
    assert validator.validate(token_for(key, aud=aud))["aud"] == tuple(aud)  # type: ignore[arg-type]


BAD_TYPES = {
    "JWT": "JWT",
    "missing": DROP,
    "logout+jwt": "logout+jwt",
    "secevent+jwt": "secevent+jwt",
    "refresh+jwt": "refresh+jwt",
    # Exact match by design: we only ever emit "at+jwt", so RFC 9068's long and case-insensitive
    # spellings are refused rather than normalised.
    "upper-case": "AT+JWT",
    "media-type": "application/at+jwt",
    "trailing-space": "at+jwt ",
    "null": None,
    "number": 1,
    "list": ["at+jwt"],
}


@pytest.mark.parametrize("typ", BAD_TYPES.values(), ids=list(BAD_TYPES))
def test_typ_that_is_not_exactly_ours_is_wrong_type(
    validator: Validator, key: Key, typ: object
) -> None:
    assert reason(validator, jws(header_for(key, typ=typ), claims(), key)) == "wrong_type"


def test_refresh_token_presented_as_access_token_is_wrong_type(
    validator: Validator, settings: Settings, clock: ManualClock
) -> None:
    refresh = TokenIssuer(settings, clock=clock).refresh_token("alice", "sid-1")
    assert reason(validator, refresh) == "wrong_type"


# --- size cap before decoding --------------------------------------------------------------------


@pytest.fixture
def decode_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every base64url decode the verifier makes (delegating to the real decoder)."""
    calls: list[str] = []
    real = sessionsvc.tokens.verify.b64url_decode

    def spy(segment: str) -> bytes:
        calls.append(segment)
        return real(segment)

    monkeypatch.setattr(sessionsvc.tokens.verify, "b64url_decode", spy)
    return calls


def _oversize_token(key: Key, max_size: int) -> str:
    token = token_for(key, scope="x" * max_size)
    assert len(token) > max_size
    return token


def test_decode_spy_sees_a_token_under_the_cap(
    validator: Validator, key: Key, decode_calls: list[str]
) -> None:
    # Control for the test below: the spy sits where the verifier really decodes.
    validator.validate(token_for(key))
    assert len(decode_calls) == 3


def test_oversize_token_is_too_large_before_decoding(
    validator: Validator, key: Key, settings: Settings, decode_calls: list[str]
) -> None:
    token = _oversize_token(key, settings.max_token_size)
    assert reason(validator, token) == "too_large"
    assert decode_calls == []


def test_oversize_bytes_token_is_too_large_before_decoding(
    validator: Validator, settings: Settings, decode_calls: list[str]
) -> None:
    token = b"\xff" * (settings.max_token_size + 1)  # not even ASCII: never looked at
    assert reason(validator, token) == "too_large"
    assert decode_calls == []


def test_one_megabyte_token_is_too_large(validator: Validator) -> None:
    assert reason(validator, "A" * 1_000_000 + ".e30.e30") == "too_large"


def test_token_at_the_cap_passes_the_size_check(validator: Validator, settings: Settings) -> None:
    assert reason(validator, "x" * settings.max_token_size) == "malformed"


def test_token_one_over_the_cap_is_too_large(validator: Validator, settings: Settings) -> None:
    assert reason(validator, "x" * (settings.max_token_size + 1)) == "too_large"


# --- precedence: the first failing check names the reason ----------------------------------------

PRECEDENCE: dict[str, tuple[dict[str, Any], dict[str, Any], bool, str]] = {
    # name: (header overrides, claim overrides, break the signature, expected reason)
    "oversize-beats-everything": ({"jku": "x" * 9000, "alg": "none"}, {}, True, "too_large"),
    "forbidden-header-beats-alg-none": (
        {"jku": "https://a.example", "alg": "none"},
        {},
        True,
        "forbidden_header",
    ),
    "alg-none-beats-wrong-typ": ({"alg": "none", "typ": "JWT"}, {}, True, "alg_not_allowed"),
    "wrong-typ-beats-unknown-kid": ({"typ": "JWT", "kid": "nope"}, {}, True, "wrong_type"),
    "unknown-kid-beats-bad-signature": ({"kid": "nope"}, {}, True, "unknown_key"),
    "bad-signature-beats-claims": ({}, {"exp": 1, "iss": "x"}, True, "bad_signature"),
    "missing-claim-beats-shape": ({}, {"sid": DROP, "exp": "soon"}, False, "missing_claim"),
    "shape-beats-issuer": ({}, {"exp": "soon", "iss": "x"}, False, "malformed"),
    "issuer-beats-audience": ({}, {"iss": "x", "aud": "y"}, False, "bad_issuer"),
    "audience-beats-expiry": ({}, {"aud": "y", "exp": 1}, False, "bad_audience"),
    "expiry-beats-nbf": ({}, {"exp": 1, "nbf": NOW + 3600}, False, "expired"),
    "nbf-beats-iat": ({}, {"nbf": NOW + 3600, "iat": NOW + 3600}, False, "not_yet_valid"),
    "iat-beats-lifetime": (
        {},
        {"iat": NOW + 3600, "exp": NOW + 3600 + 901},
        False,
        "issued_in_future",
    ),
}


@pytest.mark.parametrize(
    ("header", "payload", "break_signature", "expected"), PRECEDENCE.values(), ids=list(PRECEDENCE)
)
def test_first_failing_check_decides_the_reason(
    validator: Validator,
    key: Key,
    header: dict[str, Any],
    payload: dict[str, Any],
    break_signature: bool,
    expected: str,
) -> None:
    token = jws(header_for(key, **header), claims(**payload), key)
    if break_signature:
        token = _with_signature(token, bytes(len(_signature(token))))
    assert reason(validator, token) == expected


# --- every reason of REASONS through the public Validator ----------------------------------------


def _revoked(validator: Validator, key: Key) -> str:
    validator.revoke(Revocation("session", "sid-1", until=NOW + 3600))
    return token_for(key)


def _stale(validator: Validator, key: Key) -> str:
    validator.stale_after = NOW - 1  # the feed last vouched for the view a second ago
    return token_for(key)


REASON_EXAMPLES: dict[str, Callable[[Validator, Key], object]] = {
    "malformed": lambda v, k: "a.b",
    "too_large": lambda v, k: "x" * (v.settings.max_token_size + 1),
    "forbidden_header": lambda v, k: jws(header_for(k, jku="https://a.example"), claims(), k),
    "alg_not_allowed": lambda v, k: jws(header_for(k, alg="none"), claims(), k),
    "unknown_key": lambda v, k: jws(header_for(k, kid="nope"), claims(), k),
    "bad_signature": lambda v, k: token_for(attacker_key(k.alg, k.kid)),
    "wrong_type": lambda v, k: jws(header_for(k, typ="JWT"), claims(), k),
    "expired": lambda v, k: token_for(k, iat=NOW - 3600, nbf=NOW - 3600, exp=NOW - 600),
    "not_yet_valid": lambda v, k: token_for(k, nbf=NOW + 3600),
    "issued_in_future": lambda v, k: token_for(k, iat=NOW + 3600),
    "bad_issuer": lambda v, k: token_for(k, iss="https://evil.example"),
    "bad_audience": lambda v, k: token_for(k, aud="other"),
    "missing_claim": lambda v, k: token_for(k, jti=DROP),
    "bad_lifetime": lambda v, k: token_for(k, exp=NOW + v.settings.access_ttl + 1),
    "revoked": _revoked,
    "stale": _stale,
}


def test_reason_examples_cover_every_reason() -> None:
    assert set(REASON_EXAMPLES) == REASONS


@pytest.mark.parametrize(("expected", "make"), REASON_EXAMPLES.items(), ids=list(REASON_EXAMPLES))
def test_each_reason_is_reached_through_the_validator(
    validator: Validator, key: Key, expected: str, make: Callable[[Validator, Key], object]
) -> None:
    assert reason(validator, make(validator, key)) == expected
