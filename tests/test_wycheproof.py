"""Wycheproof JWS vectors through sessionsvc's verifier (``sessionsvc.tokens.verify``).

Data: ``tests/vectors/wycheproof/json_web_signature_test.json`` (C2SP/wycheproof commit dac1dd4,
Apache-2.0; see README.md and LICENSE there).

Each vector becomes a token for a ``TokenVerifier`` whose ring holds the vector's key as our key
layer admits it; the vector is *accepted* iff

1. our key layer admits the group's JWK (``load_jwks``: pinned and supported ``alg``, matching
   ``kty``/``crv``, ``use``/``key_ops``, sizes, ``kid`` charset; one waiver, see ``KEY_WAIVERS``);
2. ``parse_compact`` succeeds (size cap, three canonical unpadded base64url segments, strict header
   JSON);
3. ``TokenVerifier.check_header`` passes (only ``alg kid typ``, no ``none``, ``kid`` in the ring,
   header ``alg`` equal to the key's pinned ``alg``);
4. the signature layer (``Key.verify`` with the algorithm the key pins) verifies the signature.

The vectors are not JWTs (no ``typ``, payloads are not claim sets), so the ``typ`` and claims
layers are out of scope here; ``test_security.py`` covers them.

Labels: ``valid`` must be accepted, ``invalid`` rejected, ``acceptable`` (legal but dubious)
rejected: sessionsvc takes the strict side. Vectors for algorithms sessionsvc does not support
(PS*, RS384/512, ES512) must be rejected whatever their label. Where our stricter rules or a label
anomaly make us disagree with the label, the vector is listed in ``JWS_EXCEPTIONS`` with the
reason, and our outcome is asserted.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jwt import PyJWK

from sessionsvc import ConfigError, Key, KeyRing, Settings, TokenRejected, generate_jwks, load_jwks
from sessionsvc.tokens.claims import ClaimRules
from sessionsvc.tokens.key_policy import SUPPORTED_ALGS
from sessionsvc.tokens.verify import TokenVerifier, parse_compact

VECTORS = Path(__file__).parent / "vectors" / "wycheproof"
MAX_TOKEN_SIZE: int = Settings.model_fields["max_token_size"].default
EXPECT_ACCEPTED = {"valid": True, "invalid": False, "acceptable": False}


def _load(name: str) -> dict[str, Any]:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


JWS_FILE = _load("json_web_signature_test.json")


# --- JWS harness ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class JwsCase:
    tc_id: int
    comment: str
    jws: str
    result: str
    jwk: dict[str, Any]

    @property
    def header_alg(self) -> object:
        """The header's ``alg`` read leniently (for classification only), or ``None``."""
        segment = self.jws.split(".")[0]
        try:
            header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
        except (ValueError, binascii.Error):
            return None
        return header.get("alg") if isinstance(header, dict) else None

    @property
    def unsupported_alg(self) -> bool:
        """The key's or the header's algorithm is one sessionsvc never accepts (PS256, ES512…)."""
        key_alg, header_alg = self.jwk.get("alg"), self.header_alg
        if key_alg is not None and key_alg not in SUPPORTED_ALGS:
            return True
        return (
            isinstance(header_alg, str)
            and header_alg not in SUPPORTED_ALGS
            and header_alg.lower() != "none"
        )


JWS_CASES = [
    JwsCase(t["tcId"], t["comment"], t["jws"], t["result"], g.get("public") or g["private"])
    for g in JWS_FILE["testGroups"]
    for t in g["tests"]
]
JWS_BY_ID = {case.tc_id: case for case in JWS_CASES}

# tcId: (our outcome, why we differ from the label). Each is asserted, none is skipped.
JWS_EXCEPTIONS: dict[int, tuple[str, str]] = {
    # Label anomalies documented in the vectors' README.
    367: ("accepted", "byte-identical to valid tcId 357 but labelled invalid (label anomaly)"),
    370: ("accepted", "byte-identical to valid tcId 357 but labelled invalid (label anomaly)"),
    372: ("malformed", "labelled valid but '?' in the header segment is not base64url"),
    373: ("malformed", "labelled valid but '?' in the payload segment is not base64url"),
    # Our stricter key layer: valid RFC 7520 RS256 examples whose JWK we refuse at start-up.
    345: ("key_refused", "kid 'bilbo.baggins@hobbiton.example': '@' is outside our kid charset"),
    349: ("key_refused", "same kid, and key_ops is the one string 'sign, verify', not two ops"),
}

# Keys our start-up policy refuses that we admit anyway to run their vectors: kid -> the refusal.
# The base64 group's HS256 secret is 32 zero bytes: refusing it ("not random enough") is right for
# a deployment, but its 21 vectors exist to probe the base64url parser, which must still run.
KEY_WAIVERS = {"hs256-key": "not random enough"}

RULES = ClaimRules(issuer="unused", audience="unused", leeway=0, max_lifetime=2**53)
# Stands in for a refused key, so that header-only rejections (alg none, forbidden members) show.
_PLACEHOLDER = load_jwks(
    json.dumps(generate_jwks("EdDSA", "no-vector-uses-this-kid")), ring="placeholder"
).signing_key()


