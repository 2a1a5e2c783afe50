"""sessionsvc.validator: the verified-token cache never skips a time, revocation or freshness
check; it is bounded; claims are read-only; any input gives claims or ``TokenRejected``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from sessionsvc import (
    ConfigError,
    Key,
    Revocation,
    RevocationView,
    Settings,
    TokenIssuer,
    TokenRejected,
    Validator,
)
from tests.conftest import AUDIENCE, ISSUER, NOW, ManualClock, make_settings

LATER = NOW + 10 * 24 * 3600


def rejected(validator: Validator, token: object) -> str:
    with pytest.raises(TokenRejected) as info:
        validator.validate(token)  # type: ignore[arg-type]
    return info.value.reason


def payload(**overrides: Any) -> dict[str, Any]:
    return {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "sid": "s" * 22,
        "jti": "j" * 22,
        "iat": NOW,
        "nbf": NOW,
        "exp": NOW + 900,
    } | overrides


@pytest.fixture
def token(issuer: TokenIssuer) -> str:
    return issuer.issue("alice").access_token


@pytest.fixture
def cached(validator: Validator, token: str) -> str:
    """A token that has been validated once and sits in the cache."""
    validator.validate(token)
    assert token in validator._cache
    return token


def small_validator(clock: ManualClock, cache_size: int) -> tuple[Validator, TokenIssuer]:
    settings = make_settings("HS256", cache_size=cache_size)
    return Validator(settings, clock=clock), TokenIssuer(settings, clock=clock)


# --- hits ---------------------------------------------------------------------------------------


def test_valid_token_returns_its_claims(validator: Validator, token: str) -> None:
    claims = validator.validate(token)
    assert claims["sub"] == "alice"
    assert claims["iss"] == ISSUER


def test_cache_hit_returns_the_same_claims_object(validator: Validator, cached: str) -> None:
    assert validator.validate(cached) is validator.validate(cached)


def test_cache_hit_is_valid_until_exp_plus_leeway(
    validator: Validator, cached: str, clock: ManualClock, settings: Settings
) -> None:
    clock.now = NOW + settings.access_ttl + settings.leeway - 1
    assert validator.validate(cached)["sub"] == "alice"


# --- time checks on hits ------------------------------------------------------------------------


def test_cache_hit_after_expiry_is_rejected(
    validator: Validator, cached: str, clock: ManualClock, settings: Settings
) -> None:
    clock.now = NOW + settings.access_ttl + settings.leeway
    assert rejected(validator, cached) == "expired"


def test_expired_entry_is_dropped(
    validator: Validator, cached: str, clock: ManualClock, settings: Settings
) -> None:
    clock.now += settings.access_ttl + settings.leeway
    rejected(validator, cached)
    assert cached not in validator._cache


def test_expired_token_stays_rejected_after_the_entry_is_dropped(
    validator: Validator, cached: str, clock: ManualClock
) -> None:
    clock.now += 3600
    assert [rejected(validator, cached) for _ in range(2)] == ["expired", "expired"]


def test_cache_hit_before_nbf_is_rejected(
    validator: Validator, cached: str, clock: ManualClock, settings: Settings
) -> None:
    clock.now = NOW - settings.leeway - 1  # the clock stepped back
    assert rejected(validator, cached) == "not_yet_valid"


def test_cache_hit_before_nbf_within_leeway_is_valid(
    validator: Validator, cached: str, clock: ManualClock, settings: Settings
) -> None:
    clock.now = NOW - settings.leeway
    assert validator.validate(cached)["sub"] == "alice"


def test_cache_hit_keeps_the_iat_check(
    validator: Validator, access_key: Key, clock: ManualClock
) -> None:
    # nbf before iat: the cached window must still end where iat stops being "in the future"
    token = access_key.sign(payload(nbf=NOW - 600, iat=NOW + 20), "at+jwt")
    validator.validate(token)
    clock.now = NOW - 20  # stepped back: iat is now 40 s ahead, past the 30 s leeway
    assert rejected(validator, token) == "issued_in_future"
    assert rejected(Validator(validator.settings, clock=clock), token) == "issued_in_future"


# --- revocations applied after caching ----------------------------------------------------------


def test_cache_hit_after_session_revocation_is_rejected(validator: Validator, cached: str) -> None:
    sid = validator.validate(cached)["sid"]
    validator.revoke(Revocation("session", sid, until=LATER))
    assert rejected(validator, cached) == "revoked"


def test_cache_hit_after_token_revocation_is_rejected(validator: Validator, cached: str) -> None:
    jti = validator.validate(cached)["jti"]
    validator.revoke(Revocation("token", jti, until=LATER))
    assert rejected(validator, cached) == "revoked"


def test_cache_hit_after_user_revocation_is_rejected(validator: Validator, cached: str) -> None:
    validator.revoke(Revocation("user", "alice", before=NOW + 1, until=LATER))
    assert rejected(validator, cached) == "revoked"


def test_cache_hit_after_global_revocation_is_rejected(validator: Validator, cached: str) -> None:
    validator.revoke(Revocation("all", before=NOW + 1, until=LATER))
    assert rejected(validator, cached) == "revoked"


def test_cache_hit_after_key_revocation_is_rejected(validator: Validator, cached: str) -> None:
    validator.revoke(Revocation("key", "access-EdDSA"))
    assert rejected(validator, cached) == "revoked"


def test_revocation_detail_names_the_kind(validator: Validator, cached: str) -> None:
    validator.revoke(Revocation("key", "access-EdDSA"))
    with pytest.raises(TokenRejected, match="key revoked"):
        validator.validate(cached)


def test_revocation_applied_to_a_shared_view_reaches_the_cache(
    settings: Settings, clock: ManualClock, token: str
) -> None:
    view = RevocationView()
    validator = Validator(settings, view=view, clock=clock)
    claims = validator.validate(token)
    view.apply(Revocation("session", claims["sid"], until=LATER))  # e.g. by the Redis feed
    assert rejected(validator, token) == "revoked"


def test_revoked_entry_is_dropped(validator: Validator, cached: str) -> None:
    validator.revoke(Revocation("user", "alice", before=NOW + 1, until=LATER))
    rejected(validator, cached)
    assert cached not in validator._cache


def test_user_revocation_before_iat_keeps_the_token_valid(
    validator: Validator, cached: str
) -> None:
    validator.revoke(Revocation("user", "alice", before=NOW, until=LATER))  # iat == before
    assert validator.validate(cached)["sub"] == "alice"


def test_unrelated_revocation_keeps_the_token_valid(validator: Validator, cached: str) -> None:
    validator.revoke(Revocation("session", "someone-else", until=LATER))
    assert validator.validate(cached)["sub"] == "alice"
    assert validator._cache[cached][3] == validator.view.generation  # re-checked once, then warm


def test_revoke_reports_whether_the_view_changed(validator: Validator) -> None:
    rev = Revocation("session", "s1", until=LATER)
    assert validator.revoke(rev) is True
    assert validator.revoke(rev) is False


def test_token_revoked_before_its_first_validation_is_rejected(
    validator: Validator, issuer: TokenIssuer
) -> None:
    pair = issuer.issue("alice")
    validator.revoke(Revocation("session", pair.session_id, until=LATER))
    assert rejected(validator, pair.access_token) == "revoked"
    assert pair.access_token not in validator._cache


# --- freshness ----------------------------------------------------------------------------------


def test_cache_hit_is_stale_when_the_view_is_stale(
    validator: Validator, cached: str, clock: ManualClock
) -> None:
    validator.stale_after = clock.now - 1
    assert rejected(validator, cached) == "stale"


def test_cache_miss_is_stale_when_the_view_is_stale(
    validator: Validator, token: str, clock: ManualClock
) -> None:
    validator.stale_after = clock.now - 1
    assert rejected(validator, token) == "stale"
    assert token not in validator._cache


def test_stale_ends_when_the_view_is_fresh_again(
    validator: Validator, cached: str, clock: ManualClock
) -> None:
    validator.stale_after = clock.now - 1
    rejected(validator, cached)
    validator.stale_after = clock.now + 5
    assert validator.validate(cached)["sub"] == "alice"


def test_view_is_fresh_until_stale_after(
    validator: Validator, cached: str, clock: ManualClock
) -> None:
    validator.stale_after = clock.now
    assert validator.validate(cached)["sub"] == "alice"


def test_expired_wins_over_stale(validator: Validator, cached: str, clock: ManualClock) -> None:
    clock.now += 3600
    validator.stale_after = clock.now - 1
    assert rejected(validator, cached) == "expired"


def test_without_a_feed_the_view_is_always_fresh(validator: Validator) -> None:
    assert validator.stale_after == float("inf")


# --- bounded cache ------------------------------------------------------------------------------


def test_cache_is_bounded(clock: ManualClock) -> None:
    validator, issuer = small_validator(clock, cache_size=10)
    for i in range(25):
        validator.validate(issuer.issue(f"user-{i}").access_token)
        assert len(validator._cache) <= 10


def test_cache_of_one_holds_one(clock: ManualClock) -> None:
    validator, issuer = small_validator(clock, cache_size=1)
    for i in range(5):
        validator.validate(issuer.issue(f"user-{i}").access_token)
        assert len(validator._cache) <= 1


def test_evicted_tokens_still_validate(clock: ManualClock) -> None:
    validator, issuer = small_validator(clock, cache_size=4)
    tokens = [issuer.issue(f"user-{i}").access_token for i in range(12)]
    for token in tokens:
        validator.validate(token)
    assert [validator.validate(t)["sub"] for t in tokens] == [f"user-{i}" for i in range(12)]


def test_full_cache_drops_expired_entries_first(clock: ManualClock) -> None:
    validator, issuer = small_validator(clock, cache_size=4)
    for i in range(4):
        validator.validate(issuer.issue(f"old-{i}").access_token)
    clock.now += 3600  # every cached token has expired
    fresh = issuer.issue("fresh").access_token
    validator.validate(fresh)
    assert list(validator._cache) == [fresh]


def test_cache_size_zero_disables_the_cache(clock: ManualClock) -> None:
    validator, issuer = small_validator(clock, cache_size=0)
    token = issuer.issue("alice").access_token
    assert validator.validate(token)["sub"] == validator.validate(token)["sub"] == "alice"
    assert validator._cache == {}


def test_rejected_tokens_are_not_cached(validator: Validator, token: str) -> None:
    header, body, signature = token.split(".")
    forged = f"{header}.{body}.{signature[::-1]}"
    rejected(validator, forged)
    assert validator._cache == {}


# --- read-only claims ---------------------------------------------------------------------------


def test_claims_are_a_read_only_mapping(validator: Validator, token: str) -> None:
    claims = validator.validate(token)
    assert isinstance(claims, MappingProxyType)
    with pytest.raises(TypeError):
        claims["sub"] = "admin"  # type: ignore[index]


def test_nested_claims_are_read_only(settings: Settings, clock: ManualClock) -> None:
    settings = make_settings("EdDSA", app_claims=("roles", "scope"))
    issuer = TokenIssuer(settings, clock=clock)
    token = issuer.access_token(
        "alice", "s1", {"roles": ["reader", ["nested"]], "scope": {"api": ["read"]}}
    )
    claims = Validator(settings, clock=clock).validate(token)
    assert claims["roles"] == ("reader", ("nested",))
    assert isinstance(claims["scope"], MappingProxyType)
    assert claims["scope"]["api"] == ("read",)


def test_caller_cannot_change_what_the_next_caller_sees(
    validator: Validator, issuer: TokenIssuer
) -> None:
    token = issuer.access_token("alice", "s1", {"roles": ["reader"]})
    roles = validator.validate(token)["roles"]
    with pytest.raises(AttributeError):
        roles.append("admin")  # type: ignore[attr-defined]
    assert validator.validate(token)["roles"] == ("reader",)


# --- input types --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, 0, 1.5, True, object()])
def test_non_string_input_is_malformed(validator: Validator, value: object) -> None:
    assert rejected(validator, value) == "malformed"


@pytest.mark.parametrize("value", [[], {}, ["a.b.c"], {"a": 1}, bytearray(b"a.b.c"), set()])
def test_unhashable_input_is_malformed(validator: Validator, value: object) -> None:
    assert rejected(validator, value) == "malformed"


def test_ascii_bytes_token_is_accepted(validator: Validator, token: str) -> None:
    assert validator.validate(token.encode("ascii"))["sub"] == "alice"  # type: ignore[arg-type]


def test_non_ascii_bytes_are_malformed(validator: Validator, token: str) -> None:
    assert rejected(validator, token.encode() + "é".encode()) == "malformed"


@pytest.mark.parametrize("value", ["", " ", "a.b", "a.b.c"])
def test_garbage_strings_are_malformed(validator: Validator, value: str) -> None:
    assert rejected(validator, value) == "malformed"


def test_oversized_input_is_too_large(validator: Validator) -> None:
    assert rejected(validator, "a" * 10_000) == "too_large"


# --- construction -------------------------------------------------------------------------------


def test_validator_without_configuration_raises_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in list(os.environ):
        if name.upper().startswith("SESSIONSVC_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="SESSIONSVC_ISSUER"):
        Validator()


def test_validator_without_access_jwks_raises_config_error() -> None:
    settings = make_settings("EdDSA", access_jwks=None)
    with pytest.raises(ConfigError, match="SESSIONSVC_ACCESS_JWKS is required"):
        Validator(settings)


def test_validator_reads_settings_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, settings: Settings, token: str
) -> None:
    monkeypatch.chdir(tmp_path)
    assert settings.access_jwks is not None
    monkeypatch.setenv("SESSIONSVC_ACCESS_JWKS", settings.access_jwks.get_secret_value())
    monkeypatch.setenv("SESSIONSVC_ISSUER", ISSUER)
    monkeypatch.setenv("SESSIONSVC_AUDIENCE", AUDIENCE)
    validator = Validator(clock=ManualClock())
    assert validator.validate(token)["sub"] == "alice"


def test_validator_refuses_a_bad_access_ring() -> None:
    bad = json.dumps({"keys": [{"kty": "oct", "alg": "none", "kid": "k", "k": "AA"}]})
    with pytest.raises(ConfigError, match="alg 'none'"):
        Validator(make_settings("EdDSA", access_jwks=bad))


def test_validator_uses_the_settings_leeway(clock: ManualClock) -> None:
    validator = Validator(make_settings("EdDSA", leeway=0), clock=clock)
    signing_key = validator.verifier.ring.signing_key()
    token = signing_key.sign(payload(exp=NOW + 10), "at+jwt")
    validator.validate(token)
    clock.now = NOW + 10
    assert rejected(validator, token) == "expired"
