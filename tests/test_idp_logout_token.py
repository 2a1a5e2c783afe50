"""sessionsvc.idp.logout_token: OpenID Connect Back-Channel Logout 1.0 §2.6, check by check.

Tokens are minted here by test identity providers (RS256, ES256 and EdDSA keys made with
cryptography, signed with PyJWT's algorithms) and found through ``FakeKeys``, a tiny
``KeyLookup``. The minting helpers (``IdpKey``, ``FakeKeys``, ``mint``, ``rejected``) are also
used by ``test_idp_secevent.py``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt import PyJWK

from sessionsvc.errors import IdpKeysUnavailable, IdpTokenRejected
from sessionsvc.idp.logout_token import verify_logout_token
from sessionsvc.idp.model import BACKCHANNEL_LOGOUT, LogoutRequest
from sessionsvc.idp.trust import Idps, IdpTrust

ISSUER = "https://idp.example.test/realms/main"
OTHER_ISSUER = "https://other-idp.example.test"
AUDIENCE = "sessionsvc-client"
NOW = 1_800_000_000
DROP: Any = object()  # as a member value: leave the member out


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


@dataclass(frozen=True)
class IdpKey:
    """A test identity provider's signing key."""

    kid: str
    alg: str
    private: Any

    @property
    def public_pem(self) -> bytes:
        return bytes(
            self.private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    @property
    def public_jwk(self) -> dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(self.alg)
        jwk: dict[str, Any] = algorithm.to_jwk(self.private.public_key(), as_dict=True)
        return jwk | {"kid": self.kid, "alg": self.alg}

    def pyjwk(self) -> PyJWK:
        return PyJWK(self.public_jwk, self.alg)


def make_key(alg: str, kid: str) -> IdpKey:
    if alg == "RS256":
        return IdpKey(kid, alg, rsa.generate_private_key(public_exponent=65537, key_size=2048))
    if alg == "ES256":
        return IdpKey(kid, alg, ec.generate_private_key(ec.SECP256R1()))
    return IdpKey(kid, alg, ed25519.Ed25519PrivateKey.generate())


RSA_KEY = make_key("RS256", "rsa-1")
EC_KEY = make_key("ES256", "ec-1")
ED_KEY = make_key("EdDSA", "ed-1")
OTHER_KEY = make_key("RS256", "other-1")  # the other issuer's
ATTACKER_KEY = make_key("RS256", "rsa-1")  # same kid as ours, not ours
ALL_KEYS = (RSA_KEY, EC_KEY, ED_KEY)


@dataclass
class FakeKeys:
    """A ``KeyLookup`` over fixed keys, by (issuer, kid); records what it was asked."""

    keys: dict[tuple[str, str | None], PyJWK]
    calls: list[tuple[str, str | None, str]] = field(default_factory=list)
    unavailable: bool = False

    def key(self, issuer: str, kid: str | None, alg: str) -> PyJWK:
        self.calls.append((issuer, kid, alg))
        if self.unavailable:
            raise IdpKeysUnavailable(f"{issuer}: JWKS could not be fetched")
        found = self.keys.get((issuer, kid))
        if found is None:
            raise IdpTokenRejected("invalid_key", "unknown_key", "no key with this kid")
        return found


def fake_keys(**options: Any) -> FakeKeys:
    entries = {(ISSUER, k.kid): k.pyjwk() for k in ALL_KEYS}
    entries[(OTHER_ISSUER, OTHER_KEY.kid)] = OTHER_KEY.pyjwk()
    return FakeKeys(entries, **options)


def trust(issuer: str = ISSUER, **options: Any) -> IdpTrust:
    defaults: dict[str, Any] = {
        "audience": (AUDIENCE, "second-client"),
        "jwks": '{"keys": []}',
        "algorithms": ("RS256", "ES256", "EdDSA"),
    }
    return IdpTrust(issuer=issuer, **(defaults | options))


def idps(**options: Any) -> Idps:
    return Idps((trust(**options), trust(OTHER_ISSUER)))


def mint(key: IdpKey, claims: dict[str, Any], *, typ: Any = "logout+jwt", **header: Any) -> str:
    """A compact JWS of ``claims`` signed with ``key``; ``header`` members replace the
    defaults ``{alg, kid, typ}`` (``DROP`` leaves one out; the signature stays ``key``'s)."""
    members = {"alg": key.alg, "kid": key.kid, "typ": typ} | header
    signing_input = f"{b64(dumps({k: v for k, v in members.items() if v is not DROP}))}."
    signing_input += b64(dumps(claims))
    signature = jwt.get_algorithm_by_name(key.alg).sign(signing_input.encode(), key.private)
    return f"{signing_input}.{b64(signature)}"


def logout_claims(**overrides: Any) -> dict[str, Any]:
    base = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": NOW,
        "exp": NOW + 120,
        "jti": "bWJq",
        "sub": "248289761001",
        "sid": "08a5019c-17e1-4977-8f42-65a12843ea02",
        "events": {BACKCHANNEL_LOGOUT: {}},
    }
    return {k: v for k, v in (base | overrides).items() if v is not DROP}


