"""sessionsvc.tokens.issuer: what the issuer signs, with which key, and what it refuses."""

from __future__ import annotations

import json
import re
from typing import Any

import jwt
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from sessionsvc import (
    ClaimNotAllowed,
    ConfigError,
    Settings,
    TokenIssuer,
    Validator,
    generate_jwk,
    load_jwks,
)
from sessionsvc.tokens.claims import REFRESH_CLAIMS, ClaimRules
from sessionsvc.tokens.issuer import REFRESH_TYPE, new_id
from sessionsvc.tokens.verify import TokenVerifier
from tests.conftest import AUDIENCE, ISSUER, NOW, ManualClock, make_settings

B64URL_ID = re.compile(r"[A-Za-z0-9_-]{22,}")


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})  # type: ignore[no-any-return]


def header_of(token: str) -> dict[str, Any]:
    return jwt.get_unverified_header(token)


def public_only(jwks_text: str) -> str:
    doc = json.loads(jwks_text)
    return json.dumps({"keys": [{k: v for k, v in j.items() if k != "d"} for j in doc["keys"]]})


# --- access token -------------------------------------------------------------------------------


def test_access_token_carries_exactly_the_registered_claims(issuer: TokenIssuer) -> None:
    pair = issuer.issue("alice")
    claims = claims_of(pair.access_token)
    assert set(claims) == {"iss", "aud", "sub", "sid", "jti", "iat", "nbf", "exp"}
    assert claims["iss"] == ISSUER
    assert claims["aud"] == AUDIENCE
    assert claims["sub"] == "alice"
    assert claims["sid"] == pair.session_id


def test_access_token_times_follow_the_clock_and_ttl(
    issuer: TokenIssuer, settings: Settings
) -> None:
    claims = claims_of(issuer.issue("alice").access_token)
    assert claims["iat"] == claims["nbf"] == NOW
    assert claims["exp"] == NOW + settings.access_ttl == NOW + 900


def test_access_token_times_are_whole_seconds(settings: Settings) -> None:
    issuer = TokenIssuer(settings, clock=ManualClock(NOW + 0.75))
    assert claims_of(issuer.issue("alice").access_token)["iat"] == NOW


def test_access_token_header(issuer: TokenIssuer) -> None:
    assert header_of(issuer.issue("alice").access_token) == {
        "alg": "EdDSA",
        "kid": "access-EdDSA",
        "typ": "at+jwt",
    }


def test_access_token_validates(issuer: TokenIssuer, validator: Validator) -> None:
    pair = issuer.issue("alice")
    assert validator.validate(pair.access_token)["sid"] == pair.session_id


# --- refresh token ------------------------------------------------------------------------------


def test_refresh_token_claims_have_no_nbf(issuer: TokenIssuer) -> None:
    pair = issuer.issue("alice")
    claims = claims_of(pair.refresh_token)
    assert set(claims) == set(REFRESH_CLAIMS)
    assert "nbf" not in claims
    assert claims["sid"] == pair.session_id


def test_refresh_token_lives_refresh_ttl(issuer: TokenIssuer, settings: Settings) -> None:
    claims = claims_of(issuer.issue("alice").refresh_token)
    assert claims["exp"] - claims["iat"] == settings.refresh_ttl == 604_800


def test_refresh_token_header_uses_its_own_type_and_ring(issuer: TokenIssuer) -> None:
    assert header_of(issuer.issue("alice").refresh_token) == {
        "alg": "EdDSA",
        "kid": "refresh-EdDSA",
        "typ": REFRESH_TYPE,
    }
    assert REFRESH_TYPE == "refresh+jwt"


def test_refresh_token_verifies_against_the_refresh_ring(
    issuer: TokenIssuer, settings: Settings
) -> None:
    rules = ClaimRules(ISSUER, AUDIENCE, 30, REFRESH_CLAIMS, max_lifetime=settings.refresh_ttl)
    verifier = TokenVerifier(issuer.refresh_keys, REFRESH_TYPE, rules)
    token = issuer.issue("alice").refresh_token
    assert verifier.verify(token, NOW).key.kid == "refresh-EdDSA"


