"""Property tests: whatever a client sends, ``Validator.validate`` returns valid claims or raises
``TokenRejected`` with a reason from ``sessionsvc.REASONS`` — never any other exception.

Inputs range from arbitrary text to compact JWS whose header and claims are arbitrary JSON signed
with the real access key (so the fuzzing reaches the claims layer, not just the signature check).
One algorithm (EdDSA) for every property but the one over arbitrary headers, where the header's
``alg`` meets the key's pinned algorithm: that one runs for EdDSA and HS256. No timing assertions.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

import pytest
from conftest import AUDIENCE, ISSUER, NOW, ManualClock, make_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionsvc import REASONS, Key, Settings, TokenRejected, Validator, load_jwks

PROPERTY_SETTINGS = settings(max_examples=300, deadline=None)
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def signed(header: bytes, payload: bytes, key: Key) -> str:
    """A compact JWS of raw header/payload bytes with a valid signature of ``key``."""
    signing_input = f"{b64(header)}.{b64(payload)}"
    return f"{signing_input}.{b64(key.algorithm.sign(signing_input.encode(), key.signing_key))}"


def outcome(validator: Validator, token: object) -> Mapping[str, Any] | str:
    """The claims, or the rejection reason; any other exception propagates and fails the test."""
    try:
        return validator.validate(token)  # type: ignore[arg-type]
    except TokenRejected as exc:
        assert exc.reason in REASONS
        return exc.reason


def assert_valid_claims(claims: Mapping[str, Any], leeway: int) -> None:
    """What an accepted token's claims must satisfy (sessionsvc.tokens.claims, restated)."""
    assert claims["iss"] == ISSUER
    aud = claims["aud"]
    assert aud == AUDIENCE or (isinstance(aud, tuple) and AUDIENCE in aud)
    for name in ("sub", "sid", "jti"):
        assert isinstance(claims[name], str) and claims[name]
    for name in ("iat", "nbf", "exp"):
        assert type(claims[name]) is int
    assert claims["exp"] + leeway > NOW
    assert claims["nbf"] <= NOW + leeway
    assert claims["iat"] <= NOW + leeway


def check(validator: Validator, token: object) -> None:
    result = outcome(validator, token)
    if not isinstance(result, str):
        assert_valid_claims(result, validator.settings.leeway)


# --- strategies ----------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=NOW - 2000, max_value=NOW + 2000)
    | st.floats()  # includes NaN and ±Infinity, which json.dumps writes as non-JSON literals
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)

MISSING = object()


def mostly(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Usually ``good``; now and then arbitrary JSON or absent (``MISSING``)."""
    choice = {"good": good, "json": json_values, "missing": st.just(MISSING)}
    return st.sampled_from(["good"] * 30 + ["json", "missing"]).flatmap(choice.__getitem__)


def objects(members: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects of ``members`` (each ``mostly``) plus, one time in four, extra arbitrary ones."""
    extra_names = st.sampled_from(["roles", "scope", "jku", "x5u", "jwk", "crit", "b64", "cty"])
    extra = st.dictionaries(extra_names | st.text(max_size=6), json_values, min_size=1, max_size=2)
    return st.builds(
        lambda known, more: more | {k: v for k, v in known.items() if v is not MISSING},
        st.fixed_dictionaries({name: mostly(strategy) for name, strategy in members.items()}),
        st.sampled_from([False, False, False, True]).flatmap(
            lambda add: extra if add else st.just({})
        ),
    )


def weighted(usual: object, *others: object) -> st.SearchStrategy[Any]:
    """``usual`` about two times in three, else one of ``others``."""
    return st.sampled_from([usual] * 2 * len(others) + list(others))


CLAIMS = {
    "iss": weighted(ISSUER, ISSUER + "/", ISSUER.upper(), [ISSUER]),
    "aud": weighted(AUDIENCE, [AUDIENCE], ["other", AUDIENCE], [], "other", [AUDIENCE, 1]),
    "sub": st.text(max_size=8),
    "sid": st.text(min_size=1, max_size=8),
    "jti": st.text(min_size=1, max_size=8),
    "iat": st.integers(min_value=NOW - 1000, max_value=NOW + 60),
    "nbf": st.integers(min_value=NOW - 1000, max_value=NOW + 60),
    "exp": st.integers(min_value=NOW - 60, max_value=NOW + 1000),
}
claim_sets = objects(CLAIMS)


def headers(key: Key) -> st.SearchStrategy[dict[str, Any]]:
    """Header objects around ours: each member usually ours, else hostile or arbitrary JSON."""
    return objects(
        {
            "alg": weighted(key.alg, "none", "NONE", "HS256", "EdDSA", "RS256"),
            "kid": weighted(key.kid, "../../etc/passwd", "", "x" * 300, key.kid.upper()),
            "typ": weighted("at+jwt", "JWT", "refresh+jwt", "AT+JWT"),
        }
    )


def segments(alphabet: str) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, max_size=60)


hostile_alphabet = B64URL + "=+/ .\n\t\x00é"