def verify(token: str, **options: Any) -> LogoutRequest:
    return verify_logout_token(
        token,
        options.pop("idps", None) or idps(),
        options.pop("keys", None) or fake_keys(),
        options.pop("now", NOW),
        **options,
    )


def rejected(call: Any, *args: Any, **kwargs: Any) -> tuple[str, str]:
    """``(code, reason)`` of the ``IdpTokenRejected`` that ``call(*args, **kwargs)`` raises."""
    with pytest.raises(IdpTokenRejected) as info:
        call(*args, **kwargs)
    return info.value.code, info.value.reason


# --- accepted ----------------------------------------------------------------------------------


def test_a_logout_token_with_sub_and_sid_is_a_logout_request() -> None:
    assert verify(mint(RSA_KEY, logout_claims())) == LogoutRequest(
        issuer=ISSUER,
        jti="bWJq",
        iat=NOW,
        exp=NOW + 120,
        sub="248289761001",
        sid="08a5019c-17e1-4977-8f42-65a12843ea02",
    )


@pytest.mark.parametrize(
    ("drop", "sub", "sid"),
    [("sid", "248289761001", None), ("sub", None, "08a5019c-17e1-4977-8f42-65a12843ea02")],
    ids=["sub only", "sid only"],
)
def test_sub_or_sid_alone_is_enough(drop: str, sub: str | None, sid: str | None) -> None:
    request = verify(mint(RSA_KEY, logout_claims(**{drop: DROP})))
    assert (request.sub, request.sid) == (sub, sid)


@pytest.mark.parametrize("key", ALL_KEYS, ids=lambda k: k.alg)
def test_each_asymmetric_algorithm_verifies(key: IdpKey) -> None:
    assert verify(mint(key, logout_claims())).jti == "bWJq"


@pytest.mark.parametrize(
    "typ",
    [DROP, "logout+jwt", "application/logout+jwt", "Logout+JWT", "APPLICATION/LOGOUT+JWT"],
    ids=["absent", "short", "full", "mixed case", "upper case full"],
)
def test_typ_absent_or_logout_jwt_is_accepted(typ: Any) -> None:
    assert verify(mint(RSA_KEY, logout_claims(), typ=typ)).issuer == ISSUER


@pytest.mark.parametrize(
    "aud",
    [["someone-else", AUDIENCE], "second-client", ["second-client"]],
    ids=["list naming us", "our second audience", "list of our second audience"],
)
def test_aud_naming_one_of_our_audiences_is_accepted(aud: Any) -> None:
    assert verify(mint(RSA_KEY, logout_claims(aud=aud))).issuer == ISSUER


def test_claims_and_event_members_we_do_not_know_are_ignored() -> None:
    events = {BACKCHANNEL_LOGOUT: {"x": 1}, "urn:example:other": {}}
    token = mint(RSA_KEY, logout_claims(events=events, acr="urn:mace:incommon:iap:silver"))
    assert verify(token).jti == "bWJq"


def test_fractional_numeric_dates_are_accepted() -> None:
    request = verify(mint(RSA_KEY, logout_claims(iat=NOW + 0.5, exp=NOW + 60.25)))
    assert (request.iat, request.exp) == (NOW + 0.5, NOW + 60.25)


def test_the_key_is_asked_for_by_issuer_kid_and_alg() -> None:
    keys = fake_keys()
    verify(mint(EC_KEY, logout_claims()), keys=keys)
    assert keys.calls == [(ISSUER, "ec-1", "ES256")]


