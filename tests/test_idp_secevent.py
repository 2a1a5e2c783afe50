"""sessionsvc.idp.secevent: Security Event Tokens (RFC 8417) under the Shared Signals Framework
1.0 profile, with the CAEP events we act on. Tokens are minted with the test identity
providers of ``test_idp_logout_token.py``; the signature layer is shared with logout tokens
and tested there, so only what differs for SETs is tested again here."""

from __future__ import annotations

from typing import Any

import pytest
from test_idp_logout_token import (
    ATTACKER_KEY,
    AUDIENCE,
    DROP,
    EC_KEY,
    ED_KEY,
    ISSUER,
    NOW,
    RSA_KEY,
    IdpKey,
    fake_keys,
    idps,
    mint,
    rejected,
)

from sessionsvc.errors import IdpKeysUnavailable
from sessionsvc.idp.model import (
    CREDENTIAL_CHANGE,
    SESSION_REVOKED,
    SSF_VERIFICATION,
    SecurityEvent,
    SecurityEventToken,
    Subject,
)
from sessionsvc.idp.secevent import verify_set

TYP = "secevent+jwt"
OPAQUE = {"format": "opaque", "id": "dMTlD|1600802906337.16|16008.16"}
UNKNOWN_EVENT = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"


def set_claims(event: str = SESSION_REVOKED, body: Any = None, **overrides: Any) -> dict[str, Any]:
    base = {
        "iss": ISSUER,
        "jti": "24c63fb56e5a2d77a6b512616ca9fa24",
        "iat": NOW - 5,
        "aud": AUDIENCE,
        "txn": "8675309",
        "sub_id": OPAQUE,
        "events": {event: {"event_timestamp": NOW - 10} if body is None else body},
    }
    return {k: v for k, v in (base | overrides).items() if v is not DROP}


def credential_change(change_type: Any = "revoke", **members: Any) -> dict[str, Any]:
    body = {"credential_type": "password", "change_type": change_type} | members
    return set_claims(CREDENTIAL_CHANGE, {k: v for k, v in body.items() if v is not DROP})


def verify(token: str, **options: Any) -> SecurityEventToken:
    return verify_set(
        token,
        options.pop("idps", None) or idps(),
        options.pop("keys", None) or fake_keys(),
        options.pop("now", NOW),
        **options,
    )


def signed(claims: dict[str, Any], key: IdpKey = RSA_KEY, **header: Any) -> str:
    return mint(key, claims, **({"typ": TYP} | header))


# --- accepted ----------------------------------------------------------------------------------


def test_a_session_revoked_set_is_read() -> None:
    assert verify(signed(set_claims())) == SecurityEventToken(
        issuer=ISSUER,
        jti="24c63fb56e5a2d77a6b512616ca9fa24",
        iat=NOW - 5,
        events=(
            SecurityEvent(
                SESSION_REVOKED, Subject("opaque", sub=OPAQUE["id"]), event_time=NOW - 10
            ),
        ),
        txn="8675309",
    )


@pytest.mark.parametrize("key", [RSA_KEY, EC_KEY, ED_KEY], ids=lambda k: k.alg)
def test_each_asymmetric_algorithm_verifies(key: IdpKey) -> None:
    assert len(verify(signed(set_claims(), key)).events) == 1


@pytest.mark.parametrize("typ", ["secevent+jwt", "application/secevent+jwt", "SecEvent+JWT"])
def test_typ_secevent_jwt_in_either_form_is_accepted(typ: str) -> None:
    assert verify(signed(set_claims(), typ=typ)).issuer == ISSUER


def test_a_complex_subject_gives_the_user_and_the_session() -> None:
    sub_id = {
        "format": "complex",
        "session": {"format": "opaque", "id": "sid-9"},
        "user": {"format": "iss_sub", "iss": ISSUER, "sub": "99beb27c"},
        "tenant": {"format": "opaque", "id": "123456789"},
    }
    event = verify(signed(set_claims(sub_id=sub_id))).events[0]
    assert event.subject == Subject("complex", sub="99beb27c", iss=ISSUER, sid="sid-9")


