"""What is Flask's own: the decorator on ``flask.g``, the error handler, the feed per process,
live sign-out of server-sent events (a thread pumps the app's events).

The web contract is ``tests/web_contract.py`` (``tests/test_web_contract.py`` runs it against
this adapter); the test app is ``web_apps.flask_app``.
"""

import importlib
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest
from flask import Flask, Response, g
from flask import request as flask_request
from web_apps import flask_app
from web_harness import CSRF_SECRET, ORIGIN, Browser, ticks

from sessionsvc import generate_jwks
from sessionsvc.integrations.flask import Auth, Principal
from sessionsvc.integrations.web.http import Problem

pytestmark = pytest.mark.redis


def client_for(app: Flask) -> httpx.Client:
    return httpx.Client(transport=httpx.WSGITransport(app=app), base_url=ORIGIN)


@pytest.fixture
def app(redis_url: str) -> Iterator[Flask]:
    app = flask_app(redis_url)
    yield app
    app.extensions["sessionsvc"].close()


def test_the_feed_starts_with_the_first_request_of_the_process(app: Flask) -> None:
    auth: Auth = app.extensions["sessionsvc"]
    assert auth._started is None  # init_app starts nothing (a forking server's master)
    with client_for(app) as c:
        assert c.get("/.well-known/jwks.json").status_code == 200
    assert auth._started == os.getpid()
    assert auth.validator.stale_after > time.time()  # synced: the view is fresh