def test_a_token_without_kid_asks_for_the_issuers_key_without_one() -> None:
    keys = fake_keys()
    keys.keys[(ISSUER, None)] = RSA_KEY.pyjwk()
    verify(mint(RSA_KEY, logout_claims(), kid=DROP), keys=keys)
    assert keys.calls == [(ISSUER, None, "RS256")]


def test_an_expiry_within_the_leeway_is_accepted() -> None:
    token = mint(RSA_KEY, logout_claims(iat=NOW - 100, exp=NOW - 29))
    assert verify(token, leeway=30).exp == NOW - 29


def test_leeway_zero_makes_a_just_expired_token_expired() -> None:
    token = mint(RSA_KEY, logout_claims(iat=NOW - 100, exp=NOW))
    assert rejected(verify, token, leeway=0) == ("invalid_request", "expired")


# --- refused: the claims -----------------------------------------------------------------------

CLAIM_CASES = [
    ("missing events", {"events": DROP}, "missing_events"),
    ("events without the logout member", {"events": {"urn:example:x": {}}}, "missing_events"),
    ("events not an object", {"events": [BACKCHANNEL_LOGOUT]}, "bad_claim"),
    ("logout event not an object", {"events": {BACKCHANNEL_LOGOUT: "yes"}}, "bad_claim"),
    ("nonce present", {"nonce": "n-0S6_WzA2Mj"}, "nonce_present"),
    ("nonce present though null", {"nonce": None}, "nonce_present"),
    ("neither sub nor sid", {"sub": DROP, "sid": DROP}, "no_subject"),
    ("sub empty", {"sub": ""}, "bad_claim"),
    ("sub null", {"sub": None}, "bad_claim"),
    ("sid not a string", {"sid": 7}, "bad_claim"),
    ("sub with a control character", {"sub": "alice\nbob"}, "bad_claim"),
    ("sid too long", {"sid": "s" * 257}, "bad_claim"),
    ("aud missing", {"aud": DROP}, "missing_claim"),
    ("aud not strings", {"aud": [1, 2]}, "bad_claim"),
    ("aud empty list", {"aud": []}, "bad_claim"),
    ("iat missing", {"iat": DROP}, "missing_claim"),
    ("exp missing", {"exp": DROP}, "missing_claim"),
    ("iat a string", {"iat": str(NOW)}, "bad_claim"),
    ("exp a boolean", {"exp": True}, "bad_claim"),
    ("iat negative", {"iat": -1}, "bad_claim"),
    ("expired", {"iat": NOW - 200, "exp": NOW - 60}, "expired"),
    ("iat in the future", {"iat": NOW + 60, "exp": NOW + 120}, "issued_in_future"),
    ("iat too old", {"iat": NOW - 400, "exp": NOW - 340}, "too_old"),
    ("exp - iat too long", {"iat": NOW, "exp": NOW + 301}, "bad_lifetime"),
    ("exp before iat", {"iat": NOW, "exp": NOW - 1}, "bad_lifetime"),
    ("jti missing", {"jti": DROP}, "missing_claim"),
    ("jti empty", {"jti": ""}, "bad_claim"),
    ("jti too long", {"jti": "j" * 257}, "bad_claim"),
    ("jti with a NUL", {"jti": "a\x00b"}, "bad_claim"),
    ("iss missing", {"iss": DROP}, "missing_claim"),
    ("iss not a string", {"iss": ["https://idp.example.test/realms/main"]}, "bad_claim"),
]


@pytest.mark.parametrize(
    ("overrides", "reason"), [c[1:] for c in CLAIM_CASES], ids=[c[0] for c in CLAIM_CASES]
)
def test_a_bad_claim_is_an_invalid_request(overrides: dict[str, Any], reason: str) -> None:
    token = mint(RSA_KEY, logout_claims(**overrides))
    assert rejected(verify, token) == ("invalid_request", reason)


@pytest.mark.parametrize("aud", ["someone-else", ["a", "b"]], ids=["string", "list"])
def test_an_aud_not_naming_us_is_an_invalid_audience(aud: Any) -> None:
    token = mint(RSA_KEY, logout_claims(aud=aud))
    assert rejected(verify, token) == ("invalid_audience", "wrong_audience")


