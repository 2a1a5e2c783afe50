"""What is Django's own: ``require_session`` and ``request.principal``, the middleware,
Django's ``CsrfViewMiddleware`` alongside, settings from the settings module, the feed per
process, ASGI (``AsyncClient``).

The web contract is ``tests/web_contract.py`` (``tests/test_web_contract.py`` runs it against
this adapter); the test project is ``web_apps.django_app`` (Django configured once per session,
``CsrfViewMiddleware`` enabled).
"""

import asyncio
import json
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest
from django.http import HttpRequest, JsonResponse
from django.urls import path
from web_apps import DJANGO_MIDDLEWARE, configure_django, django_app, django_urls
from web_harness import ORIGIN, USERS, Browser, app_settings, aticks, ticks

from sessionsvc.integrations import django as dj
from sessionsvc.integrations.web.http import Problem

pytestmark = pytest.mark.redis
configure_django()

SEEN: list[Any] = []
CLOSED = threading.Event()  # the event stream's generator was closed


def extra_urls(auth: dj.Auth) -> Any:
    """The test routes and a few more: an undecorated view (the middleware's principal), a
    view raising ``Problem``, an optional POST view (Django's CSRF applies)."""
    urlconf = django_urls(auth)

    def plain(request: HttpRequest) -> JsonResponse:
        SEEN.append(request.principal)  # type: ignore[attr-defined]
        return JsonResponse({"ok": True})

    def teapot(request: HttpRequest) -> JsonResponse:
        raise Problem(418, "teapot", "short and stout")

    @dj.require_session()
    def who(request: HttpRequest) -> JsonResponse:
        """Who."""
        return JsonResponse({"sub": request.principal.sub})  # type: ignore[attr-defined]

    @auth.require_session(optional=True)
    def maybe_post(request: HttpRequest) -> JsonResponse:
        return JsonResponse({"ok": True})

    @auth.require_session()
    def events(request: HttpRequest) -> Any:
        return auth.sse(request.principal, ticks(CLOSED))  # type: ignore[attr-defined]

    @auth.require_session()
    def async_events(request: HttpRequest) -> Any:
        return auth.sse(request.principal, aticks(CLOSED))  # type: ignore[attr-defined]

    urlconf.urlpatterns += [
        path("plain", plain),
        path("teapot", teapot),
        path("who", who),
        path("maybe-post", maybe_post),
        path("events", events),
        path("async-events", async_events),
    ]
    return urlconf


@pytest.fixture
def app(redis_url: str) -> Iterator[Any]:
    SEEN.clear()
    CLOSED.clear()
    with django_app(redis_url, urls=extra_urls) as handler:
        yield handler


@pytest.fixture
def client(app: Any) -> Iterator[httpx.Client]:
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url=ORIGIN) as c:
        yield c


def test_the_feed_starts_with_the_first_request_of_the_process(app: Any, client: Any) -> None:
    auth: dj.Auth = app.sessionsvc
    assert auth._started is None  # building the project starts nothing (a forking master)
    assert client.get("/.well-known/jwks.json").status_code == 200
    assert auth._started == os.getpid()
    assert auth.validator.stale_after > time.time()  # synced: the view is fresh


def test_the_middleware_puts_the_principal_or_none(client: Any) -> None:
    b = Browser(client)
    assert b.get("/plain").status_code == 200
    b.login()
    assert b.get("/plain").status_code == 200
    token = Browser(client).login(transport="bearer").json()["access_token"]
    assert client.get("/plain", headers={"authorization": "Bearer not.a.token"}).status_code == 200
    assert client.get("/plain", headers={"authorization": f"Bearer {token}"}).status_code == 200
    assert SEEN[0] is None and SEEN[1].sub == "alice" and SEEN[1].transport == "cookie"
    assert SEEN[2] is None  # a bad token on an unprotected view: no principal, no refusal
    assert SEEN[3].transport == "bearer"


def test_the_decorator_keeps_the_view_and_finds_the_projects_auth(app: Any, client: Any) -> None:
    b = Browser(client)  # (/who: the module-level decorator, the middleware's Auth)
    assert b.get("/who").status_code == 401
    b.login("bob")
    assert b.get("/who").json() == {"sub": "bob"}

    @dj.require_session()
    def documented(request: HttpRequest) -> None:
        """Documented."""

    assert documented.__doc__ == "Documented." and documented.__name__ == "documented"
    assert getattr(documented, "csrf_exempt", False)  # (sessionsvc's CSRF stands in)

    async def view(request: HttpRequest) -> None: ...

    with pytest.raises(TypeError, match="async"):
        dj.require_session()(view)