def test_a_forked_worker_follows_the_log_anew(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """A feed started before a fork (its thread stays in the parent) is started anew by the
    child's first request (``os.getpid`` faked: the child's)."""
    auth: Auth = app.extensions["sessionsvc"]
    auth.start()
    parent_feed = auth.validator._feed
    monkeypatch.setattr("sessionsvc.integrations.sync.os.getpid", lambda: -7)
    with client_for(app) as c:
        b = Browser(c)
        sid = b.login().json()["session_id"]
        assert auth._started == -7 and auth.validator._feed is not parent_feed
        assert b.get("/api/me").status_code == 200
        auth.sessions.logout(sid)  # through the log only: the new feed brings it
        deadline = time.time() + 5
        while b.get("/api/me").status_code == 200 and time.time() < deadline:
            time.sleep(0.02)
        assert b.get("/api/me").status_code == 401


def test_the_decorator_keeps_the_view_and_sets_g(app: Flask) -> None:
    auth: Auth = app.extensions["sessionsvc"]
    seen: list[Principal | None] = []

    @app.get("/api/who")
    @auth.required(optional=True)
    def who() -> dict[str, str]:
        """Who."""
        seen.append(g.principal)
        return {}

    assert app.view_functions["who"].__doc__ == "Who."
    with client_for(app) as c:
        b = Browser(c)
        assert b.get("/api/who").status_code == 200
        b.login()
        assert b.get("/api/who").status_code == 200
    assert seen[0] is None and seen[1] is not None and seen[1].sub == "alice"


def test_a_problem_raised_in_a_view_answers_the_error_format(app: Flask) -> None:
    auth: Auth = app.extensions["sessionsvc"]

    @app.get("/api/manual")
    def manual() -> dict[str, str]:
        principal = auth.authenticate()  # raises Problem
        assert principal is not None
        return {"sub": principal.sub}

    @app.get("/api/teapot")
    def teapot() -> Any:
        raise Problem(418, "teapot", "short and stout")

    with client_for(app) as c:
        response = c.get("/api/manual")
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
        assert response.json() == {
            "error": "unauthenticated",
            "error_description": "authentication required",
        }
        assert c.get("/api/teapot").json()["error"] == "teapot"


def test_the_body_read_for_the_csrf_token_can_be_read_again(app: Flask) -> None:
    auth: Auth = app.extensions["sessionsvc"]

    @app.post("/api/twice")
    @auth.required()
    def twice() -> Any:
        again = auth.authenticate()  # reads the (cached) body again
        assert again is not None
        return {"form": flask_request.form.to_dict(), "raw": flask_request.get_data(as_text=True)}

    with client_for(app) as c:
        b = Browser(c)
        b.login()
        token, b.csrf = b.csrf, None
        response = b.post("/api/twice", data={"csrf_token": token, "x": "1"})
        assert response.status_code == 200, response.text
        assert response.json()["form"] == {"csrf_token": token, "x": "1"}
        assert "x=1" in response.json()["raw"]


def test_async_views_and_checks_are_refused_at_once(app: Flask, redis_url: str) -> None:
    auth: Auth = app.extensions["sessionsvc"]

    async def view() -> None: ...

    async def check(username: str, password: str) -> None: ...

    with pytest.raises(TypeError, match="async"):
        auth.required()(view)
    with pytest.raises(TypeError, match="async"):
        Auth(auth.settings, auth.web, authenticate_user=check)


# -- live sign-out: the app's events are closed however the stream ends --------------------------


def live_app(redis_url: str, closed: threading.Event) -> Flask:
    """An app whose event stream's generator sets ``closed`` when it is closed."""
    app = flask_app(redis_url)
    auth: Auth = app.extensions["sessionsvc"]

    @app.get("/api/events")
    @auth.required()
    def events() -> Response:
        return auth.sse(g.principal, ticks(closed))

    return app


@pytest.mark.parametrize("ended_by", ["client", "revocation"])
def test_the_events_of_an_ended_stream_are_closed(redis_url: str, ended_by: str) -> None:
    closed = threading.Event()
    app = live_app(redis_url, closed)
    auth: Auth = app.extensions["sessionsvc"]
    try:
        with client_for(app) as c:
            phone = Browser(c)
            phone_sid = phone.login().json()["session_id"]
            c.cookies = phone.jar
            with c.stream("GET", "/api/events") as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                lines = stream.iter_lines()
                assert next(lines) == "data: hello"
                assert len(auth.live) == 1
                if ended_by == "revocation":
                    c.cookies = httpx.Cookies()
                    laptop = Browser(c)
                    laptop.login()
                    laptop.request("DELETE", f"/auth/sessions/{phone_sid}")
                    assert "event: revoked" in lines  # (the pings until then)
                    assert list(lines) == ['data: {"reason":"session revoked"}', ""]  # the end
            assert closed.wait(10), "the app's event generator was not closed"
            assert len(auth.live) == 0
    finally:
        auth.close()


def test_a_revocation_from_another_node_ends_the_stream(redis_url: str) -> None:
    closed = threading.Event()
    app = live_app(redis_url, closed)
    auth: Auth = app.extensions["sessionsvc"]
    try:
        with client_for(app) as c:
            b = Browser(c)
            sid = b.login().json()["session_id"]
            c.cookies = b.jar
            with c.stream("GET", "/api/events") as stream:
                lines = stream.iter_lines()
                assert next(lines) == "data: hello"
                auth.sessions.logout(sid)  # (as another node would: through the log only)
                assert "event: revoked" in lines
            assert closed.wait(10)
    finally:
        auth.close()


def test_the_example_app_protects_its_view(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``examples/flask_app.py`` as written, its settings from the environment."""
    environment = {
        "ISSUER": "https://auth.example.test",
        "AUDIENCE": "api.example.test",
        "REDIS_URL": redis_url,
        "ACCESS_JWKS": json.dumps(generate_jwks("EdDSA", "example-access")),
        "REFRESH_JWKS": json.dumps(generate_jwks("EdDSA", "example-refresh")),
        "WEB_CSRF_SECRET": CSRF_SECRET,
    }
    for name, value in environment.items():
        monkeypatch.setenv(f"SESSIONSVC_{name}", value)
    example = importlib.import_module("examples.flask_app")
    try:
        with client_for(example.app) as c:
            b = Browser(c)
            assert b.get("/api/me").status_code == 401
            assert b.login("alice", "alice-demo-password").status_code == 200
            assert b.get("/api/me").json()["sub"] == "alice"
    finally:
        example.auth.close()
        sys.modules.pop("examples.flask_app", None)
