"""sessionsvc.tokens.jwks_url through RingWatch: a public JWKS over verified HTTPS (a local
server with a throw-away CA), kept while the URL fails (stale-while-revalidate)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from tls_harness import HttpsServer, Pki, make_pki

from sessionsvc import Validator
from sessionsvc.errors import ConfigError
from sessionsvc.tokens.jwks_url import MAX_JWKS_BYTES, https_fetcher
from sessionsvc.tokens.keygen import generate_jwks
from sessionsvc.tokens.keys import load_jwks
from sessionsvc.tokens.ring_watch import RingWatch
from tests.conftest import make_settings


def public(*kids: str) -> str:
    """A public JWKS of new EdDSA keys with these kids."""
    ring = load_jwks(
        json.dumps({"keys": [generate_jwks("EdDSA", k)["keys"][0] for k in kids]}), ring="a"
    )
    return json.dumps(ring.public_jwks())


class Server:
    """An HTTPS server answering every GET with ``status`` and ``body``."""

    def __init__(self, pki: Pki) -> None:
        self.status = 200
        self.body = public("k-1").encode()
        self.headers: dict[str, str] = {}
        self.trickle = 0.0
        self.closing = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(server.status)
                for name, value in server.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(server.body)))
                self.end_headers()
                if server.trickle:  # a byte at a time, each within the socket timeout
                    for i in range(len(server.body)):
                        if server.closing.wait(server.trickle):
                            return
                        self.wfile.write(server.body[i : i + 1])
                        self.wfile.flush()
                else:
                    self.wfile.write(server.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.https = HttpsServer(Handler, pki)

    @property
    def url(self) -> str:
        return self.https.url("/jwks.json")

    def close(self) -> None:
        self.closing.set()
        self.https.close()


@pytest.fixture
def pki_dir(tmp_path: Path) -> Path:
    return tmp_path / "pki"


@pytest.fixture
def server(pki_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    pki = make_pki(pki_dir)
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca))  # the client trusts the test CA
    s = Server(pki)
    try:
        yield s
    finally:
        s.close()


def test_a_url_ring_is_loaded_and_a_change_picked_up(server: Server) -> None:
    watch = RingWatch(server.url, ring="access")
    assert list(watch.ring.keys) == ["k-1"]
    server.body = public("k-1", "k-2").encode()
    assert watch.reload() is True
    assert list(watch.ring.keys) == ["k-1", "k-2"]


def test_a_failing_url_keeps_the_ring(server: Server) -> None:
    watch = RingWatch(server.url, ring="access")
    server.status = 500
    assert watch.reload() is False
    assert list(watch.ring.keys) == ["k-1"] and watch.failures == 1


def test_a_redirect_is_not_followed(server: Server) -> None:
    watch = RingWatch(server.url, ring="access")
    server.status, server.headers = 302, {"location": "https://127.0.0.1:1/other"}
    assert watch.reload() is False
    assert watch.last_error is not None and "302" in watch.last_error


def test_a_body_over_the_limit_keeps_the_ring(server: Server) -> None:
    watch = RingWatch(server.url, ring="access")
    server.body = b"{" + b" " * MAX_JWKS_BYTES + b"}"
    assert watch.reload() is False
    assert list(watch.ring.keys) == ["k-1"]


def test_a_url_serving_a_private_key_is_refused(server: Server) -> None:
    server.body = json.dumps(generate_jwks("EdDSA", "k-priv")).encode()
    with pytest.raises(ConfigError, match="public keys only"):
        RingWatch(server.url, ring="access")


def test_a_verify_only_private_key_is_refused_too(server: Server) -> None:
    doc = generate_jwks("EdDSA", "k-priv")
    doc["keys"][0]["key_ops"] = ["verify"]
    server.body = json.dumps(doc).encode()
    with pytest.raises(ConfigError, match="public keys only"):
        RingWatch(server.url, ring="access")


def test_an_untrusted_certificate_is_refused(
    server: Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    other = make_pki(tmp_path / "other", name="other")
    monkeypatch.setenv("SSL_CERT_FILE", str(other.ca))
    with pytest.raises(ConfigError, match="cannot fetch JWKS URL"):
        RingWatch(server.url, ring="access")


def test_plain_http_is_refused() -> None:
    with pytest.raises(ConfigError, match="must be https"):
        RingWatch("http://127.0.0.1:1/jwks.json", ring="access")


def test_a_validator_follows_a_url_ring(server: Server) -> None:
    validator = Validator(make_settings(access_jwks=server.url))
    server.body = public("k-9").encode()
    assert validator.reload_keys() is True
    assert list(validator.verifier.ring.keys) == ["k-9"]


def test_a_trickling_server_cannot_hold_a_reload_past_its_deadline(server: Server) -> None:
    """The socket timeout bounds each read; the whole answer has a deadline (2 × timeout)."""
    watch = RingWatch(server.url, ring="access")
    watch._fetch = https_fetcher(server.url, "access", timeout=0.2)  # (a short deadline: 0.4 s)
    server.trickle = 0.1  # ~3 s for the body, each byte well within the 0.2 s timeout
    assert watch.reload() is False
    assert "too slow" in (watch.last_error or "") and list(watch.ring.keys) == ["k-1"]


def test_a_cafile_is_trusted_instead_of_the_system_cas(
    server: Server, pki_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With ``cafile`` the test CA is trusted though ``SSL_CERT_FILE`` names another CA."""
    other = make_pki(tmp_path / "other", name="other")
    monkeypatch.setenv("SSL_CERT_FILE", str(other.ca))
    with pytest.raises(ConfigError, match="cannot fetch JWKS URL"):
        https_fetcher(server.url, "idp")()
    assert json.loads(https_fetcher(server.url, "idp", cafile=pki_dir / "test-ca.pem")())["keys"]


def test_a_cafile_of_another_ca_is_refused(server: Server, tmp_path: Path) -> None:
    other = make_pki(tmp_path / "other", name="other")
    with pytest.raises(ConfigError, match="cannot fetch JWKS URL"):
        https_fetcher(server.url, "idp", cafile=other.ca)()


def test_an_unreadable_cafile_is_refused_at_once(tmp_path: Path) -> None:
    bad = tmp_path / "not-pem.pem"
    bad.write_text("not a certificate")
    for cafile in (tmp_path / "missing.pem", bad):
        with pytest.raises(ConfigError, match="cannot load the CA bundle"):
            https_fetcher("https://127.0.0.1:1/jwks.json", "idp", cafile=cafile)