def test_an_older_caep_events_subject_member_is_read_without_sub_id() -> None:
    body = {"subject": {"format": "email", "email": "jane@example.test"}}
    event = verify(signed(set_claims(body=body, sub_id=DROP))).events[0]
    assert event.subject == Subject("email", email="jane@example.test")


def test_sub_id_wins_over_the_events_subject_member() -> None:
    body = {"subject": {"format": "email", "email": "jane@example.test"}}
    assert verify(signed(set_claims(body=body))).events[0].subject == Subject(
        "opaque", sub=OPAQUE["id"]
    )


def test_an_event_without_event_timestamp_has_no_event_time() -> None:
    assert verify(signed(set_claims(body={}))).events[0].event_time is None


def test_a_fractional_event_timestamp_is_kept() -> None:
    body = {"event_timestamp": NOW - 0.5}
    assert verify(signed(set_claims(body=body))).events[0].event_time == NOW - 0.5


@pytest.mark.parametrize("change_type", ["create", "revoke", "update", "delete"])
def test_a_credential_change_of_each_change_type_is_read(change_type: str) -> None:
    event = verify(signed(credential_change(change_type))).events[0]
    assert (event.type, event.change_type, event.credential_type) == (
        CREDENTIAL_CHANGE,
        change_type,
        "password",
    )


def test_a_verification_event_gives_its_state_and_no_events() -> None:
    body = {"state": "VGhpcyBpcyBhbiBleGFtcGxlIHN0YXRlIHZhbHVlLgo="}
    found = verify(signed(set_claims(SSF_VERIFICATION, body)))
    assert (found.verification, found.events, found.ignored) == (body["state"], (), ())


def test_a_verification_event_without_state_gives_an_empty_one() -> None:
    assert verify(signed(set_claims(SSF_VERIFICATION, {}, sub_id=DROP))).verification == ""


def test_an_unknown_event_type_is_acknowledged_and_ignored() -> None:
    found = verify(signed(set_claims(UNKNOWN_EVENT, {"reason": "hijacking"})))
    assert (found.events, found.ignored, found.verification) == ((), (UNKNOWN_EVENT,), None)


def test_an_unknown_event_type_is_ignored_whatever_its_subject() -> None:
    sub_id = {"format": "phone_number", "phone_number": "+1 206 555 0123"}
    assert verify(signed(set_claims(UNKNOWN_EVENT, {}, sub_id=sub_id))).ignored == (UNKNOWN_EVENT,)


def test_an_unknown_event_type_is_ignored_even_from_an_issuer_trusted_for_nothing() -> None:
    only_logout = idps(events=frozenset({"backchannel_logout"}))
    assert verify(signed(set_claims(UNKNOWN_EVENT, {})), idps=only_logout).ignored


@pytest.mark.parametrize(("txn", "kept"), [(8675309, "8675309"), (DROP, None)])
def test_txn_as_an_integer_or_absent(txn: Any, kept: str | None) -> None:
    assert verify(signed(set_claims(txn=txn))).txn == kept


def test_an_old_set_is_still_accepted() -> None:  # a poll after an outage delivers old SETs
    assert verify(signed(set_claims(iat=NOW - 86400))).iat == NOW - 86400


def test_aud_as_a_list_naming_us_is_accepted() -> None:
    assert verify(signed(set_claims(aud=["receiver.example/web", AUDIENCE]))).events


# --- refused -----------------------------------------------------------------------------------

