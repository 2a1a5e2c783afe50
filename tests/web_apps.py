"""The same test app on every adapter: the routes the web contract tests call.

Each adapter builds an app with the auth endpoints and the protected routes ``/api/me`` (GET),
``/api/things`` (POST), ``/api/admin`` (scope ``admin``), ``/api/maybe`` (optional),
``/api/echo`` (POST: the JSON body, read again by the view after the CSRF check read it) and
``/api/purge`` (an unusual method). ``ADAPTERS[name].open(redis_url, web, **auth_kwargs)`` gives
a ``WebApp``: an httpx-style client on ``https://testserver`` and the adapter's ``Auth``; the
validator follows the revocation log while it is open. (No ``from __future__ import
annotations``: FastAPI reads the routes' annotations, which name local objects.)
"""

import asyncio
import json
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import wraps
from typing import Annotated, Any

import httpx2 as httpx
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient
from flask import Flask, g
from flask import request as flask_request
from web_harness import ORIGIN, app_settings, check_user, web_settings

from sessionsvc.integrations import django as dj
from sessionsvc.integrations import fastapi as fa
from sessionsvc.integrations import flask as fl
from sessionsvc.integrations.web.principal import Principal


@dataclass
class WebApp:
    """One running test app: ``client`` (httpx-style, on ``https://testserver``), ``auth``."""

    client: Any
    auth: Any
    app: Any


def _auth(cls: Any, redis_url: str, web: dict[str, Any] | None, kwargs: dict[str, Any]) -> Any:
    return cls(
        app_settings(redis_url, feed_block=0.2),  # (a feed thread closes within feed_block)
        web_settings(**(web or {})),
        authenticate_user=kwargs.pop("authenticate_user", check_user),
        **kwargs,
    )


def fastapi_app(redis_url: str, web: dict[str, Any] | None = None, **auth_kwargs: Any) -> FastAPI:
    auth: fa.Auth = _auth(fa.Auth, redis_url, web, auth_kwargs)
    app = FastAPI(lifespan=auth.lifespan)
    app.state.auth = auth
    auth.install(app)

    @app.get("/api/me")
    async def me(user: Annotated[Principal, Depends(auth.require())]) -> dict[str, str]:
        return {"sub": user.sub, "sid": user.sid, "transport": user.transport}

    @app.post("/api/things")
    async def things(user: Annotated[Principal, Depends(auth.require())]) -> dict[str, str]:
        return {"sub": user.sub}

    @app.get("/api/admin")
    async def admin(
        user: Annotated[Principal, Depends(auth.require(scopes="admin"))],
    ) -> dict[str, str]:
        return {"sub": user.sub}

    @app.get("/api/maybe")
    async def maybe(user: Annotated[Principal | None, Depends(auth.require(optional=True))]) -> Any:
        return {"sub": user.sub if user else None}

    @app.post("/api/echo")
    async def echo(request: Request, user: Annotated[Principal, Depends(auth.require())]) -> Any:
        return await request.json()

    @app.api_route("/api/purge", methods=["PURGE"])
    async def purge(user: Annotated[Principal, Depends(auth.require())]) -> dict[str, str]:
        return {"sub": user.sub}

    return app


def flask_app(redis_url: str, web: dict[str, Any] | None = None, **auth_kwargs: Any) -> Flask:
    auth: fl.Auth = _auth(fl.Auth, redis_url, web, auth_kwargs)
    app = Flask(__name__)
    app.testing = True  # (the app's exceptions reach the test)
    app.extensions["test_auth"] = auth
    auth.init_app(app)

    @app.get("/api/me")
    @auth.required()
    def me() -> dict[str, str]:
        user = g.principal
        return {"sub": user.sub, "sid": user.sid, "transport": user.transport}

    @app.post("/api/things")
    @auth.required()
    def things() -> dict[str, str]:
        return {"sub": g.principal.sub}

    @app.get("/api/admin")
    @auth.required(scopes="admin")
    def admin() -> dict[str, str]:
        return {"sub": g.principal.sub}

    @app.get("/api/maybe")
    @auth.required(optional=True)
    def maybe() -> Any:
        return {"sub": g.principal.sub if g.principal else None}

    @app.post("/api/echo")
    @auth.required()
    def echo() -> Any:
        return flask_request.get_json()

    @app.route("/api/purge", methods=["PURGE"])
    @auth.required()
    def purge() -> dict[str, str]:
        return {"sub": g.principal.sub}

    return app


DJANGO_MIDDLEWARE = [
    "django.middleware.csrf.CsrfViewMiddleware",  # (Django's own CSRF, alongside ours)
    "sessionsvc.integrations.django.AuthMiddleware",
]


def configure_django() -> None:
    """Django's settings, once per test session (an app's own: ``override_settings``)."""
    import django
    from django.conf import settings

    if settings.configured:
        return
    settings.configure(
        DEBUG=False,
        DEBUG_PROPAGATE_EXCEPTIONS=True,  # (the app's exceptions reach the test)
        SECRET_KEY="django-test-only-secret-key-0123456789",
        ALLOWED_HOSTS=["testserver"],
        INSTALLED_APPS=[],
        MIDDLEWARE=DJANGO_MIDDLEWARE,
        ROOT_URLCONF="web_apps",  # (replaced per app)
        SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
        USE_TZ=True,
    )
    django.setup()