def test_refresh_token_with_given_jti_and_exp(issuer: TokenIssuer) -> None:
    claims = claims_of(issuer.refresh_token("alice", "s1", jti="j" * 22, exp=NOW + 60))
    assert (claims["jti"], claims["exp"]) == ("j" * 22, NOW + 60)


# --- the pair -----------------------------------------------------------------------------------


def test_pair_as_dict(issuer: TokenIssuer) -> None:
    pair = issuer.issue("alice")
    assert pair.as_dict() == {
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "session_id": pair.session_id,
        "expires_in": 900,
        "refresh_expires_in": 604_800,
    }


def test_given_sid_is_used(issuer: TokenIssuer) -> None:
    pair = issuer.issue("alice", sid="my-session")
    assert pair.session_id == "my-session"
    assert claims_of(pair.access_token)["sid"] == claims_of(pair.refresh_token)["sid"]


def test_access_and_refresh_tokens_have_different_jtis(issuer: TokenIssuer) -> None:
    pair = issuer.issue("alice")
    assert claims_of(pair.access_token)["jti"] != claims_of(pair.refresh_token)["jti"]


# --- ids ----------------------------------------------------------------------------------------


def test_new_id_is_at_least_128_bits_of_base64url() -> None:
    assert B64URL_ID.fullmatch(new_id())


def test_issued_ids_are_long_and_unique(issuer: TokenIssuer) -> None:
    ids: list[str] = []
    for _ in range(50):
        pair = issuer.issue("alice")
        ids += [pair.session_id, claims_of(pair.access_token)["jti"]]
        ids.append(claims_of(pair.refresh_token)["jti"])
    assert all(B64URL_ID.fullmatch(i) for i in ids)
    assert len(set(ids)) == len(ids)


# --- app claims ---------------------------------------------------------------------------------


def test_allow_listed_app_claims_pass(issuer: TokenIssuer) -> None:
    claims = claims_of(
        issuer.issue("alice", claims={"roles": ["admin"], "scope": "read"}).access_token
    )
    assert (claims["roles"], claims["scope"]) == (["admin"], "read")


def test_app_claims_stay_out_of_the_refresh_token(issuer: TokenIssuer) -> None:
    assert "roles" not in claims_of(issuer.issue("alice", claims={"roles": ["a"]}).refresh_token)


def test_claims_outside_the_allow_list_are_refused(issuer: TokenIssuer) -> None:
    with pytest.raises(ClaimNotAllowed, match=r"\['email', 'is_admin'\]"):
        issuer.issue("alice", claims={"roles": [], "is_admin": True, "email": "a@example.test"})


def test_configured_allow_list_is_used(clock: ManualClock) -> None:
    issuer = TokenIssuer(make_settings("EdDSA", app_claims=("tenant",)), clock=clock)
    assert claims_of(issuer.issue("alice", claims={"tenant": "t1"}).access_token)["tenant"] == "t1"
    with pytest.raises(ClaimNotAllowed):
        issuer.issue("alice", claims={"roles": ["a"]})


@pytest.mark.parametrize("name", ["iss", "aud", "sub", "sid", "jti", "iat", "nbf", "exp", "typ"])
def test_registered_claims_cannot_be_overridden(issuer: TokenIssuer, name: str) -> None:
    with pytest.raises(ClaimNotAllowed):
        issuer.issue("alice", claims={name: "x"})


@pytest.mark.parametrize("name", ["sub", "exp", "iss", "cnf"])
def test_registered_claims_stay_refused_even_when_allow_listed(
    clock: ManualClock, name: str
) -> None:
    issuer = TokenIssuer(make_settings("EdDSA", app_claims=("roles", name)), clock=clock)
    with pytest.raises(ClaimNotAllowed):
        issuer.issue("alice", claims={name: "x"})


def test_direct_access_token_call_also_checks_the_allow_list(issuer: TokenIssuer) -> None:
    with pytest.raises(ClaimNotAllowed):
        issuer.access_token("alice", "s1", {"exp": NOW + 10**9})


# --- subject ------------------------------------------------------------------------------------