def test_behind_the_middleware_a_protected_view_validates_the_token_once(
    app: Any, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = Browser(client).login(transport="bearer").json()["access_token"]
    validator = app.sessionsvc.validator
    calls: list[str] = []
    validate = validator.validate
    monkeypatch.setattr(validator, "validate", lambda t, **kw: calls.append(t) or validate(t, **kw))
    bearer = {"authorization": f"Bearer {token}"}
    assert client.get("/api/me", headers=bearer).status_code == 200
    assert calls == [token]
    assert client.get("/api/admin", headers=bearer).status_code == 403  # (its requirement)


def test_a_revocation_ends_the_event_stream_and_closes_its_events(app: Any, client: Any) -> None:
    auth: dj.Auth = app.sessionsvc
    b = Browser(client)
    sid = b.login().json()["session_id"]
    client.cookies = b.jar
    with client.stream("GET", "/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert stream.headers["cache-control"] == "no-store"
        lines = stream.iter_lines()
        assert next(lines) == "data: hello"
        assert len(auth.live) == 1
        auth.sessions.logout(sid)  # (as another node would: through the log only)
        assert "event: revoked" in lines  # (the pings until then)
        assert list(lines) == ['data: {"reason":"session revoked"}', ""]  # the end
    assert CLOSED.wait(10), "the app's event generator was not closed"
    assert len(auth.live) == 0


class MethodOverride:
    """A later middleware that changes the method (``X-HTTP-Method-Override``)."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> Any:
        override = request.headers.get("x-http-method-override")
        if override:
            request.method = override
        return self.get_response(request)


def test_a_method_changed_after_the_middleware_is_judged_again(app: Any) -> None:
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import override_settings

    with override_settings(MIDDLEWARE=[*DJANGO_MIDDLEWARE, "test_django.MethodOverride"]):
        handler = WSGIHandler()
    with httpx.Client(transport=httpx.WSGITransport(app=handler), base_url=ORIGIN) as c:
        b = Browser(c)
        b.login()
        c.cookies = b.jar  # (a cross-site page's GET: the cookies, no CSRF token)
        forged = {"x-http-method-override": "POST", "sec-fetch-site": "cross-site"}
        assert c.get("/api/things", headers=forged).status_code == 403  # judged as a POST


def test_under_wsgi_an_async_event_stream_is_refused(client: Any) -> None:
    b = Browser(client)
    b.login()
    with pytest.raises(TypeError, match="only under ASGI"):
        b.get("/async-events")


def test_a_problem_raised_in_a_view_answers_the_error_format(client: Any) -> None:
    response = client.get("/teapot")
    assert response.status_code == 418
    assert response.json() == {"error": "teapot", "error_description": "short and stout"}


def test_djangos_csrf_still_guards_the_apps_own_views(client: Any) -> None:
    """``CsrfViewMiddleware`` is on: an app view that sessionsvc does not protect (or protects
    ``optional``) needs Django's token; the auth endpoints and required views are exempt."""
    b = Browser(client)
    b.login()  # (the login endpoint: exempt, no Django token)
    assert b.post("/plain").status_code == 403  # Django's own refusal
    assert b.post("/maybe-post").status_code == 403  # optional: Django's CSRF applies
    assert b.post("/api/things").status_code == 200  # required: sessionsvc's CSRF
    assert b.post("/auth/refresh").status_code == 200
    assert b.post("/auth/logout").status_code == 200


def test_settings_come_from_the_settings_module(redis_url: str) -> None:
    from django.test import override_settings

    base = app_settings(redis_url)
    sessionsvc = {
        "ACCESS_JWKS": base.access_jwks.get_secret_value(),
        "refresh_jwks": base.refresh_jwks.get_secret_value(),
        "issuer": "https://django.example.test",
        "audience": "api.example.test",
        "redis_url": redis_url,
        "env": "production",
        "_env_file": None,
    }
    web = {"csrf_secret": "x" * 40, "prefix": "/session", "_env_file": None}
    configured = {
        "SESSIONSVC_AUTH": None,
        "SESSIONSVC": sessionsvc,
        "SESSIONSVC_WEB": web,
        "SESSIONSVC_AUTHENTICATE_USER": "web_harness.check_user",
    }
    with override_settings(**configured):
        dj._default = None
        try:
            auth = dj.get_auth()
            assert auth is dj.get_auth()  # once per process
            assert auth.settings.issuer == "https://django.example.test"
            assert auth.web.prefix == "/session"
            assert auth._check_user is not None and auth._check_user("bob", USERS["bob"]) == "bob"
            assert [p.pattern._route for p in auth.urls][:2] == ["session/login", "session/refresh"]
        finally:
            if dj._default is not None:
                dj._default.close()
            dj._default = None
    with override_settings(SESSIONSVC_AUTH="json.dumps"), pytest.raises(TypeError):
        dj.get_auth()


def test_sync_views_work_under_asgi(app: Any) -> None:
    """Django's ``AsyncClient`` (the ASGI handler): the sync middleware and views run in
    Django's sync thread; cookies round-trip through its cookie jar."""
    from django.test import AsyncClient

    async def scenario() -> list[Any]:
        c = AsyncClient(headers={"sec-fetch-site": "same-origin", "origin": ORIGIN})
        body = json.dumps({"username": "alice", "password": USERS["alice"]})
        login = await c.post("/auth/login", body, content_type="application/json", secure=True)
        csrf = login.json()["csrf_token"]
        me = await c.get("/api/me", secure=True)
        things = await c.post("/api/things", headers={"x-csrf-token": csrf}, secure=True)
        anonymous = await AsyncClient().get("/api/me", secure=True)
        return [login.status_code, me.json()["sub"], things.status_code, anonymous.status_code]

    assert asyncio.run(scenario()) == [200, "alice", 200, 401]


def test_under_asgi_an_async_event_stream_ends_on_revocation(app: Any, client: Any) -> None:
    from django.test import AsyncClient

    auth: dj.Auth = app.sessionsvc
    login = Browser(client).login(transport="bearer").json()
    bearer = {"authorization": f"Bearer {login['access_token']}"}

    async def scenario() -> list[bytes]:
        response = await AsyncClient().get("/async-events", headers=bearer, secure=True)
        assert response.status_code == 200, response.content
        chunks = aiter(response.streaming_content)
        seen = [await anext(chunks)]
        await asyncio.to_thread(auth.sessions.logout, login["session_id"])  # (another node)
        seen += [chunk async for chunk in chunks if not chunk.startswith(b"data: ping")]
        return seen

    seen = asyncio.run(scenario())
    assert seen == [b"data: hello\n\n", b'event: revoked\ndata: {"reason":"session revoked"}\n\n']
    assert CLOSED.wait(10), "the app's async events were not closed"


def test_the_example_project_protects_its_view(redis_url: str) -> None:
    """``examples/django_app``: its middleware, its URLs, its user check; the settings module's
    ``SESSIONSVC`` / ``SESSIONSVC_WEB`` dicts (here the tests' settings)."""
    import importlib

    from django.core.handlers.wsgi import WSGIHandler
    from django.test import override_settings

    from examples.django_app import settings as example

    base = app_settings(redis_url, feed_block=0.2)
    sessionsvc = {**base.model_dump(), "_env_file": None}
    for name in ("access_jwks", "refresh_jwks"):
        sessionsvc[name] = getattr(base, name).get_secret_value()
    web = {"csrf_secret": "x" * 40, "_env_file": None}
    with override_settings(
        SESSIONSVC_AUTH=None,
        SESSIONSVC=sessionsvc,
        SESSIONSVC_WEB=web,
        SESSIONSVC_AUTHENTICATE_USER=example.SESSIONSVC_AUTHENTICATE_USER,
        MIDDLEWARE=example.MIDDLEWARE,
        ROOT_URLCONF=example.ROOT_URLCONF,
    ):
        dj._default = None
        try:
            importlib.reload(importlib.import_module(example.ROOT_URLCONF))
            transport = httpx.WSGITransport(app=WSGIHandler())
            with httpx.Client(transport=transport, base_url=ORIGIN) as c:
                b = Browser(c)
                assert b.get("/api/me").status_code == 401
                assert b.login("alice", "alice-demo-password").status_code == 200
                assert b.get("/api/me").json()["sub"] == "alice"
        finally:
            if dj._default is not None:
                dj._default.close()
            dj._default = None