@pytest.mark.parametrize(
    "iss",
    [ISSUER + "/", ISSUER.upper(), "https://evil.example.test"],
    ids=["trailing slash", "other case", "unknown issuer"],
)
def test_an_iss_not_exactly_a_trusted_issuer_is_an_invalid_issuer(iss: str) -> None:
    keys = fake_keys()
    token = mint(RSA_KEY, logout_claims(iss=iss))
    assert rejected(verify, token, keys=keys) == ("invalid_issuer", "unknown_issuer")
    assert keys.calls == []  # an untrusted iss never reaches the key look-up


def test_an_id_token_shown_as_a_logout_token_is_told_it_is_none() -> None:
    id_token = logout_claims(events=DROP, nonce="n-0S6", exp=NOW + 3600, sid=DROP)
    assert rejected(verify, mint(RSA_KEY, id_token)) == ("invalid_request", "missing_events")


def test_an_issuer_not_trusted_for_logouts_is_access_denied() -> None:
    token = mint(RSA_KEY, logout_claims())
    found = rejected(verify, token, idps=idps(events=frozenset({"session_revoked"})))
    assert found == ("access_denied", "not_allowed")


# --- refused: the header and the signature -----------------------------------------------------


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return f"{b64(dumps(header))}.{b64(dumps(claims))}.{b64(signature)}"


@pytest.mark.parametrize("alg", ["none", "NONE", "None"])
def test_alg_none_is_refused(alg: str) -> None:
    token = unsigned({"alg": alg, "kid": RSA_KEY.kid}, logout_claims())
    assert rejected(verify, token) == ("invalid_key", "alg_not_allowed")


def test_hs256_keyed_with_the_issuers_public_key_is_refused() -> None:
    header = {"alg": "HS256", "kid": RSA_KEY.kid, "typ": "logout+jwt"}
    signing_input = f"{b64(dumps(header))}.{b64(dumps(logout_claims()))}"
    mac = hmac.new(RSA_KEY.public_pem, signing_input.encode(), hashlib.sha256).digest()
    keys = fake_keys()
    assert rejected(verify, f"{signing_input}.{b64(mac)}", keys=keys) == (
        "invalid_key",
        "alg_not_allowed",
    )
    assert keys.calls == []


def test_an_alg_the_issuer_does_not_list_is_refused() -> None:
    token = mint(EC_KEY, logout_claims())
    found = rejected(verify, token, idps=idps(algorithms=("RS256",)))
    assert found == ("invalid_key", "alg_not_allowed")


def test_a_header_alg_other_than_the_keys_is_refused() -> None:
    token = mint(RSA_KEY, logout_claims(), alg="RS384")  # the RS256 key's kid, alg RS384
    found = rejected(verify, token, idps=idps(algorithms=("RS256", "RS384")))
    assert found == ("invalid_key", "alg_not_allowed")


@pytest.mark.parametrize("typ", ["JWT", "secevent+jwt", "at+jwt", "application/jwt", "", 7, None])
def test_a_typ_other_than_logout_jwt_is_refused(typ: Any) -> None:
    token = mint(RSA_KEY, logout_claims(), typ=typ)
    assert rejected(verify, token) == ("invalid_request", "wrong_typ")


def test_typ_is_required_when_the_issuer_says_so() -> None:
    token = mint(RSA_KEY, logout_claims(), typ=DROP)
    assert rejected(verify, token, idps=idps(require_typ=True)) == (
        "invalid_request",
        "missing_typ",
    )


def test_a_required_typ_when_present_is_enough() -> None:
    assert verify(mint(RSA_KEY, logout_claims()), idps=idps(require_typ=True)).jti == "bWJq"


def test_crit_is_refused() -> None:
    token = mint(RSA_KEY, logout_claims(), crit=["exp"])
    assert rejected(verify, token) == ("invalid_request", "forbidden_header")


@pytest.mark.parametrize("kid", [7, "", "k" * 257, "a\nb"], ids=["int", "empty", "long", "ctl"])
def test_a_kid_that_is_not_a_short_string_is_malformed(kid: Any) -> None:
    token = mint(RSA_KEY, logout_claims(), kid=kid)
    assert rejected(verify, token) == ("invalid_request", "malformed")


def test_a_signature_by_another_key_with_our_kid_is_refused() -> None:
    token = mint(ATTACKER_KEY, logout_claims())
    assert rejected(verify, token) == ("invalid_key", "bad_signature")