@pytest.mark.parametrize("sub", ["", None, 42, ["alice"]])
def test_empty_or_non_string_sub_is_refused(issuer: TokenIssuer, sub: object) -> None:
    with pytest.raises(ValueError, match="sub must be a non-empty string"):
        issuer.issue(sub)  # type: ignore[arg-type]


UNPRINTABLE_SUBS = ["\u200b", "a\nb", "\x00", "tab\t", "\ud800", "x" * 257]


@pytest.mark.parametrize("sub", UNPRINTABLE_SUBS)
def test_sub_the_validator_would_reject_is_refused(issuer: TokenIssuer, sub: str) -> None:
    with pytest.raises(ValueError, match=r"^sub "):
        issuer.issue(sub)
    with pytest.raises(ValueError, match=r"^sub "):
        issuer.access_token(sub, "s1")
    with pytest.raises(ValueError, match=r"^sub "):
        issuer.refresh_token(sub, "s1")


@pytest.mark.parametrize("sid", ["", "s\n1", "\u200b", "s" * 257])
def test_sid_the_validator_would_reject_is_refused(issuer: TokenIssuer, sid: str) -> None:
    with pytest.raises(ValueError, match=r"^sid "):
        issuer.access_token("alice", sid)
    with pytest.raises(ValueError, match=r"^sid "):
        issuer.refresh_token("alice", sid)


@hsettings(max_examples=200, deadline=None)
@given(sub=st.text(max_size=300))
def test_every_sub_the_issuer_accepts_validates(sub: str) -> None:
    settings = make_settings("HS256")
    clock = ManualClock()
    try:
        pair = TokenIssuer(settings, clock=clock).issue(sub)
    except ValueError:
        return
    assert Validator(settings, clock=clock).validate(pair.access_token)["sub"] == sub


# --- keys ---------------------------------------------------------------------------------------


def test_issuer_needs_a_private_access_key(settings: Settings) -> None:
    assert settings.access_jwks is not None
    public = public_only(settings.access_jwks.get_secret_value())
    with pytest.raises(ConfigError, match="access key ring has no private key"):
        TokenIssuer(make_settings("EdDSA", access_jwks=public))


def test_issuer_needs_a_private_refresh_key(settings: Settings) -> None:
    assert settings.refresh_jwks is not None
    public = public_only(settings.refresh_jwks.get_secret_value())
    with pytest.raises(ConfigError, match="refresh key ring has no private key"):
        TokenIssuer(make_settings("EdDSA", refresh_jwks=public))


@pytest.mark.parametrize("name", ["access", "refresh"])
def test_issuer_needs_both_rings(name: str) -> None:
    with pytest.raises(ConfigError, match=f"SESSIONSVC_{name.upper()}_JWKS is required"):
        TokenIssuer(make_settings("EdDSA", **{f"{name}_jwks": None}))


def test_issuer_refuses_rings_sharing_material() -> None:
    jwk = generate_jwk("EdDSA", "a1")
    doc = json.dumps({"keys": [jwk]})
    other = json.dumps({"keys": [jwk | {"kid": "r1"}]})
    with pytest.raises(ConfigError, match="same key material"):
        TokenIssuer(make_settings("EdDSA", access_jwks=doc, refresh_jwks=other))


def test_issuer_signs_with_the_active_key_of_a_rotated_ring(
    settings: Settings, clock: ManualClock
) -> None:
    new, old = generate_jwk("EdDSA", "new"), generate_jwk("EdDSA", "old")
    ring = load_jwks(json.dumps({"keys": [new, old]}), ring="access")
    issuer = TokenIssuer(settings, access_keys=ring, clock=clock)
    assert header_of(issuer.issue("alice").access_token)["kid"] == "new"


@pytest.mark.parametrize("alg", ["ES256", "HS256"])
def test_issuer_works_with_other_algorithms(alg: str, clock: ManualClock) -> None:
    settings = make_settings(alg)
    pair = TokenIssuer(settings, clock=clock).issue("alice")
    assert header_of(pair.access_token)["alg"] == alg
    assert Validator(settings, clock=clock).validate(pair.access_token)["sub"] == "alice"
