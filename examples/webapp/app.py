"""The example web app: every part of sessionsvc's FastAPI integration in one small app.

A login form, a page that calls a protected API, and a "Your sessions" page (device, IP,
created, last seen, "this device") with "Sign out", "Sign out other devices" and "Sign out
everywhere". A session revoked elsewhere is signed out on its next request, and its open page
shows it at once, without a reload (server-sent events, ended by the validator's listener).

Run it with ``sessionsvc demo --serve`` (a throw-away Redis and a worker), or with uvicorn, from
the repository's root, with the usual ``SESSIONSVC_*`` settings (keys,
issuer, audience, Redis): ``SESSIONSVC_ENV=development uvicorn --factory
examples.webapp.app:create_app``, then open http://127.0.0.1:8000 in Chromium (which keeps the
``__Host-`` cookies on http://127.0.0.1; see docs/web.md). The demo users ``alice`` and ``bob``
(password ``<name>-demo-password``) exist only with ``SESSIONSVC_ENV=development``. The tests
(``tests/test_example_webapp.py``, ``tests/test_browser_webapp.py``) run it on a throw-away Redis.

For operators: ``/readyz`` (503 while the validator is stale, ``sessionsvc.metrics.ready``) and
``/metrics`` (the validator's ``sessionsvc_validator_*`` metrics, docs/operations.md).
"""

# No ``from __future__ import annotations`` here: FastAPI reads the routes' annotations at run
# time, against the module's globals, and ``signed_in`` (below) is local to ``create_app``; as a
# string it cannot be resolved, and FastAPI would take ``user`` for a required query parameter.
import asyncio
import hmac
import html
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, WebSocket
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from sessionsvc.config import Settings, load_settings
from sessionsvc.integrations.fastapi import Auth, Identity, Principal
from sessionsvc.integrations.live import LiveSignOut
from sessionsvc.integrations.web import logfilter
from sessionsvc.integrations.web.config import WebSettings
from sessionsvc.metrics import install, ready

HERE = Path(__file__).parent
DEMO_USERS = {"alice": "alice-demo-password", "bob": "bob-demo-password"}
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


def create_app(
    settings: Settings | None = None, web: WebSettings | None = None, *, heartbeat: float = 15.0
) -> FastAPI:
    """The example app (settings from the environment unless given)."""
    settings = settings or load_settings()
    users = DEMO_USERS if settings.env == "development" else {}  # never in production

    def check(username: str, password: str) -> Identity | None:
        # (a real store compares a password hash, and hashes a dummy one for unknown users
        # too, so that the answer's timing does not tell which user names exist)
        expected = users.get(username)
        if expected is None or not hmac.compare_digest(expected.encode(), password.encode()):
            return None
        return Identity(username, {"roles": ["demo"]})

    auth = Auth(settings, web, authenticate_user=check)
    live = LiveSignOut(auth.validator)
    app = FastAPI(lifespan=auth.lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.auth, app.state.live = auth, live
    auth.install(app)
    logfilter.install()  # no token in a URL ever reaches the access log
    metrics = CollectorRegistry()  # the app's own: create_app may run more than once (tests)
    install(auth.validator, metrics)
    signed_in = Annotated[Principal, Depends(auth.require())]
    pages = {n: (HERE / "static" / n).read_text() for n in ("index.html", "sessions.html")}
    csrf_cookie = html.escape(auth.web.csrf_cookie, quote=True)

    def page(name: str) -> HTMLResponse:
        # the page's script reads the CSRF cookie by the name this app configured
        body = pages[name].replace("<body ", f'<body data-csrf-cookie="{csrf_cookie}" ', 1)
        return HTMLResponse(body)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.get("/", response_class=HTMLResponse)
    async def home() -> HTMLResponse:
        return page("index.html")

    @app.get("/sessions", response_class=HTMLResponse)
    async def sessions_page() -> HTMLResponse:
        return page("sessions.html")

    @app.get("/static/{name}")
    async def static(name: str) -> Response:
        files = {"app.js": "text/javascript", "style.css": "text/css"}
        if name not in files:
            return Response(status_code=404)
        return FileResponse(HERE / "static" / name, media_type=files[name])

    @app.get("/readyz")
    async def readyz() -> PlainTextResponse:
        ok, reason = ready(auth.validator)  # not ready while stale: out of the load balancer
        return PlainTextResponse(reason, status_code=200 if ok else 503)

    @app.get("/metrics")
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics), media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/me")
    async def me(user: signed_in) -> dict[str, Any]:
        return {
            "sub": user.sub,
            "session_id": user.sid,
            "roles": list(user.claims.get("roles", [])),
        }

    @app.get("/api/events")
    async def events(user: signed_in) -> Response:
        async def ticks() -> AsyncIterator[dict[str, str]]:
            yield {"hello": user.sub}
            while True:
                await asyncio.sleep(heartbeat)
                yield {"ping": "ok"}

        return live.sse(user, ticks())

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        user = await auth.authenticate_websocket(websocket)
        await websocket.accept()
        async with live.websocket(websocket, user):
            await websocket.send_json({"hello": user.sub})
            async for text in websocket.iter_text():
                await websocket.send_json({"echo": text})

    return app