def test_a_token_signed_by_another_trusted_issuer_is_refused() -> None:
    token = mint(OTHER_KEY, logout_claims(), kid=RSA_KEY.kid)  # our iss, their key
    assert rejected(verify, token) == ("invalid_key", "bad_signature")


def test_another_issuers_kid_is_not_looked_up_under_ours() -> None:
    token = mint(OTHER_KEY, logout_claims())  # iss ours, kid theirs
    assert rejected(verify, token) == ("invalid_key", "unknown_key")


@pytest.mark.parametrize(
    "member",
    [
        {"jwk": ATTACKER_KEY.public_jwk},
        {"jku": "https://attacker.example/jwks.json"},
        {"x5u": "https://attacker.example/cert.pem"},
    ],
    ids=["jwk", "jku", "x5u"],
)
def test_a_key_named_by_the_header_is_never_honoured(member: dict[str, Any]) -> None:
    token = mint(ATTACKER_KEY, logout_claims(), **member)
    assert rejected(verify, token) == ("invalid_key", "bad_signature")


def test_a_tampered_payload_is_refused() -> None:
    header, _, signature = mint(RSA_KEY, logout_claims()).split(".")
    forged = f"{header}.{b64(dumps(logout_claims(sub='admin')))}.{signature}"
    assert rejected(verify, forged) == ("invalid_key", "bad_signature")


def test_an_es256_signature_of_the_wrong_length_is_refused() -> None:
    header, payload, _ = mint(EC_KEY, logout_claims()).split(".")
    assert rejected(verify, f"{header}.{payload}.{b64(b'x' * 10)}") == (
        "invalid_key",
        "bad_signature",
    )


def test_the_signature_is_judged_before_the_claims() -> None:
    token = mint(ATTACKER_KEY, logout_claims(nonce="n", events=DROP))
    assert rejected(verify, token) == ("invalid_key", "bad_signature")


# --- refused: the structure --------------------------------------------------------------------

DUPLICATE_ISS = b'{"iss":"https://evil.example.test","iss":"%s"}' % ISSUER.encode()


def test_a_token_over_max_size_is_refused_before_decoding() -> None:
    assert rejected(verify, "\u00e9" * 16385) == ("invalid_request", "too_large")


def test_max_size_is_the_callers() -> None:
    token = mint(RSA_KEY, logout_claims())
    assert rejected(verify, token, max_size=len(token) - 1) == ("invalid_request", "too_large")


@pytest.mark.parametrize(
    "token",
    [
        "",
        "a.b",
        "a.b.c.d.e",  # a JWE: encrypted logout tokens are not supported
        f"{b64(b'not json')}.{b64(dumps(logout_claims()))}.",
        f"{b64(dumps({'alg': 'RS256'}))}.{b64(b'[1]')}.",
        f"{b64(dumps({'alg': 'RS256'}))}.{b64(DUPLICATE_ISS)}.",
        f"{b64(dumps({'alg': 7}))}.{b64(dumps(logout_claims()))}.",
        f"{b64(dumps(logout_claims()))}=.{b64(dumps(logout_claims()))}.",
    ],
    ids=["empty", "2 segments", "5 segments", "header", "payload", "dupes", "alg", "padding"],
)
def test_a_malformed_token_is_refused(token: str) -> None:
    assert rejected(verify, token) == ("invalid_request", "malformed")


# --- errors ------------------------------------------------------------------------------------


def test_unavailable_keys_pass_through_untouched() -> None:
    with pytest.raises(IdpKeysUnavailable):
        verify(mint(RSA_KEY, logout_claims()), keys=fake_keys(unavailable=True))


@pytest.mark.parametrize(
    "token",
    [
        mint(ATTACKER_KEY, logout_claims()),
        mint(RSA_KEY, logout_claims(nonce="secret-nonce-value")),
        mint(RSA_KEY, logout_claims(iss="https://evil.example.test/steal")),
        mint(RSA_KEY, logout_claims(), typ="evil/typ-value"),
    ],
    ids=["signature", "claim", "issuer", "header"],
)
def test_a_refusal_never_quotes_the_token_or_key_material(token: str) -> None:
    with pytest.raises(IdpTokenRejected) as info:
        verify(token)
    text = f"{info.value} {info.value.detail}"
    assert not any(part in text for part in token.split(".") if part)
    assert not any(value in text for value in ("secret-nonce", "evil", "steal"))
    assert RSA_KEY.public_jwk["n"][:16] not in text
