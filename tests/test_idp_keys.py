"""sessionsvc.idp.keys: an identity provider's keys from a file, inline JSON or an https:// URL;
the keys a token's ``alg`` may use; the refusals; the cache (non-blocking refresh, unknown-kid
cooldown, last good keys kept, IdpKeysUnavailable)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from functools import cache
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import jwt
import pytest
import structlog
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from tls_harness import HttpsServer, make_pki

from sessionsvc.errors import ConfigError, IdpKeysUnavailable, IdpTokenRejected
from sessionsvc.idp.jwks import FITS as _FITS
from sessionsvc.idp.keys import IssuerKeyring, IssuerKeys
from sessionsvc.idp.trust import ALGORITHMS, Idps, IdpTrust
from tests.conftest import ManualClock

ISS = "https://idp.example.test/realms/main"
CURVES = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1, "P-521": ec.SECP521R1}


@cache
def private(kind: str) -> Any:
    """One private key per kind (RSA-2048, RSA-1024, P-256, P-384, P-521, Ed25519, Ed448)."""
    if kind.startswith("RSA"):
        return rsa.generate_private_key(65537, int(kind[4:] or 2048))
    if kind in CURVES:
        return ec.generate_private_key(CURVES[kind]())
    return {"Ed25519": ed25519.Ed25519PrivateKey, "Ed448": ed448.Ed448PrivateKey}[kind].generate()


def jwk(kind: str = "RSA", kid: str | None = "k-1", **members: Any) -> dict[str, Any]:
    """The public JWK of ``private(kind)``, with ``kid`` and extra ``members``."""
    key = private(kind).public_key()
    if kind.startswith("RSA"):
        doc = RSAAlgorithm.to_jwk(key, as_dict=True)
    elif kind in CURVES:
        doc = ECAlgorithm.to_jwk(key, as_dict=True)
    else:
        doc = OKPAlgorithm.to_jwk(key, as_dict=True)
    return doc | ({} if kid is None else {"kid": kid}) | members


def jwks(*keys: dict[str, Any]) -> str:
    return json.dumps({"keys": list(keys)})


def trust(source: str, **fields: Any) -> IdpTrust:
    return IdpTrust(issuer=ISS, audience=("client-1",), jwks=source, **fields)


class Fetcher:
    """A fetcher answering ``body`` (or raising ``error``), counting its calls; with ``gate``
    set it blocks until the gate opens."""

    def __init__(self, body: str) -> None:
        self.body, self.calls = body, 0
        self.error: Exception | None = None
        self.gate: threading.Event | None = None
        self.entered = threading.Event()

    def __call__(self) -> bytes:
        self.calls += 1
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(10)
        if self.error is not None:
            raise self.error
        return self.body.encode()


def idle(keys: IssuerKeys) -> None:
    """Wait for the background refresh, if one runs."""
    thread = keys._thread
    if thread is not None:
        thread.join(5)


def refused(call: Callable[[], object], reason: str, *docs: dict[str, Any]) -> IdpTokenRejected:
    """The ``IdpTokenRejected`` of ``call`` with this reason, its text free of key material."""
    with pytest.raises(IdpTokenRejected) as info:
        call()
    exc = info.value
    assert (exc.code, exc.reason) == ("invalid_key", reason)
    for doc in docs:
        for member in ("n", "x", "y"):
            if member in doc:
                value = doc[member]
                parts = {value[i : i + 8] for i in range(len(value) - 7)}
                assert not [p for p in parts if p in str(exc)], member
    return exc


# --- sources -----------------------------------------------------------------------------------


def test_inline_json_gives_the_key_of_the_kid() -> None:
    keys = IssuerKeys(trust(jwks(jwk(kid="k-1"), jwk("P-256", kid="k-2")), algorithms=("RS256",)))
    assert keys.key("k-1", "RS256").key_id == "k-1"


def test_a_file_source_is_read_and_a_change_picked_up_on_the_refresh_schedule(
    tmp_path: Path, clock: ManualClock
) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(jwks(jwk(kid="k-1")))
    keys = IssuerKeys(trust(str(path), jwks_refresh=60), clock=clock)
    assert keys.key("k-1", "RS256").key_id == "k-1"
    path.write_text(jwks(jwk(kid="k-2")))
    clock.now += 61
    assert keys.key("k-1", "RS256").key_id == "k-1"  # answered from the cache, refresh started
    idle(keys)
    assert keys.key("k-2", "RS256").key_id == "k-2"


def test_an_unchanged_file_is_not_judged_again(tmp_path: Path, clock: ManualClock) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(jwks(jwk()))
    keys = IssuerKeys(trust(str(path), jwks_refresh=60), clock=clock)
    with structlog.testing.capture_logs() as logs:
        keys.key("k-1", "RS256")
        clock.now += 61
        keys.key("k-1", "RS256")
        idle(keys)
    assert [e["event"] for e in logs] == ["idp_jwks_loaded"]


def test_an_injected_fetcher_stands_for_the_url() -> None:
    fetch = Fetcher(jwks(jwk()))
    keys = IssuerKeys(trust("https://idp.example.test/certs"), fetch=fetch)
    assert keys.key("k-1", "RS256").key_id == "k-1"
    assert keys.key("k-1", "RS256").key_id == "k-1" and fetch.calls == 1


def test_plain_http_is_refused_at_construction() -> None:
    with pytest.raises(ConfigError, match="must be https"):
        IssuerKeys(trust("http://idp.example.test/certs"))


def test_a_bad_inline_jwks_is_refused_at_construction() -> None:
    with pytest.raises(ConfigError, match="strict JSON"):
        IssuerKeys(trust('{"keys": [}'))


@pytest.mark.parametrize(
    ("alg", "kind"),
    [
        ("RS256", "RSA"),
        ("RS512", "RSA"),
        ("PS256", "RSA"),
        ("ES256", "P-256"),
        ("ES384", "P-384"),
        ("ES512", "P-521"),
        ("EdDSA", "Ed25519"),
        ("EdDSA", "Ed448"),
    ],
)
def test_every_algorithm_verifies_with_its_key(alg: str, kind: str) -> None:
    keys = IssuerKeys(trust(jwks(jwk(kind)), algorithms=(alg,)))
    token = jwt.encode({"sub": "u"}, private(kind), algorithm=alg, headers={"kid": "k-1"})
    assert jwt.decode(token, keys.key("k-1", alg), algorithms=[alg]) == {"sub": "u"}


def test_the_fits_cover_every_accepted_algorithm() -> None:
    assert set(_FITS) == ALGORITHMS


# --- refusals ----------------------------------------------------------------------------------


def test_an_alg_the_issuer_does_not_list_is_refused() -> None:
    keys = IssuerKeys(trust(jwks(jwk("P-256")), algorithms=("RS256",)))
    refused(lambda: keys.key("k-1", "ES256"), "alg_not_allowed")


def test_a_key_of_another_type_is_refused() -> None:
    doc = jwk("P-256")
    keys = IssuerKeys(trust(jwks(doc), algorithms=("RS256",)))
    refused(lambda: keys.key("k-1", "RS256"), "wrong_key_type", doc)


def test_a_key_of_another_curve_is_refused() -> None:
    doc = jwk("P-384")
    keys = IssuerKeys(trust(jwks(doc), algorithms=("ES256",)))
    refused(lambda: keys.key("k-1", "ES256"), "wrong_key_type", doc)


def test_a_key_pinned_to_another_alg_is_refused() -> None:
    doc = jwk(alg="RS512")
    keys = IssuerKeys(trust(jwks(doc), algorithms=("RS256", "RS512")))
    refused(lambda: keys.key("k-1", "RS256"), "wrong_alg", doc)
    assert keys.key("k-1", "RS512").key_id == "k-1"


def test_an_encryption_key_is_refused() -> None:
    doc = jwk(use="enc")
    keys = IssuerKeys(trust(jwks(doc)))
    refused(lambda: keys.key("k-1", "RS256"), "wrong_use", doc)


def test_key_ops_without_verify_is_refused() -> None:
    doc = jwk(key_ops=["encrypt"])
    keys = IssuerKeys(trust(jwks(doc)))
    refused(lambda: keys.key("k-1", "RS256"), "wrong_key_ops", doc)


def test_an_rsa_key_under_2048_bits_is_refused() -> None:
    doc = jwk("RSA-1024")
    keys = IssuerKeys(trust(jwks(doc)))
    exc = refused(lambda: keys.key("k-1", "RS256"), "weak_key", doc)
    assert "1024" in exc.detail


def test_a_key_off_its_curve_is_refused_as_unusable() -> None:
    doc = jwk("P-256")
    doc["x"] = jwk("P-256", kid="other")["y"]  # (x and y of no point)
    keys = IssuerKeys(trust(jwks(doc), algorithms=("ES256",)))
    refused(lambda: keys.key("k-1", "ES256"), "unusable_key", doc)


def test_an_unknown_kid_is_refused() -> None:
    keys = IssuerKeys(trust(jwks(jwk())))
    refused(lambda: keys.key("k-9", "RS256"), "unknown_key")


def test_an_hmac_key_refuses_the_whole_jwks() -> None:
    with pytest.raises(ConfigError, match="public keys only"):
        IssuerKeys(trust(jwks(jwk(), {"kty": "oct", "kid": "h", "k": "c2VjcmV0c2VjcmV0"})))


@pytest.mark.parametrize("member", ["d", "p", "q", "dp", "dq", "qi", "oth", "k"])
def test_a_private_member_refuses_the_whole_fetched_jwks(member: str) -> None:
    fetch = Fetcher(jwks(jwk(kid="k-2"), jwk(**{member: "AQAB"})))
    keys = IssuerKeys(trust("https://idp.example.test/certs"), fetch=fetch)
    with pytest.raises(IdpKeysUnavailable, match="public keys only") as info:
        keys.key("k-2", "RS256")
    assert "AQAB" not in str(info.value)


def test_without_kid_the_single_fitting_key_is_used() -> None:
    keys = IssuerKeys(trust(jwks(jwk(kid=None), jwk("P-256", kid=None)), algorithms=("RS256",)))
    assert keys.key(None, "RS256").key_type == "RSA"


def test_without_kid_two_fitting_keys_are_refused() -> None:
    keys = IssuerKeys(trust(jwks(jwk(kid="a"), jwk(kid="b"))))
    refused(lambda: keys.key(None, "RS256"), "unknown_key")


def test_without_kid_no_fitting_key_is_refused() -> None:
    keys = IssuerKeys(trust(jwks(jwk("P-256")), algorithms=("RS256", "ES384")))
    refused(lambda: keys.key(None, "ES384"), "unknown_key")


def test_a_kid_shared_by_a_signing_and_an_encryption_key_picks_the_signing_one() -> None:
    keys = IssuerKeys(trust(jwks(jwk("RSA-1024", use="enc"), jwk(use="sig"))))
    assert keys.key("k-1", "RS256").key.key_size == 2048


# --- the cache ---------------------------------------------------------------------------------


def test_an_unknown_kid_refetches_once_per_cooldown(clock: ManualClock) -> None:
    fetch = Fetcher(jwks(jwk()))
    keys = IssuerKeys(trust("https://x.test/c", unknown_kid_cooldown=30), fetch=fetch, clock=clock)
    keys.key("k-1", "RS256")
    clock.now += 31
    for _ in range(50):  # a flood of made-up kids
        refused(lambda: keys.key("made-up", "RS256"), "unknown_key")
    assert fetch.calls == 2
    clock.now += 31
    refused(lambda: keys.key("made-up", "RS256"), "unknown_key")
    assert fetch.calls == 3


def test_a_rotated_key_is_picked_up_at_once(clock: ManualClock) -> None:
    fetch = Fetcher(jwks(jwk()))
    keys = IssuerKeys(trust("https://x.test/c", unknown_kid_cooldown=30), fetch=fetch, clock=clock)
    keys.key("k-1", "RS256")
    clock.now += 31
    fetch.body = jwks(jwk(), jwk("RSA", kid="k-2"))
    assert keys.key("k-2", "RS256").key_id == "k-2" and fetch.calls == 2


def test_an_unknown_kid_while_the_jwks_fails_is_unavailable_not_rejected(
    clock: ManualClock,
) -> None:
    fetch = Fetcher(jwks(jwk()))
    keys = IssuerKeys(trust("https://x.test/c", unknown_kid_cooldown=30), fetch=fetch, clock=clock)
    keys.key("k-1", "RS256")
    clock.now += 31
    fetch.error = ConfigError("issuer key ring: JWKS URL answered 503")
    with pytest.raises(IdpKeysUnavailable, match="503"):  # (the IdP may have rotated)
        keys.key("k-2", "RS256")
    assert keys.key("k-1", "RS256").key_id == "k-1"  # the last good keys still answer
    fetch.error, fetch.body = None, jwks(jwk(), jwk(kid="k-2"))
    clock.now += 31
    assert keys.key("k-2", "RS256").key_id == "k-2"


def test_a_refresh_does_not_block_key(clock: ManualClock) -> None:
    fetch = Fetcher(jwks(jwk()))
    keys = IssuerKeys(trust("https://x.test/c", jwks_refresh=60), fetch=fetch, clock=clock)
    keys.key("k-1", "RS256")
    fetch.gate, fetch.entered = threading.Event(), threading.Event()
    clock.now += 61
    started = time.monotonic()
    assert keys.key("k-1", "RS256").key_id == "k-1"
    assert fetch.entered.wait(5)  # the background fetch runs, blocked on the gate
    for _ in range(20):
        clock.now += 61
        assert keys.key("k-1", "RS256").key_id == "k-1"
    assert time.monotonic() - started < 2 and fetch.calls == 2  # never two at once
    fetch.gate.set()
    idle(keys)


def test_a_failed_refresh_keeps_the_last_good_keys_and_is_logged(clock: ManualClock) -> None:
    fetch = Fetcher(jwks(jwk()))
    keys = IssuerKeys(trust("https://x.test/c", jwks_refresh=60), fetch=fetch, clock=clock)
    keys.key("k-1", "RS256")
    fetch.error = ConfigError("issuer key ring: JWKS URL answered 500")
    clock.now += 61
    with structlog.testing.capture_logs() as logs:
        keys.key("k-1", "RS256")
        idle(keys)
    assert keys.key("k-1", "RS256").key_id == "k-1"
    assert [(e["event"], e["error"]) for e in logs] == [
        ("idp_jwks_fetch_failed", "issuer key ring: JWKS URL answered 500")
    ]


def test_a_bad_jwks_at_a_refresh_keeps_the_old_keys_and_its_body_is_not_logged(
    clock: ManualClock,
) -> None:
    fetch = Fetcher(jwks(jwk()))
    keys = IssuerKeys(trust("https://x.test/c", jwks_refresh=60), fetch=fetch, clock=clock)
    keys.key("k-1", "RS256")
    fetch.body = '{"keys": "not-a-list-SENTINEL"}'
    clock.now += 61
    with structlog.testing.capture_logs() as logs:
        keys.key("k-1", "RS256")
        idle(keys)
    assert keys.key("k-1", "RS256").key_id == "k-1"
    assert logs[0]["event"] == "idp_jwks_fetch_failed" and "SENTINEL" not in str(logs)


def test_a_failed_refresh_is_retried_after_the_cooldown_not_at_every_call(
    clock: ManualClock,
) -> None:
    fetch = Fetcher(jwks(jwk()))
    t = trust("https://x.test/c", jwks_refresh=60, unknown_kid_cooldown=10)
    keys = IssuerKeys(t, fetch=fetch, clock=clock)
    keys.key("k-1", "RS256")
    fetch.error = OSError("down")
    clock.now += 61
    for _ in range(5):
        keys.key("k-1", "RS256")
        idle(keys)
    assert fetch.calls == 2
    clock.now += 10
    keys.key("k-1", "RS256")
    idle(keys)
    assert fetch.calls == 3


def test_no_keys_and_a_failing_fetch_is_unavailable_then_recovers(clock: ManualClock) -> None:
    fetch = Fetcher(jwks(jwk()))
    fetch.error = ConfigError("issuer key ring: cannot fetch JWKS URL: timed out")
    source = trust("https://x.test/c", unknown_kid_cooldown=30)
    keys = IssuerKeys(source, fetch=fetch, clock=clock)
    with pytest.raises(IdpKeysUnavailable, match="timed out"):
        keys.key("k-1", "RS256")
    for _ in range(20):  # (unauthenticated requests naming this issuer: no fetch each)
        with pytest.raises(IdpKeysUnavailable):
            keys.key("k-1", "RS256")
    assert fetch.calls == 1
    clock.now += 31  # the cooldown: asked again
    fetch.error = None
    assert keys.key("k-1", "RS256").key_id == "k-1" and fetch.calls == 2


def test_concurrent_first_uses_share_one_fetch() -> None:
    fetch = Fetcher(jwks(jwk()))
    fetch.gate = threading.Event()
    keys = IssuerKeys(trust("https://x.test/c"), fetch=fetch)
    found: list[str | None] = []
    threads = [
        threading.Thread(target=lambda: found.append(keys.key("k-1", "RS256").key_id))
        for _ in range(10)
    ]
    for thread in threads:
        thread.start()
    assert fetch.entered.wait(5)
    fetch.gate.set()
    for thread in threads:
        thread.join(5)
    assert found == ["k-1"] * 10 and fetch.calls == 1


def test_a_missing_file_is_unavailable_not_rejected(tmp_path: Path) -> None:
    keys = IssuerKeys(trust(str(tmp_path / "nope.json")))
    with pytest.raises(IdpKeysUnavailable, match="cannot read"):
        keys.key("k-1", "RS256")


def test_inline_keys_are_never_fetched_again(clock: ManualClock) -> None:
    keys = IssuerKeys(trust(jwks(jwk()), jwks_refresh=1), clock=clock)
    clock.now += 3600
    refused(lambda: keys.key("k-2", "RS256"), "unknown_key")
    assert keys._thread is None and keys._attempts == 0


# --- the keyring -------------------------------------------------------------------------------


def test_the_keyring_finds_each_issuers_own_keys() -> None:
    other = IdpTrust(issuer="https://other.test", audience=("c",), jwks=jwks(jwk(kid="o-1")))
    ring = IssuerKeyring(
        Idps((trust("https://x.test/c"), other)), fetchers={ISS: Fetcher(jwks(jwk()))}
    )
    assert ring.key(ISS, "k-1", "RS256").key_id == "k-1"
    assert ring.key("https://other.test", "o-1", "RS256").key_id == "o-1"
    refused(lambda: ring.key("https://other.test", "k-1", "RS256"), "unknown_key")


def test_an_unknown_issuer_is_refused() -> None:
    ring = IssuerKeyring(Idps((trust(jwks(jwk())),)))
    with pytest.raises(IdpTokenRejected) as info:
        ring.key("https://evil.test", "k-1", "RS256")
    assert (info.value.code, info.value.reason) == ("invalid_issuer", "unknown_issuer")


def test_close_waits_a_bounded_time_for_a_stuck_fetch(clock: ManualClock) -> None:
    fetch = Fetcher(jwks(jwk()))
    ring = IssuerKeyring(
        Idps((trust("https://x.test/c", jwks_refresh=60),)), fetchers={ISS: fetch}, clock=clock
    )
    ring.key(ISS, "k-1", "RS256")
    fetch.gate = threading.Event()
    clock.now += 61
    ring.key(ISS, "k-1", "RS256")
    started = time.monotonic()
    ring.close(timeout=0.2)
    assert time.monotonic() - started < 2
    fetch.gate.set()
    idle(ring.issuers[ISS])
    clock.now += 61
    ring.key(ISS, "k-1", "RS256")  # closed: no new refresh starts
    assert ring.issuers[ISS]._thread is None and fetch.calls == 2


# --- live: a JWKS URL over HTTPS with a throw-away CA ------------------------------------------


@pytest.fixture
def jwks_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTPS server of ``jwks(jwk())``, its certificate signed by a new CA: (url, CA file)."""
    pki = make_pki(tmp_path / "pki")
    body = jwks(jwk()).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    https = HttpsServer(Handler, pki)
    try:
        yield https.url("/certs"), pki.ca
    finally:
        https.close()


