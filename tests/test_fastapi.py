"""What is FastAPI's own: the middleware, live sign-out of server-sent events through Starlette.

The web contract (endpoints, cookies, CSRF, transports, errors) is ``tests/web_contract.py``,
run against this adapter and the others by ``tests/test_web_contract.py``; the test app is
``web_apps.fastapi_app``.
"""

import threading
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Request, Response
from fastapi.testclient import TestClient
from web_apps import fastapi_app as make_app
from web_harness import ORIGIN, Browser, aticks

from sessionsvc.integrations.fastapi import Auth, AuthMiddleware, Principal
from sessionsvc.integrations.live import LiveSignOut

pytestmark = pytest.mark.redis


# -- the middleware ------------------------------------------------------------------------------


def test_the_middleware_protects_its_prefixes_and_sets_the_principal(redis_url: str) -> None:
    app = make_app(redis_url)
    app.add_middleware(AuthMiddleware, auth=app.state.auth, protect=("/private",))

    @app.get("/private/page")
    async def page(request: Request) -> dict[str, str]:
        return {"sub": request.state.principal.sub}

    @app.get("/public")
    async def public(request: Request) -> dict[str, Any]:
        principal = request.state.principal
        return {"sub": principal.sub if principal else None}

    with TestClient(app, base_url=ORIGIN) as c:
        b = Browser(c)
        assert b.get("/private/page").status_code == 401
        assert b.get("/public").json() == {"sub": None}
        assert b.get("/public", headers={"authorization": "Bearer bad"}).json() == {"sub": None}
        b.login()
        assert b.get("/private/page").json() == {"sub": "alice"}
        assert b.get("/public").json() == {"sub": "alice"}


# -- the endpoints' routes ----------------------------------------------------------------------


def test_the_endpoints_work_under_a_prefix_and_let_other_paths_pass(redis_url: str) -> None:
    auth: Auth = make_app(redis_url).state.auth
    app = FastAPI(lifespan=auth.lifespan)
    app.include_router(auth.router, prefix="/v1")  # (routes copied under the prefix)
    seen: list[str] = []

    @app.get("/v1/{anything:path}")
    async def other(anything: str) -> dict[str, str]:
        seen.append(anything)
        return {}

    with TestClient(app, base_url=ORIGIN) as c:
        login = Browser(c).post("/v1/auth/login", json={"username": "alice", "password": "x"})
        assert login.status_code == 401  # the login endpoint answered (a wrong password)
        assert c.get("/v1/auth/sessions").status_code == 401  # so did the sessions endpoint
        assert c.get("/v1/api/auth/loginx").status_code == 200  # not theirs: on to the app's
        assert c.get("/v1/.well-known/jwks.json").json()["keys"]
    assert seen == ["api/auth/loginx"]


# -- live sign-out: the app's events are closed however the stream ends --------------------------


def live_app(redis_url: str, closed: threading.Event) -> FastAPI:
    """An app whose event stream's generator sets ``closed`` when it is closed."""
    app = make_app(redis_url)
    auth: Auth = app.state.auth
    live = LiveSignOut(auth.validator)
    app.state.live = live

    @app.get("/api/events")
    async def events(user: Annotated[Principal, Depends(auth.require())]) -> Response:
        return live.sse(user, aticks(closed))

    return app


@pytest.mark.parametrize("ended_by", ["client", "revocation"])
def test_the_events_of_an_ended_stream_are_closed(redis_url: str, ended_by: str) -> None:
    closed = threading.Event()
    app = live_app(redis_url, closed)
    with TestClient(app, base_url=ORIGIN) as c:
        phone = Browser(c)
        phone_sid = phone.login().json()["session_id"]
        c.cookies = phone.jar
        with c.stream("GET", "/api/events") as stream:
            lines = stream.iter_lines()
            assert next(lines) == "data: hello"
            assert len(app.state.live.registry) == 1
            if ended_by == "revocation":
                laptop = Browser(c)
                laptop.login()
                laptop.request("DELETE", f"/auth/sessions/{phone_sid}")
                assert "event: revoked" in lines  # (the pings until then)
                assert list(lines) == ['data: {"reason":"session revoked"}', ""]  # the end
        assert closed.wait(10), "the app's event generator was not closed"
        assert len(app.state.live.registry) == 0
