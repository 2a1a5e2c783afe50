"""The frameworks' ceilings (no auth, the bare callables, a no-op dependency) and the test
clients that drive every contender (both virtualenvs import this module). No ``from __future__
import annotations``: FastAPI reads the routes' annotations."""

import contextlib
import time
from collections.abc import Callable
from typing import Any

from httpbench.common import ORIGIN, Contender, Get


async def raw_asgi(scope: Any, receive: Any, send: Any) -> None:
    """A bare ASGI app: the fixed answer, no framework (what the TestClient alone costs)."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b'{"sub":"anonymous"}'})


def raw_wsgi(environ: Any, start_response: Any) -> list[bytes]:
    """A bare WSGI app: the fixed answer, no framework (what the test client alone costs)."""
    start_response("200 OK", [("Content-Type", "application/json")])
    return [b'{"sub":"anonymous"}']


def fastapi_noauth() -> Any:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/api/me")
    async def me() -> dict[str, str]:
        return {"sub": "anonymous"}

    return app


def fastapi_dependency() -> Any:
    """No auth, but a dependency that takes the ``Request`` (what any auth dependency pays)."""
    from fastapi import Depends, FastAPI, Request

    async def nobody(request: Request) -> dict[str, str]:
        return {"sub": "anonymous"}

    app = FastAPI()
    require = Depends(nobody)

    @app.get("/api/me")
    async def me(user: dict[str, str] = require) -> dict[str, str]:
        return user

    return app


def flask_noauth() -> Any:
    from flask import Flask

    app = Flask("noauth")

    @app.get("/api/me")
    def me() -> dict[str, str]:
        return {"sub": "anonymous"}

    return app


def asgi_client(stack: contextlib.ExitStack, app: Any) -> Any:
    from fastapi.testclient import TestClient

    return stack.enter_context(TestClient(app, base_url=ORIGIN))


def asgi_get(client: Any, headers: dict[str, str]) -> Get:
    return lambda: client.get("/api/me", headers=headers).status_code


def asgi_loop(client: Any, headers: dict[str, str]) -> Callable[[int], tuple[float, list[float]]]:
    """``n`` GETs through ``httpx2.ASGITransport`` inside the TestClient's own event loop (the
    app's lifespan running there): the same app without the TestClient's thread hops."""
    import httpx2

    async def batch(n: int) -> tuple[float, list[float]]:
        transport = httpx2.ASGITransport(app=client.app)
        async with httpx2.AsyncClient(transport=transport, base_url=ORIGIN) as c:
            lat: list[float] = []
            clock = time.perf_counter_ns
            start = clock()
            for _ in range(n):
                t0 = clock()
                response = await c.get("/api/me", headers=headers)
                lat.append((clock() - t0) / 1e9)
                if response.status_code != 200:
                    raise RuntimeError(f"GET answered {response.status_code}")
            return (clock() - start) / 1e9, lat

    return lambda n: client.portal.call(batch, n)


def asgi_pair(key: str, client: Any, headers: dict[str, str], **kw: Any) -> list[Contender]:
    """The contender through the TestClient, and ``KEY_loop`` through ``asgi_loop``."""
    return [
        Contender(key, asgi_get(client, headers), **kw),
        Contender(f"{key}_loop", lambda: 0, batch=asgi_loop(client, headers)),
    ]


def wsgi_get(client: Any, headers: dict[str, str]) -> Get:
    return lambda: client.get("/api/me", headers=headers, base_url=ORIGIN).status_code


def ceilings(stack: contextlib.ExitStack, prefix: str, headers: dict[str, str]) -> list[Contender]:
    """The no-auth routes and the bare callables, each through its framework's test client."""
    from werkzeug.test import Client  # (what Flask's test client is built on)

    wsgi = Client(raw_wsgi)
    return [
        *asgi_pair(f"{prefix}asgi_raw", asgi_client(stack, raw_asgi), headers),
        *asgi_pair(f"{prefix}fastapi_noauth", asgi_client(stack, fastapi_noauth()), headers),
        *asgi_pair(f"{prefix}fastapi_dep", asgi_client(stack, fastapi_dependency()), headers),
        Contender(f"{prefix}wsgi_raw", wsgi_get(wsgi, headers)),
        Contender(f"{prefix}flask_noauth", wsgi_get(flask_noauth().test_client(), headers)),
    ]