def test_a_jwks_url_is_fetched_with_the_entrys_ca_file(jwks_server: tuple[str, Path]) -> None:
    url, ca = jwks_server
    ring = IssuerKeyring(Idps((trust(url, ca_file=ca),)))
    assert ring.key(ISS, "k-1", "RS256").key_id == "k-1"
    ring.close()


def test_without_ca_file_the_same_server_is_refused(
    jwks_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    keys = IssuerKeys(trust(jwks_server[0]))
    with pytest.raises(IdpKeysUnavailable, match="cannot fetch JWKS URL"):
        keys.key("k-1", "RS256")


# --- the worker's apply path: never waits on a fetch --------------------------------------------


def test_without_waiting_no_keys_yet_is_unavailable_while_they_are_fetched_behind() -> None:
    fetch = Fetcher(jwks(jwk()))
    fetch.gate = threading.Event()  # a provider that takes its time
    keys = IssuerKeys(trust("https://x.test/c"), fetch=fetch)
    with pytest.raises(IdpKeysUnavailable):
        keys.key("k-1", "RS256", wait=False)  # answered at once: the fetch runs behind
    assert fetch.entered.wait(5)
    fetch.gate.set()
    idle(keys)
    assert keys.key("k-1", "RS256", wait=False).key_id == "k-1"


def test_without_waiting_a_new_kid_refetches_behind_once_per_cooldown(clock: ManualClock) -> None:
    fetch = Fetcher(jwks(jwk()))
    keys = IssuerKeys(trust("https://x.test/c", unknown_kid_cooldown=30), fetch=fetch, clock=clock)
    keys.key("k-1", "RS256")
    clock.now += 31
    fetch.body = jwks(jwk(), jwk("RSA", kid="k-2"))
    with pytest.raises(IdpKeysUnavailable):
        keys.key("k-2", "RS256", wait=False)
    idle(keys)
    assert keys.key("k-2", "RS256", wait=False).key_id == "k-2"
    assert fetch.calls == 2
    refused(lambda: keys.key("made-up", "RS256", wait=False), "unknown_key")  # (cooldown)
    assert fetch.calls == 2


def test_warm_fetches_in_the_background_before_the_first_token() -> None:
    fetch = Fetcher(jwks(jwk()))
    ring = IssuerKeyring(Idps((trust("https://x.test/c"),)), fetchers={ISS: fetch})
    ring.warm()
    idle(ring.issuers[ISS])
    assert fetch.calls == 1
    assert ring.without_waiting().key(ISS, "k-1", "RS256").key_id == "k-1"
