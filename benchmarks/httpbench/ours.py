"""sessionsvc's contenders in FastAPI and Flask, PyJWT's, and a node seen through its test
client (this virtualenv). No ``from __future__ import annotations``: FastAPI reads the routes'
annotations."""

import json
from collections.abc import Callable
from typing import Any

from httpbench.ceilings import asgi_get
from httpbench.common import (
    AUDIENCE,
    CSRF_SECRET,
    ISSUER,
    ORIGIN,
    PASSWORD,
    USER,
    Trial,
    bearer,
    chase,
)


def new_jwks() -> dict[str, str]:
    from sessionsvc import generate_jwks

    return {
        "access_jwks": json.dumps(generate_jwks("HS256", "bench-http-access")),
        "refresh_jwks": json.dumps(generate_jwks("HS256", "bench-http-refresh")),
    }


def sessionsvc_settings(redis_url: str, jwks: dict[str, str]) -> tuple[Any, Any]:
    from sessionsvc import Settings
    from sessionsvc.integrations.web.config import WebSettings

    values: dict[str, Any] = {
        **jwks,
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "redis_url": redis_url,
        "env": "production",
        "feed_block": 0.5,  # (a feed thread closes within feed_block at the end)
        "login_user_attempts": 1_000_000,  # every trial logs in again
        "_env_file": None,
    }
    web = WebSettings(csrf_secret=CSRF_SECRET, _env_file=None)  # type: ignore[call-arg]
    try:
        return Settings(**values), web
    except Exception:  # (an older Settings without a login throttle field)
        values.pop("login_user_attempts")
        return Settings(**values), web


def check_user(username: str, password: str) -> str | None:
    return username if (username, password) == (USER, PASSWORD) else None


def sessionsvc_fastapi(settings: Any, web: Any) -> Any:
    from fastapi import Depends, FastAPI

    from sessionsvc.integrations import fastapi as fa

    auth = fa.Auth(settings, web, authenticate_user=check_user)
    app = FastAPI(lifespan=auth.lifespan)
    auth.install(app)
    require = Depends(auth.require())

    @app.get("/api/me")
    async def me(user: Any = require) -> dict[str, str]:
        return {"sub": user.sub}

    return app


def sessionsvc_fastapi_middleware(settings: Any, web: Any) -> Any:
    """sessionsvc's ``AuthMiddleware`` protecting ``/api``: the route reads the principal from
    ``request.state``, FastAPI solves no dependency."""
    from fastapi import FastAPI, Request

    from sessionsvc.integrations import fastapi as fa

    auth = fa.Auth(settings, web, authenticate_user=check_user)
    app = FastAPI(lifespan=auth.lifespan)
    auth.install(app)
    app.add_middleware(fa.AuthMiddleware, auth=auth, protect=("/api",))

    @app.get("/api/me")
    async def me(request: Request) -> dict[str, str]:
        return {"sub": request.state.principal.sub}

    return app


def sessionsvc_django(settings: Any, web: Any) -> Any:
    """sessionsvc's Django ``Auth`` (the project around it: ``httpbench.djangoapp``)."""
    from sessionsvc.integrations import django as dj

    return dj.Auth(settings, web, authenticate_user=check_user)


def sessionsvc_flask(settings: Any, web: Any) -> tuple[Any, Any]:
    from flask import Flask, g

    from sessionsvc.integrations import flask as fl

    auth = fl.Auth(settings, web, authenticate_user=check_user)
    app = Flask("sessionsvc")
    auth.init_app(app)

    @app.get("/api/me")
    @auth.required()
    def me() -> dict[str, str]:
        return {"sub": g.principal.sub}

    return app, auth


def pyjwt_fastapi(settings: Any) -> Any:
    import jwt
    from fastapi import Depends, FastAPI, HTTPException, Request

    from sessionsvc import TokenIssuer

    key = TokenIssuer(settings).access_keys.signing_key().verify_key

    async def decoded(request: Request) -> dict[str, Any]:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            raise HTTPException(401)
        try:
            claims: dict[str, Any] = jwt.decode(
                header[7:], key, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER
            )
        except jwt.PyJWTError:
            raise HTTPException(401) from None
        return claims

    app = FastAPI()
    require = Depends(decoded)

    @app.get("/api/me")
    async def me(claims: dict[str, Any] = require) -> dict[str, str]:
        return {"sub": claims["sub"]}

    return app


def pyjwt_trial(client: Any, token: str) -> Trial:
    """Nothing revokes a PyJWT token: the chase runs out (``None``, every request served)."""

    def trial(node: str) -> tuple[float | None, int]:
        return chase(asgi_get(client, bearer(token)), limit=0.2)

    return trial


class Node:
    """One sessionsvc app instance seen through a request function ``(method, path, **kw)``."""

    def __init__(self, request: Callable[..., Any]) -> None:
        self.request = request

    def login(self) -> str:
        body = {"username": USER, "password": PASSWORD, "transport": "bearer"}
        headers = {"sec-fetch-site": "same-origin", "origin": ORIGIN}
        response = self.request("POST", "/auth/login", json=body, headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"login answered {response.status_code}")
        body = response.json() if callable(response.json) else response.json  # (httpx, Werkzeug)
        token: str = body["access_token"]
        return token

    def get(self, token: str) -> int:
        return int(self.request("GET", "/api/me", headers=bearer(token)).status_code)

    def logout(self, token: str) -> None:
        status = self.request("POST", "/auth/logout", headers=bearer(token)).status_code
        if status not in (200, 204):
            raise RuntimeError(f"logout answered {status}")


def werkzeug_request(client: Any) -> Callable[..., Any]:
    def request(method: str, path: str, **kw: Any) -> Any:
        return client.open(path, method=method, base_url=ORIGIN, **kw)

    return request
