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
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import httpx2 as httpx
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient
from flask import Flask, g
from flask import request as flask_request
from web_harness import ORIGIN, app_settings, check_user, web_settings

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


ADAPTERS: dict[str, Any] = {"fastapi": FastAPIAdapter, "flask": FlaskAdapter}
