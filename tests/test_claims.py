"""sessionsvc.tokens.claims: each rule, and the order that decides a multi-fault token's reason.

The claim sets are ``tokens_harness.claims`` (the shared claims fixture); the rules run as pure
functions here, once each. ``test_security.py`` reaches each rule once through the ``Validator``
(``test_each_reason_is_reached_through_the_validator``) and checks the required claims there.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from conftest import AUDIENCE, ISSUER, NOW
from tokens_harness import DROP, claims

from sessionsvc import TokenRejected
from sessionsvc.tokens.claims import (
    ACCESS_CLAIMS,
    MAX_ID_LENGTH,
    MAX_NUMERIC_DATE,
    REFRESH_CLAIMS,
    ClaimRules,
    _validate_aud,
    _validate_exp,
    _validate_iat,
    _validate_iss,
    _validate_lifetime,
    _validate_nbf,
    _validate_required,
    _validate_shapes,
    id_claim_problem,
    validate_claims,
)

LEEWAY = 30
TTL = 900
RULES = ClaimRules(ISSUER, AUDIENCE, LEEWAY, max_lifetime=TTL)


def reason(fn: Any, *args: Any) -> str:
    with pytest.raises(TokenRejected) as info:
        fn(*args)
    return info.value.reason


def test_good_claims_pass() -> None:
    validate_claims(claims(), RULES, NOW)


def test_default_rules_require_the_access_claims() -> None:
    assert RULES.required == ACCESS_CLAIMS
    assert set(ACCESS_CLAIMS) - set(REFRESH_CLAIMS) == {"nbf"}


# --- required -----------------------------------------------------------------------------------


def test_missing_claim_detail_names_it() -> None:
    with pytest.raises(TokenRejected, match="'sid' is required"):
        _validate_required(claims(sid=DROP), ACCESS_CLAIMS)


def test_refresh_rules_do_not_require_nbf() -> None:
    rules = ClaimRules(ISSUER, AUDIENCE, LEEWAY, REFRESH_CLAIMS, max_lifetime=TTL)
    validate_claims(claims(nbf=DROP), rules, NOW)


def test_extra_claims_are_allowed() -> None:
    validate_claims(claims(roles=["admin"], scope="read"), RULES, NOW)


# --- shapes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["iat", "nbf", "exp"])
@pytest.mark.parametrize(
    "value", ["1800000000", 1.8e9, 1800000000.0, True, False, None, [NOW], {"t": NOW}, -1]
)
def test_time_claims_must_be_non_negative_integers(name: str, value: object) -> None:
    assert reason(_validate_shapes, claims(**{name: value})) == "malformed"


@pytest.mark.parametrize("name", ["iat", "nbf", "exp"])
def test_time_claims_must_be_below_2_pow_53(name: str) -> None:
    assert reason(_validate_shapes, claims(**{name: MAX_NUMERIC_DATE})) == "malformed"
    assert reason(_validate_shapes, claims(**{name: 10**5000})) == "malformed"


def test_time_claim_just_below_the_limit_passes_shape() -> None:
    _validate_shapes(claims(exp=MAX_NUMERIC_DATE - 1))


def test_zero_is_a_valid_numeric_date_shape() -> None:
    _validate_shapes(claims(iat=0, nbf=0))


@pytest.mark.parametrize("name", ["sub", "sid", "jti"])
@pytest.mark.parametrize("value", ["", 7, None, ["a"], {"a": 1}, True])
def test_ids_must_be_non_empty_strings(name: str, value: object) -> None:
    assert reason(_validate_shapes, claims(**{name: value})) == "malformed"


@pytest.mark.parametrize("name", ["sub", "sid", "jti"])
def test_ids_are_capped_in_length(name: str) -> None:
    _validate_shapes(claims(**{name: "x" * MAX_ID_LENGTH}))
    assert reason(_validate_shapes, claims(**{name: "x" * (MAX_ID_LENGTH + 1)})) == "malformed"


def test_shape_check_skips_absent_nbf() -> None:
    _validate_shapes(claims(nbf=DROP))


# --- iss ----------------------------------------------------------------------------------------


def test_exact_issuer_passes() -> None:
    _validate_iss(ISSUER, ISSUER)


BAD_ISSUERS = {
    "trailing-slash": ISSUER + "/",
    "upper-case": ISSUER.upper(),
    "host-case": "https://AUTH.example.test",
    "scheme-case": ISSUER.replace("https", "HTTPS"),
    "http": ISSUER.replace("https", "http"),
    "leading-space": " " + ISSUER,
    "trailing-space": ISSUER + " ",
    "suffix-domain": ISSUER + ".attacker.example",
    "userinfo": ISSUER + "@attacker.example",
    "cyrillic-a": ISSUER.replace("a", "\u0430", 1),
    "empty": "",
    "array": [ISSUER],
    "object": {"iss": ISSUER},
    "null": None,
    "number": 1,
}


@pytest.mark.parametrize("iss", BAD_ISSUERS.values(), ids=list(BAD_ISSUERS))
def test_issuer_must_match_exactly(iss: object) -> None:
    assert reason(validate_claims, claims(iss=iss), RULES, NOW) == "bad_issuer"


# --- aud ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("aud", [AUDIENCE, [AUDIENCE], ["other", AUDIENCE]])
def test_audience_string_or_list_containing_ours_passes(aud: object) -> None:
    _validate_aud(aud, AUDIENCE)


BAD_AUDIENCES = {
    "other": "other.example.test",
    "empty-list": [],
    "other-list": ["other.example.test"],
    "upper-case": AUDIENCE.upper(),
    "trailing-space": AUDIENCE + " ",
    "substring": AUDIENCE[:-1],
    "empty": "",
    "ours-and-a-number": [AUDIENCE, 1],
    "nested-list": [[AUDIENCE]],
    "object": {"aud": AUDIENCE},
    "object-keyed-by-ours": {AUDIENCE: 1},
    "null": None,
    "number": 7,
}


@pytest.mark.parametrize("aud", BAD_AUDIENCES.values(), ids=list(BAD_AUDIENCES))
def test_audience_must_name_ours(aud: object) -> None:
    assert reason(validate_claims, claims(aud=aud), RULES, NOW) == "bad_audience"


# --- exp / nbf / iat (with leeway) --------------------------------------------------------------


def test_exp_within_leeway_passes() -> None:
    _validate_exp(NOW, NOW + LEEWAY - 1, LEEWAY)


def test_exp_at_leeway_boundary_is_expired() -> None:
    assert reason(_validate_exp, NOW, NOW + LEEWAY, LEEWAY) == "expired"


def test_exp_without_leeway_is_exclusive() -> None:
    _validate_exp(NOW + 1, NOW, 0)
    assert reason(_validate_exp, NOW, NOW, 0) == "expired"


def test_nbf_within_leeway_passes() -> None:
    _validate_nbf(NOW + LEEWAY, NOW, LEEWAY)


def test_nbf_past_leeway_is_not_yet_valid() -> None:
    assert reason(_validate_nbf, NOW + LEEWAY + 1, NOW, LEEWAY) == "not_yet_valid"


def test_iat_within_leeway_passes() -> None:
    _validate_iat(NOW + LEEWAY, NOW, LEEWAY)


def test_iat_past_leeway_is_issued_in_future() -> None:
    assert reason(_validate_iat, NOW + LEEWAY + 1, NOW, LEEWAY) == "issued_in_future"


def test_iat_in_the_past_passes() -> None:
    _validate_iat(0, NOW, 0)


def test_fractional_clock_is_compared_exactly() -> None:
    assert reason(_validate_exp, NOW, NOW + 0.5, 0) == "expired"
    _validate_nbf(NOW + 1, NOW + 0.5, 1)


# --- lifetime: exp − iat at most max_lifetime ---------------------------------------------------


def test_lifetime_of_exactly_max_lifetime_passes() -> None:
    _validate_lifetime(NOW + TTL, NOW, TTL)
    validate_claims(claims(exp=NOW + TTL), RULES, NOW)


def test_lifetime_one_second_over_max_lifetime_is_bad_lifetime() -> None:
    assert reason(_validate_lifetime, NOW + TTL + 1, NOW, TTL) == "bad_lifetime"
    assert reason(validate_claims, claims(exp=NOW + TTL + 1), RULES, NOW) == "bad_lifetime"


def test_lifetime_is_measured_from_iat_not_from_now() -> None:
    # issued an hour ago for two hours: still valid by exp, but it lives longer than allowed
    lived = claims(iat=NOW - 3600, nbf=NOW - 3600, exp=NOW + 3600)
    assert reason(validate_claims, lived, RULES, NOW) == "bad_lifetime"


def test_lifetime_limit_is_the_rules_own() -> None:
    long_lived = claims(exp=NOW + 7 * 24 * 3600)
    assert reason(validate_claims, long_lived, RULES, NOW) == "bad_lifetime"
    refresh = ClaimRules(ISSUER, AUDIENCE, LEEWAY, REFRESH_CLAIMS, max_lifetime=7 * 24 * 3600)
    validate_claims(long_lived, refresh, NOW)


def test_lifetime_gets_no_leeway() -> None:
    assert reason(_validate_lifetime, NOW + TTL + 1, NOW, TTL) == "bad_lifetime"  # leeway 30 s


# --- order: required → shapes → iss → aud → exp → nbf → iat → lifetime -------------------------

ORDER = [
    ("missing_claim", {"jti": DROP}),
    ("malformed", {"exp": "soon"}),
    ("bad_issuer", {"iss": "https://evil.test"}),
    ("bad_audience", {"aud": "other"}),
    ("expired", {"exp": NOW - 3600}),
    ("not_yet_valid", {"nbf": NOW + 3600}),
    ("issued_in_future", {"iat": NOW + 3600}),
    ("bad_lifetime", {"iat": NOW - 60, "nbf": NOW - 60, "exp": NOW + TTL}),
]


@pytest.mark.parametrize("index", range(len(ORDER) - 1))
def test_earlier_rule_wins_over_every_later_one(index: int) -> None:
    expected, first = ORDER[index]
    for _, later in ORDER[index + 1 :]:
        with pytest.raises(TokenRejected) as info:
            validate_claims(claims(**(later | first)), RULES, NOW)
        assert info.value.reason == expected


def test_all_faults_at_once_give_missing_claim() -> None:
    faults: dict[str, Any] = {}
    for _, fault in ORDER:
        faults |= fault
    with pytest.raises(TokenRejected) as info:
        validate_claims(claims(**faults), RULES, NOW)
    assert info.value.reason == "missing_claim"


def test_expired_wins_over_issued_in_future_when_both_apply() -> None:
    # exp before iat: a contradictory token still gets the earlier rule's reason
    with pytest.raises(TokenRejected) as info:
        validate_claims(claims(iat=NOW + 3600, nbf=NOW - 3600, exp=NOW - 60), RULES, NOW)
    assert info.value.reason == "expired"


def test_malformed_id_wins_over_bad_issuer() -> None:
    with pytest.raises(TokenRejected) as info:
        validate_claims(claims(sub="", iss="x"), RULES, NOW)
    assert info.value.reason == "malformed"


def test_bad_time_shape_wins_over_bad_id_shape_and_names_the_claim() -> None:
    with pytest.raises(TokenRejected, match="'iat'") as info:
        validate_claims(claims(iat=1.5, sid=""), RULES, NOW)
    assert info.value.reason == "malformed"


def test_rules_use_the_given_leeway() -> None:
    rules = ClaimRules(ISSUER, AUDIENCE, leeway=0, max_lifetime=TTL)
    with pytest.raises(TokenRejected) as info:
        validate_claims(claims(exp=NOW), rules, NOW)
    assert info.value.reason == "expired"
    validate_claims(claims(exp=NOW), RULES, NOW)


@pytest.mark.parametrize(
    "value", ["\ud800", "a\x00b", "tab\there", "line\nbreak", "\u200b", "a\u202eb", "\xa0"]
)
def test_ids_with_unprintable_characters_are_malformed(value: str) -> None:
    with pytest.raises(TokenRejected) as info:
        validate_claims(claims(sub=value), RULES, NOW)
    assert info.value.reason == "malformed"


# --- the id rule (shared with the issuer and the session service) -------------------------------


@pytest.mark.parametrize("value", ["alice", "user 42", "ülrich@example.test", "x" * MAX_ID_LENGTH])
def test_id_rule_accepts_printable_strings(value: str) -> None:
    assert id_claim_problem(value) is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "must be a non-empty string"),
        (None, "must be a non-empty string"),
        (7, "must be a non-empty string"),
        ("x" * (MAX_ID_LENGTH + 1), "at most 256 characters"),
        ("\u200b", "unprintable"),
        ("a\nb", "unprintable"),
        ("\x00", "unprintable"),
        ("\udc00", "unprintable"),
    ],
)
def test_id_rule_names_the_problem(value: object, problem: str) -> None:
    assert problem in (id_claim_problem(value) or "")


@pytest.mark.parametrize("value", ["\u200b", "a\nb", "\x00", "", "x" * 257, 7])
def test_shape_check_refuses_what_the_id_rule_refuses(value: object) -> None:
    assert id_claim_problem(value) is not None
    detail = f"claim 'sub' {id_claim_problem(value)}"
    with pytest.raises(TokenRejected, match=re.escape(detail)):
        _validate_shapes(claims(sub=value))