@functools.cache
def _admit(jwk_json: str) -> Key | None:
    jwk = json.loads(jwk_json)
    try:
        (key,) = load_jwks(json.dumps({"keys": [jwk]}), ring="wycheproof").keys.values()
    except ConfigError as exc:
        waiver = KEY_WAIVERS.get(jwk.get("kid"))
        if waiver is None or waiver not in str(exc):
            return None
        parsed = PyJWK(jwk, jwk["alg"])
        key = Key(
            kid=jwk["kid"],
            alg=jwk["alg"],
            algorithm=parsed.Algorithm,
            verify_key=parsed.key,
            signing_key=None,
            thumbprint="",
            public_jwk=None,
        )
    return key


def admit_key(jwk: dict[str, Any]) -> Key | None:
    """Our key layer's verdict on a vector's JWK: the ``Key``, or ``None`` when refused."""
    return _admit(json.dumps(jwk, sort_keys=True))


def jws_outcome(case: JwsCase) -> str:
    """``accepted``, the ``TokenRejected`` reason, or ``key_refused``."""
    try:
        compact = parse_compact(case.jws, MAX_TOKEN_SIZE)
    except TokenRejected as exc:
        return exc.reason
    key = admit_key(case.jwk)
    ring = KeyRing("wycheproof", [key or _PLACEHOLDER])
    # typ=None: the vectors carry no typ; the JWT-level typ rule is tested in test_security.py.
    verifier = TokenVerifier(ring, None, RULES, MAX_TOKEN_SIZE)  # type: ignore[arg-type]
    try:
        found = verifier.check_header(compact.header)
    except TokenRejected as exc:
        return "key_refused" if key is None and exc.reason == "unknown_key" else exc.reason
    return "accepted" if found.verify(compact.signing_input, compact.signature) else "bad_signature"


def _ids(cases: list[JwsCase]) -> list[str]:
    return [f"tc{case.tc_id}-{case.comment}" for case in cases]


EXCEPTION_CASES = [JWS_BY_ID[tc_id] for tc_id in sorted(JWS_EXCEPTIONS)]
UNSUPPORTED_CASES = [c for c in JWS_CASES if c.unsupported_alg and c.tc_id not in JWS_EXCEPTIONS]
REGULAR_CASES = [c for c in JWS_CASES if not c.unsupported_alg and c.tc_id not in JWS_EXCEPTIONS]


# --- JWS -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", REGULAR_CASES, ids=_ids(REGULAR_CASES))
def test_jws_vector_outcome_matches_its_label(case: JwsCase) -> None:
    assert (jws_outcome(case) == "accepted") is EXPECT_ACCEPTED[case.result]


@pytest.mark.parametrize("case", UNSUPPORTED_CASES, ids=_ids(UNSUPPORTED_CASES))
def test_jws_vector_of_an_unsupported_algorithm_is_rejected(case: JwsCase) -> None:
    assert jws_outcome(case) != "accepted"


@pytest.mark.parametrize("case", EXCEPTION_CASES, ids=_ids(EXCEPTION_CASES))
def test_jws_exception_has_the_documented_outcome(case: JwsCase) -> None:
    outcome, _why = JWS_EXCEPTIONS[case.tc_id]
    assert jws_outcome(case) == outcome
    # Still a disagreement with the label; if Wycheproof fixes it, drop the exception.
    assert (outcome == "accepted") is not EXPECT_ACCEPTED[case.result]


def test_waived_test_key_is_refused_by_our_key_policy() -> None:
    jwk = JWS_BY_ID[357].jwk
    with pytest.raises(ConfigError, match=KEY_WAIVERS[jwk["kid"]]):
        load_jwks(json.dumps({"keys": [jwk]}), ring="wycheproof")


NOTABLE_REASONS = {
    4: "malformed",  # missing signature and separator: two segments
    8: "unknown_key",  # modified kid
    14: "malformed",  # extra empty component
    16: "alg_not_allowed",  # alg none, HS256 key
    17: "malformed",  # JSON serialization
    31: "alg_not_allowed",  # HS256 keyed with the EC public key (symmetry confusion)
    32: "forbidden_header",  # attacker-provided embedded jwk
    341: "alg_not_allowed",  # alg none
    342: "alg_not_allowed",  # alg NONE
    343: "alg_not_allowed",  # alg none, kid none
    344: "alg_not_allowed",  # alg none with a real kid
    353: "key_refused",  # use enc
    355: "key_refused",  # key_ops encrypt/decrypt
    360: "malformed",  # spaces in the MAC
    374: "malformed",  # modified unused bits (non-canonical base64url)
    375: "malformed",  # MAC over an incorrectly encoded message
    386: "bad_signature",  # ES256 r = s = 0
    401: "bad_signature",  # ES256 r = s = n
}


@pytest.mark.parametrize(
    ("tc_id", "expected"), NOTABLE_REASONS.items(), ids=list(map(str, NOTABLE_REASONS))
)
def test_jws_vector_is_rejected_for_the_right_reason(tc_id: int, expected: str) -> None:
    assert jws_outcome(JWS_BY_ID[tc_id]) == expected