# --- fixtures ------------------------------------------------------------------------------------


def _signing_key(settings: Settings) -> Key:
    assert settings.access_jwks is not None
    return load_jwks(settings.access_jwks.get_secret_value(), ring="access").signing_key()


@pytest.fixture(scope="module")
def one_settings() -> Settings:
    return make_settings("EdDSA")


@pytest.fixture(scope="module")
def key(one_settings: Settings) -> Key:
    return _signing_key(one_settings)


@pytest.fixture(scope="module")
def validator(one_settings: Settings) -> Validator:
    # Module scope (Hypothesis runs many examples per test); the clock never moves.
    return Validator(one_settings, clock=ManualClock(NOW))


@pytest.fixture(scope="module", params=["EdDSA", "HS256"])
def alg_settings(request: pytest.FixtureRequest) -> Settings:
    """Per algorithm, for the header property only (alg pinning)."""
    return make_settings(request.param)


@pytest.fixture(scope="module")
def alg_key(alg_settings: Settings) -> Key:
    return _signing_key(alg_settings)


@pytest.fixture(scope="module")
def alg_validator(alg_settings: Settings) -> Validator:
    return Validator(alg_settings, clock=ManualClock(NOW))


# --- properties ----------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(token=st.text())
def test_arbitrary_text_is_claims_or_rejected(validator: Validator, token: str) -> None:
    check(validator, token)


@PROPERTY_SETTINGS
@given(token=st.binary())
def test_arbitrary_bytes_are_claims_or_rejected(validator: Validator, token: bytes) -> None:
    check(validator, token)


@PROPERTY_SETTINGS
@given(
    token=st.none()
    | st.integers()
    | st.floats()
    | st.lists(st.text(), max_size=3)
    | st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2)
    | st.tuples(st.text(max_size=3))
)
def test_arbitrary_non_string_values_are_rejected(validator: Validator, token: object) -> None:
    assert outcome(validator, token) == "malformed"


@PROPERTY_SETTINGS
@given(parts=st.lists(segments(hostile_alphabet), min_size=1, max_size=5))
def test_dotted_base64url_ish_strings_are_claims_or_rejected(
    validator: Validator, parts: list[str]
) -> None:
    check(validator, ".".join(parts))


@PROPERTY_SETTINGS
@given(header=segments(B64URL), payload=segments(B64URL), signature=segments(B64URL))
def test_three_base64url_alphabet_segments_are_claims_or_rejected(
    validator: Validator, header: str, payload: str, signature: str
) -> None:
    check(validator, f"{header}.{payload}.{signature}")


@PROPERTY_SETTINGS
@given(header=st.binary(max_size=80), payload=st.binary(max_size=80), sig=st.binary(max_size=80))
def test_canonical_segments_of_arbitrary_bytes_are_claims_or_rejected(
    validator: Validator, header: bytes, payload: bytes, sig: bytes
) -> None:
    check(validator, f"{b64(header)}.{b64(payload)}.{b64(sig)}")


@PROPERTY_SETTINGS
@given(header=json_values, payload=json_values)
def test_arbitrary_json_validly_signed_is_claims_or_rejected(
    validator: Validator, key: Key, header: Any, payload: Any
) -> None:
    check(validator, signed(json.dumps(header).encode(), json.dumps(payload).encode(), key))


@PROPERTY_SETTINGS
@given(data=st.data(), claims=claim_sets)
def test_arbitrary_headers_and_claim_sets_validly_signed_are_claims_or_rejected(
    alg_validator: Validator, alg_key: Key, data: st.DataObject, claims: dict[str, Any]
) -> None:
    header = data.draw(headers(alg_key))
    check(alg_validator, signed(json.dumps(header).encode(), json.dumps(claims).encode(), alg_key))


@PROPERTY_SETTINGS
@given(claims=claim_sets)
def test_arbitrary_claim_sets_under_our_header_are_claims_or_rejected(
    validator: Validator, key: Key, claims: dict[str, Any]
) -> None:
    header = {"alg": key.alg, "kid": key.kid, "typ": "at+jwt"}
    check(validator, signed(json.dumps(header).encode(), json.dumps(claims).encode(), key))


@PROPERTY_SETTINGS
@given(claims=claim_sets)
def test_second_validation_gives_the_same_verdict(
    validator: Validator, key: Key, claims: dict[str, Any]
) -> None:
    # The verified-token cache must never change a verdict for an unchanged clock and view.
    header = {"alg": key.alg, "kid": key.kid, "typ": "at+jwt"}
    token = signed(json.dumps(header).encode(), json.dumps(claims).encode(), key)
    assert outcome(validator, token) == outcome(validator, token)


@PROPERTY_SETTINGS
@given(payload=st.binary(max_size=200))
def test_arbitrary_payload_bytes_validly_signed_are_claims_or_rejected(
    validator: Validator, key: Key, payload: bytes
) -> None:
    header = {"alg": key.alg, "kid": key.kid, "typ": "at+jwt"}
    check(validator, signed(json.dumps(header).encode(), payload, key))
