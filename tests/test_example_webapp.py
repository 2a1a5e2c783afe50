"""The example web app (``examples/webapp``) through Starlette's test client and a real Redis:
its pages and static files, the demo users (development only), the protected API, and live
sign-out of its server-sent events and WebSocket when the session is revoked elsewhere.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx2 as httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from web_harness import ORIGIN, Browser, app_settings, web_settings

from examples.webapp.app import DEMO_USERS, create_app
from sessionsvc.integrations.live import REVOKED_CLOSE_CODE

pytestmark = pytest.mark.redis

WAIT = 20.0  # seconds: a generous bound for a revocation to reach a live connection
CSP = "default-src 'self'"


def make_app(redis_url: str, env: str = "development", **kwargs: Any) -> FastAPI:
    return create_app(app_settings(redis_url, env=env), web_settings(), **kwargs)


@pytest.fixture
def client(redis_url: str) -> Iterator[TestClient]:
    # a short heartbeat: a stream being read never blocks long without a line to look at
    with TestClient(make_app(redis_url, heartbeat=0.2), base_url=ORIGIN) as c:
        yield c


def login(client: TestClient, user: str = "alice", device: str = "laptop") -> Browser:
    browser = Browser(client)
    response = browser.login(user, DEMO_USERS[user], device=device)
    assert response.status_code == 200, response.text
    return browser


@contextmanager
def using(browser: Browser) -> Iterator[TestClient]:
    """The shared client with ``browser``'s cookies, for the test client's stream and
    WebSocket calls (which ``Browser.request`` does not wrap); the jar is kept afterwards."""
    client = browser.client
    client.cookies = browser.jar
    try:
        yield client
    finally:
        browser.jar = client.cookies
        client.cookies = httpx.Cookies()


def sse_events(lines: Iterator[str]) -> Iterator[tuple[str, Any]]:
    """``(event name or "message", decoded data)`` of a ``text/event-stream``'s lines."""
    name, data = "message", list[str]()
    for line in lines:
        if line == "":
            if data:
                yield name, json.loads("\n".join(data))
            name, data = "message", []
        elif line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data.append(line.removeprefix("data: "))