CASES = [
    ("sub present", set_claims(sub="248289761001"), "sub_present"),
    ("exp present", set_claims(exp=NOW + 300), "exp_present"),
    (
        "two events",
        set_claims(events={SESSION_REVOKED: {}, CREDENTIAL_CHANGE: {}}),
        "multiple_events",
    ),
    ("no events claim", set_claims(events=DROP), "missing_events"),
    ("empty events", set_claims(events={}), "missing_events"),
    ("events not an object", set_claims(events=[SESSION_REVOKED]), "bad_claim"),
    ("event not an object", set_claims(body=[]), "bad_claim"),
    ("iat in the future", set_claims(iat=NOW + 60), "issued_in_future"),
    ("iat missing", set_claims(iat=DROP), "missing_claim"),
    ("jti missing", set_claims(jti=DROP), "missing_claim"),
    ("aud missing", set_claims(aud=DROP), "missing_claim"),
    ("txn a boolean", set_claims(txn=True), "bad_claim"),
    ("txn an object", set_claims(txn={"id": 1}), "bad_claim"),
    ("no subject", set_claims(sub_id=DROP), "no_subject"),
    ("sub_id null", set_claims(sub_id=None), "bad_subject"),
    (
        "unknown subject format",
        set_claims(sub_id={"format": "did", "url": "did:x:1"}),
        "unknown_subject_format",
    ),
    ("event_timestamp a string", set_claims(body={"event_timestamp": "yesterday"}), "bad_claim"),
    ("change_type missing", credential_change(DROP), "missing_claim"),
    ("change_type unknown", credential_change("rotate"), "bad_claim"),
    ("change_type not a string", credential_change(["revoke"]), "bad_claim"),
    ("credential_type missing", credential_change(credential_type=DROP), "missing_claim"),
    ("credential_type not a string", credential_change(credential_type=7), "bad_claim"),
    ("verification state not a string", set_claims(SSF_VERIFICATION, {"state": 1}), "bad_claim"),
]


@pytest.mark.parametrize(("claims", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_set_breaking_a_rule_is_an_invalid_request(claims: dict[str, Any], reason: str) -> None:
    assert rejected(verify, signed(claims)) == ("invalid_request", reason)


def test_a_set_without_typ_is_refused_even_if_the_issuer_does_not_require_it() -> None:
    token = mint(RSA_KEY, set_claims(), typ=DROP)
    assert rejected(verify, token, idps=idps(require_typ=False)) == (
        "invalid_request",
        "missing_typ",
    )


@pytest.mark.parametrize("typ", ["logout+jwt", "JWT", "application/jwt"])
def test_a_typ_other_than_secevent_jwt_is_refused(typ: str) -> None:
    assert rejected(verify, signed(set_claims(), typ=typ)) == ("invalid_request", "wrong_typ")


def test_a_logout_token_is_not_a_set() -> None:
    logout = set_claims(events={"http://schemas.openid.net/event/backchannel-logout": {}})
    token = mint(RSA_KEY, logout | {"exp": NOW + 60, "sub": "alice"})  # typ logout+jwt
    assert rejected(verify, token) == ("invalid_request", "wrong_typ")


def test_an_aud_not_naming_us_is_an_invalid_audience() -> None:
    found = rejected(verify, signed(set_claims(aud="https://sp.example.com/caep")))
    assert found == ("invalid_audience", "wrong_audience")


def test_an_unknown_issuer_is_an_invalid_issuer() -> None:
    found = rejected(verify, signed(set_claims(iss="https://transmitter.example.test")))
    assert found == ("invalid_issuer", "unknown_issuer")


@pytest.mark.parametrize("alg", ["none", "HS256"])
def test_a_symmetric_or_absent_alg_is_refused(alg: str) -> None:
    assert rejected(verify, signed(set_claims(), alg=alg)) == ("invalid_key", "alg_not_allowed")


def test_a_signature_by_another_key_is_refused() -> None:
    found = rejected(verify, signed(set_claims(), ATTACKER_KEY))
    assert found == ("invalid_key", "bad_signature")


@pytest.mark.parametrize(
    ("claims", "kind"),
    [(set_claims(), "session_revoked"), (credential_change(), "credential_change")],
    ids=["session revoked", "credential change"],
)
def test_an_event_the_issuer_is_not_trusted_for_is_access_denied(
    claims: dict[str, Any], kind: str
) -> None:
    others = frozenset({"backchannel_logout", "session_revoked", "credential_change"} - {kind})
    found = rejected(verify, signed(claims), idps=idps(events=others))
    assert found == ("access_denied", "not_allowed")


def test_unavailable_keys_pass_through_untouched() -> None:
    with pytest.raises(IdpKeysUnavailable):
        verify(signed(set_claims()), keys=fake_keys(unavailable=True))