def django_urls(auth: Any) -> Any:
    """The test routes on ``auth`` (a module-like ``ROOT_URLCONF``)."""
    from django.http import HttpResponseNotAllowed, JsonResponse
    from django.urls import include, path

    def only(method: str, view: Any) -> Any:
        @wraps(view)  # (as Django's require_http_methods: csrf_exempt comes along)
        def routed(request: Any) -> Any:
            if request.method != method:
                return HttpResponseNotAllowed([method])
            return view(request)

        return routed

    @auth.require_session()
    def me(request: Any) -> Any:
        user = request.principal
        return JsonResponse({"sub": user.sub, "sid": user.sid, "transport": user.transport})

    @auth.require_session()
    def things(request: Any) -> Any:
        return JsonResponse({"sub": request.principal.sub})

    @auth.require_session(scopes="admin")
    def admin(request: Any) -> Any:
        return JsonResponse({"sub": request.principal.sub})

    @auth.require_session(optional=True)
    def maybe(request: Any) -> Any:
        return JsonResponse({"sub": request.principal.sub if request.principal else None})

    @auth.require_session()
    def echo(request: Any) -> Any:
        return JsonResponse(json.loads(request.body))

    @auth.require_session()
    def purge(request: Any) -> Any:
        return JsonResponse({"sub": request.principal.sub})

    urlconf = types.ModuleType("test_urls")  # (hashable: Django caches resolvers by it)
    urlconf.urlpatterns = [
        path("", include(auth.urls)),
        path("api/me", only("GET", me)),
        path("api/things", only("POST", things)),
        path("api/admin", only("GET", admin)),
        path("api/maybe", only("GET", maybe)),
        path("api/echo", only("POST", echo)),
        path("api/purge", only("PURGE", purge)),
    ]
    return urlconf


@contextmanager
def django_app(
    redis_url: str, web: dict[str, Any] | None = None, urls: Any = None, **auth_kwargs: Any
) -> Iterator[Any]:
    """A WSGI handler for a Django project of the test routes (``urls(auth)``: other ones)."""
    configure_django()
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import override_settings

    auth: dj.Auth = _auth(dj.Auth, redis_url, web, auth_kwargs)
    urlconf = (urls or django_urls)(auth)
    try:
        with override_settings(ROOT_URLCONF=urlconf, SESSIONSVC_AUTH=auth):
            handler = WSGIHandler()
            handler.sessionsvc = auth
            yield handler
    finally:
        auth.close()


class FastAPIAdapter:
    name = "fastapi"

    @staticmethod
    @contextmanager
    def open(redis_url: str, web: dict[str, Any] | None = None, **kw: Any) -> Iterator[WebApp]:
        app = fastapi_app(redis_url, web, **kw)
        with TestClient(app, base_url=ORIGIN) as client:
            yield WebApp(client, app.state.auth, app)

    @staticmethod
    def slow(enter: Callable[..., None], check: Callable[..., Any], seconds: float) -> Any:
        """A credential check: ``enter``, ``seconds`` without blocking other requests (async
        here), then ``check``."""

        async def slow_check(username: str, password: str) -> Any:
            enter(username, password)
            await asyncio.sleep(seconds)
            return check(username, password)

        return slow_check


class FlaskAdapter:
    name = "flask"

    @staticmethod
    @contextmanager
    def open(redis_url: str, web: dict[str, Any] | None = None, **kw: Any) -> Iterator[WebApp]:
        app = flask_app(redis_url, web, **kw)
        auth: fl.Auth = app.extensions["test_auth"]
        transport = httpx.WSGITransport(app=app)
        try:
            with httpx.Client(transport=transport, base_url=ORIGIN, follow_redirects=True) as c:
                yield WebApp(c, auth, app)
        finally:
            auth.close()

    @staticmethod
    def slow(enter: Callable[..., None], check: Callable[..., Any], seconds: float) -> Any:
        """A credential check: ``enter``, ``seconds`` (sync: each request has its own thread
        here), then ``check``."""

        def slow_check(username: str, password: str) -> Any:
            enter(username, password)
            time.sleep(seconds)
            return check(username, password)

        return slow_check


class DjangoAdapter:
    name = "django"

    @staticmethod
    @contextmanager
    def open(redis_url: str, web: dict[str, Any] | None = None, **kw: Any) -> Iterator[WebApp]:
        with django_app(redis_url, web, **kw) as app:
            transport = httpx.WSGITransport(app=app)
            with httpx.Client(transport=transport, base_url=ORIGIN, follow_redirects=True) as c:
                yield WebApp(c, app.sessionsvc, app)

    slow = FlaskAdapter.slow


ADAPTERS: dict[str, Any] = {
    "django": DjangoAdapter,
    "fastapi": FastAPIAdapter,
    "flask": FlaskAdapter,
}