def until_revoked(events: Iterator[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """The events up to ``revoked`` (heartbeats before it), or up to ``WAIT`` seconds' worth:
    the heartbeats keep the reading from blocking for long, so the deadline is checked."""
    seen, deadline = [], time.monotonic() + WAIT
    for event in events:
        seen.append(event)
        if event[0] == "revoked" or time.monotonic() > deadline:
            break
    return seen


def session_id(browser: Browser) -> str:
    sid: str = browser.get("/api/me").json()["session_id"]
    return sid


def assert_security_headers(response: Any) -> None:
    assert response.headers["content-security-policy"].startswith(CSP)
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"


# -- pages and static files ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "media_type", "marker"),
    [
        ("/", "text/html", 'data-page="home"'),
        ("/sessions", "text/html", 'data-page="sessions"'),
        ("/static/app.js", "text/javascript", "EventSource"),
        ("/static/style.css", "text/css", "#signed-out"),
    ],
)
def test_pages_and_static_files_carry_the_security_headers(
    client: TestClient, path: str, media_type: str, marker: str
) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == media_type
    assert marker in response.text
    assert_security_headers(response)


def test_api_answers_and_refusals_carry_the_security_headers_too(client: TestClient) -> None:
    refused = client.get("/api/me")
    assert refused.status_code == 401
    assert_security_headers(refused)
    assert_security_headers(login(client).get("/api/me"))


@pytest.mark.parametrize("name", ["index.html", "../app.py", "%2e%2e%2fapp.py", "nope.js"])
def test_only_the_two_static_files_are_served(client: TestClient, name: str) -> None:
    response = client.get(f"/static/{name}")
    assert response.status_code == 404
    assert "create_app" not in response.text


def test_the_app_is_ready_once_its_validator_follows(client: TestClient) -> None:
    response = client.get("/readyz")
    assert (response.status_code, response.text) == (200, "ready")


def test_the_app_serves_its_validator_metrics(client: TestClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert 'sessionsvc_validator_following{validator="default"} 1.0' in response.text


def test_the_pages_load_no_inline_script_or_style(client: TestClient) -> None:
    """Under ``default-src 'self'`` an inline script or style would not run."""
    for path in ("/", "/sessions"):
        html = client.get(path).text
        assert "<script>" not in html and "<style" not in html and " style=" not in html
        assert 'src="/static/app.js"' in html and 'href="/static/style.css"' in html


# -- the demo users ------------------------------------------------------------------------------


def test_the_demo_users_log_in_in_development(client: TestClient) -> None:
    for user in DEMO_USERS:
        browser = login(client, user)
        me = browser.get("/api/me")
        assert me.status_code == 200
        assert me.json() == {
            "sub": user,
            "session_id": me.json()["session_id"],
            "roles": ["demo"],
        }


def test_a_wrong_demo_password_is_401(client: TestClient) -> None:
    response = Browser(client).login("alice", "bob-demo-password")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_credentials"
    assert not response.headers.get_list("set-cookie")


def test_there_are_no_demo_users_in_production(redis_url: str) -> None:
    with TestClient(make_app(redis_url, env="production"), base_url=ORIGIN) as c:
        for user, password in DEMO_USERS.items():
            response = Browser(c).login(user, password)
            assert response.status_code == 401
            assert response.json()["error"] == "invalid_credentials"
            assert not response.headers.get_list("set-cookie")


def test_the_api_needs_a_session(client: TestClient) -> None:
    anonymous = client.get("/api/me")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert client.get("/api/events").status_code == 401
    browser = login(client)
    assert browser.get("/api/me").json()["sub"] == "alice"
    assert browser.post("/auth/logout").status_code == 200
    assert browser.get("/api/me").status_code == 401


def test_the_sessions_list_names_the_devices(client: TestClient) -> None:
    laptop, phone = login(client, device="laptop"), login(client, device="phone")
    listed = laptop.get("/auth/sessions").json()["sessions"]
    assert sorted((s["device"], s["current"]) for s in listed) == [
        ("laptop", True),
        ("phone", False),
    ]
    assert phone.get("/api/me").status_code == 200


# -- live sign-out: server-sent events -----------------------------------------------------------


def test_events_greet_then_end_with_revoked_when_signed_out_elsewhere(
    client: TestClient,
) -> None:
    laptop, phone = login(client, device="laptop"), login(client, device="phone")
    phone_sid = session_id(phone)
    with using(phone) as c, c.stream("GET", "/api/events") as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert stream.headers["cache-control"] == "no-store"
        assert_security_headers(stream)
        lines = stream.iter_lines()
        events = sse_events(lines)
        assert next(events) == ("message", {"hello": "alice"})
        # the laptop signs the phone out, while the phone's stream is open
        deleted = laptop.request("DELETE", f"/auth/sessions/{phone_sid}")
        assert deleted.status_code == 200, deleted.text
        seen = until_revoked(events)
        assert seen[-1] == ("revoked", {"reason": "session revoked"}), seen
        assert all(event == ("message", {"ping": "ok"}) for event in seen[:-1])
        assert list(lines) == []  # and the stream ended
    assert phone.get("/api/me").status_code == 401
    assert laptop.get("/api/me").status_code == 200


def test_sign_out_everywhere_ends_every_stream_of_the_user(client: TestClient) -> None:
    laptop, phone = login(client, device="laptop"), login(client, device="phone")
    with using(phone) as c, c.stream("GET", "/api/events") as stream:
        lines = stream.iter_lines()
        events = sse_events(lines)
        assert next(events) == ("message", {"hello": "alice"})
        assert laptop.post("/auth/logout-all").status_code == 200
        seen = until_revoked(events)
        assert seen[-1] == ("revoked", {"reason": "user signed out everywhere"}), seen
        assert list(lines) == []


# -- live sign-out: the WebSocket ----------------------------------------------------------------


WS_URL = ORIGIN.replace("https://", "wss://") + "/ws"  # (wss: the jar sends Secure cookies)


def ws_headers() -> dict[str, str]:
    return {"origin": ORIGIN}


def test_the_websocket_is_closed_with_4001_when_its_session_is_revoked(
    client: TestClient,
) -> None:
    laptop, phone = login(client, device="laptop"), login(client, device="phone")
    phone_sid = session_id(phone)
    with using(phone) as c, c.websocket_connect(WS_URL, headers=ws_headers()) as ws:
        assert ws.receive_json() == {"hello": "alice"}
        ws.send_text("hi")
        assert ws.receive_json() == {"echo": "hi"}
        assert laptop.request("DELETE", f"/auth/sessions/{phone_sid}").status_code == 200
        closed = ws.receive()  # blocks until the server closes it (the revocation)
    assert closed == {
        "type": "websocket.close",
        "code": REVOKED_CLOSE_CODE,
        "reason": "session revoked",
    }


def test_a_websocket_handshake_from_another_origin_is_refused(client: TestClient) -> None:
    phone = login(client, device="phone")
    with using(phone) as c:
        for origin in (
            "https://evil.example",
            "null",
            "http://testserver",
            "https://testserver:8443",
        ):
            with pytest.raises(WebSocketDisconnect) as refused:
                c.websocket_connect(WS_URL, headers={"origin": origin}).__enter__()
            assert refused.value.code == 1008
            assert refused.value.reason == "csrf"
        cross_site = {"origin": ORIGIN, "sec-fetch-site": "cross-site"}  # Fetch Metadata wins
        with pytest.raises(WebSocketDisconnect) as refused:
            c.websocket_connect(WS_URL, headers=cross_site).__enter__()
        assert (refused.value.code, refused.value.reason) == (1008, "csrf")
        with c.websocket_connect(WS_URL, headers=ws_headers()) as ws:  # its own origin: fine
            assert ws.receive_json() == {"hello": "alice"}


def test_a_websocket_without_a_session_is_refused(client: TestClient) -> None:
    with pytest.raises(WebSocketDisconnect) as refused:
        client.websocket_connect(WS_URL, headers=ws_headers()).__enter__()
    assert refused.value.code == 1008
