"""Benchmark: a protected HTTP endpoint, sessionsvc against the peers and the frameworks' ceilings.

Run with ``./dev bench http [--quick] [--n N] [--rounds R] [--trials T]``. One run starts its
own redis-server (``RedisProcess``, never 6379) and measures, each framework through its own
in-process test client (FastAPI: Starlette's ``TestClient`` on ``https://testserver``; Flask:
Werkzeug's ``app.test_client()``), one ``GET /api/me`` with ``Authorization: Bearer``, HS256 for
all:

- (a) **no auth** — the same route without auth: the framework's ceiling. Beside it, what the
  test client alone costs (a bare ASGI / WSGI callable) and, for FastAPI, a no-op ``Depends``
  that takes the ``Request`` (what any auth dependency pays FastAPI);
- (b) **sessionsvc** — ``Depends(auth.require())`` and ``@auth.required()``, the token from
  ``POST /auth/login`` with ``{"transport": "bearer"}``; no Redis call per request;
- (c) **flask-jwt-extended** — its documented revocation pattern: ``@jwt.token_in_blocklist_loader``
  doing one Redis ``GET`` of the token's ``jti`` per request;
- (d) **fastapi-users** — ``current_user()`` over a ``BearerTransport`` and ``RedisStrategy`` (one
  Redis ``GET`` per request), an in-memory user database;
- (e) **PyJWT, no revocation** — a FastAPI dependency doing ``jwt.decode`` and nothing else.

Every FastAPI contender is also driven through ``httpx2.ASGITransport`` inside the TestClient's
own event loop (the app's lifespan running there): the same app without the TestClient's ~6
cross-thread calls per request, which cost more than the app itself.

The peers run in their own virtualenv (``benchmarks/.peers-venv``, created on the first run with
``python -m venv`` and pip from PyPI; never the package's dependencies), in a subprocess that
takes one command a line on stdin and answers JSON, so their rounds interleave with ours: round r
runs every contender in turn (the order reversed every other round), and a slow spell of the VM
lands on all alike. That process measures the same ceilings too ("peers' process" rows).
Figures: requests/s and p50/p99 of each round (sequential requests, ``perf_counter_ns`` around
each), the median over the rounds; ``gc.freeze()`` after the set-up in every process.

Revocation: a fresh login, the token used once on every node, then logout (sessionsvc: ``POST
/auth/logout``; flask-jwt-extended: its ``jti`` into the blocklist; fastapi-users: its logout
route, which destroys the strategy's token), then GETs with the token until one is refused: the
time from the logout call's return to the refusal's return (``time.monotonic_ns``, shared by the
machine's processes), and how many requests still succeeded. Nodes: the same app; a second app
instance in this process (its own validator following the same Redis); and, for sessionsvc, a
second node in another process (``--node-worker``), as a deployment has it. PyJWT has nothing to
revoke: its token keeps working ("never").

Targets: sessionsvc ≥ 0.9× its framework's no-auth throughput; ≥ 1.5× flask-jwt-extended
(Flask) and fastapi-users (FastAPI); a revoked token refused within 5 ms on every node (the
worst trial). A benchmark, not a test: it prints MISSED and never fails. (No ``from __future__
import annotations``: FastAPI reads the routes' annotations, which name local objects.)
"""

import sys
from pathlib import Path

# This file is named http.py and Python puts its folder first on sys.path, where it would shadow
# the standard library's ``http`` package (which httpx, Starlette and Werkzeug import).
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse  # noqa: E402
import contextlib  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

ORIGIN = "https://testserver"
ISSUER = "https://auth.bench.invalid"
AUDIENCE = "bench-api"
USER, PASSWORD = "alice", "alice-password"
EMAIL = "alice@example.com"
CSRF_SECRET = "0123456789abcdef0123456789abcdef-bench-only"
PEER_SECRET = "bench-only-hs256-secret-of-at-least-32-bytes!"
PEERS_VENV = _HERE / ".peers-venv"
PEERS = (
    "fastapi-users==15.0.5",
    "flask-jwt-extended==4.7.4",
    "fastapi",
    "flask",
    "redis",
    "httpx2",
)
CHASE_LIMIT = 2.0  # seconds a revoked token is tried before "never"
THROUGHPUT_TARGET = 0.9  # sessionsvc / its framework's no-auth ceiling, at least
PEER_TARGET = 1.5  # sessionsvc / the same framework's peer, at least
REVOKE_TARGET_MS = 5.0  # a revoked token refused within, on both nodes

Get = Callable[[], int]  # one protected GET with the contender's token: the status code
Trial = Callable[[str], tuple[float | None, int]]  # node -> (seconds to refusal | None, served)


@dataclass
class Contender:
    key: str
    get: Get
    trial: Trial | None = None  # None: nothing can revoke its token
    batch: Callable[[int], tuple[float, list[float]]] | None = None  # instead of ``get``

    def run(self, n: int) -> tuple[float, list[float]]:
        """``n`` sequential GETs: (seconds in all, each request's seconds)."""
        if self.batch is not None:
            return self.batch(n)
        lat: list[float] = []
        clock = time.perf_counter_ns
        start = clock()
        for _ in range(n):
            t0 = clock()
            status = self.get()
            lat.append((clock() - t0) / 1e9)
            if status != 200:
                raise RuntimeError(f"{self.key}: GET answered {status}")
        return (clock() - start) / 1e9, lat


def chase(
    get: Get, limit: float = CHASE_LIMIT, since: int | None = None
) -> tuple[float | None, int]:
    """GETs until one is refused: (seconds from ``since`` (``time.monotonic_ns``, shared by the
    machine's processes; default now) to the refusal's return, requests served); ``None`` if
    none was refused within ``limit``."""
    served = 0
    start = time.monotonic_ns() if since is None else since
    while True:
        status = get()
        elapsed = (time.monotonic_ns() - start) / 1e9
        if status == 401:
            return elapsed, served
        served += 1
        if elapsed > limit:
            return None, served


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


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


# -- FastAPI and Flask apps of both virtualenvs ----------------------------------------------------


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


# -- sessionsvc and PyJWT (the project's virtualenv) -----------------------------------------------


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


class _Worker:
    """A benchmark subprocess answering one JSON command per line (``ask``)."""

    def __init__(self, argv: list[str], what: str) -> None:
        self.what = what
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def _read(self) -> Any:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.what} ended (its error is above)")
        return json.loads(line)

    def ask(self, **cmd: Any) -> Any:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ask(cmd="quit")
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        if self.proc.poll() is None:
            self.proc.kill()


class NodeProcess(_Worker):
    """Another process (this virtualenv) with a FastAPI and a Flask sessionsvc node, each
    following the same Redis: the second node as a deployment has it, with its own GIL."""

    def __init__(self, redis_url: str, jwks: dict[str, str]) -> None:
        config = json.dumps(
            {"redis_url": redis_url, "jwks": jwks, "switch_interval": sys.getswitchinterval()}
        )
        script = str(Path(__file__).resolve())
        super().__init__([sys.executable, script, "--node-worker", config], "the node subprocess")
        self._read()


def quiet_logs() -> None:
    """sessionsvc's log lines to stderr, warnings only: stdout is the table (or the protocol)."""
    import logging

    from sessionsvc.logs import configure_logging

    configure_logging("development", logging.WARNING)


def node_worker(config: str) -> int:
    """The other process's two nodes: ``get`` (one GET), ``chase`` (from the caller's clock)."""
    quiet_logs()
    cfg = json.loads(config)
    sys.setswitchinterval(cfg["switch_interval"])  # (the same as the benchmark's process)
    settings, web = sessionsvc_settings(cfg["redis_url"], cfg["jwks"])
    with contextlib.ExitStack() as stack:
        fastapi_node = Node(asgi_client(stack, sessionsvc_fastapi(settings, web)).request)
        app, auth = sessionsvc_flask(settings, web)
        stack.callback(auth.close)
        nodes = {"fastapi": fastapi_node, "flask": Node(werkzeug_request(app.test_client()))}
        gc.collect()
        gc.freeze()
        print(json.dumps({"ready": True}), flush=True)
        for line in sys.stdin:
            cmd = json.loads(line)
            node = nodes.get(cmd.get("fw", ""))
            if node is None:
                break
            token = cmd["token"]
            if cmd["cmd"] == "get":
                print(json.dumps(node.get(token)), flush=True)
            else:
                since = cmd["since"]
                answer = chase(lambda n=node, t=token: n.get(t), since=since)
                print(json.dumps(answer), flush=True)
    return 0


def two_node_trial(a: Node, b: Node, other: NodeProcess | None, fw: str) -> Trial:
    """A fresh session on ``a``, used on every node; logout on ``a``; chase on ``a`` ("same"),
    ``b`` ("second": this process) or ``other``'s node ("process": another process)."""

    def trial(node: str) -> tuple[float | None, int]:
        token = a.login()
        fresh = [a.get(token), b.get(token)]
        if other is not None:
            fresh.append(other.ask(cmd="get", fw=fw, token=token))
        if any(status != 200 for status in fresh):
            raise RuntimeError("a fresh token was refused")
        a.logout(token)
        since = time.monotonic_ns()
        if node == "process":
            if other is None:
                return None, 0
            delay, served = other.ask(cmd="chase", fw=fw, token=token, since=since)
            return delay, served
        target = a if node == "same" else b
        return chase(lambda: target.get(token), since=since)

    return trial


def werkzeug_request(client: Any) -> Callable[..., Any]:
    def request(method: str, path: str, **kw: Any) -> Any:
        return client.open(path, method=method, base_url=ORIGIN, **kw)

    return request


def local_contenders(
    stack: contextlib.ExitStack, redis_url: str, other_process: bool
) -> list[Contender]:
    jwks = new_jwks()
    settings, web = sessionsvc_settings(redis_url, jwks)
    other = None
    if other_process:
        other = NodeProcess(redis_url, jwks)
        stack.callback(other.close)
    fa_a, fa_b = (asgi_client(stack, sessionsvc_fastapi(settings, web)) for _ in range(2))
    fa_nodes = Node(fa_a.request), Node(fa_b.request)
    fa_token = fa_nodes[0].login()
    result = ceilings(stack, "", bearer(fa_token))

    flask_apps = [sessionsvc_flask(settings, web) for _ in range(2)]
    for _, auth in flask_apps:
        stack.callback(auth.close)
    fl_nodes = [Node(werkzeug_request(app.test_client())) for app, _ in flask_apps]
    fl_token = fl_nodes[0].login()
    for nodes, token in ((fa_nodes, fa_token), (fl_nodes, fl_token)):
        nodes[1].get(token)  # (the second node's first request: a Flask feed starts there)
    pyjwt = asgi_client(stack, pyjwt_fastapi(settings))
    result += [
        *asgi_pair(
            "fastapi_sessionsvc",
            fa_a,
            bearer(fa_token),
            trial=two_node_trial(*fa_nodes, other, "fastapi"),
        ),
        Contender(
            "flask_sessionsvc",
            lambda: fl_nodes[0].get(fl_token),
            two_node_trial(*fl_nodes, other, "flask"),
        ),
        *asgi_pair("fastapi_pyjwt", pyjwt, bearer(fa_token), trial=pyjwt_trial(pyjwt, fa_token)),
    ]
    return result


def pyjwt_trial(client: Any, token: str) -> Trial:
    """Nothing revokes a PyJWT token: the chase runs out (``None``, every request served)."""

    def trial(node: str) -> tuple[float | None, int]:
        return chase(asgi_get(client, bearer(token)), limit=0.2)

    return trial


# -- the peers (their own virtualenv, a subprocess) ------------------------------------------------


def flask_jwt_extended_app(redis_url: str) -> Any:
    from datetime import timedelta

    import redis
    from flask import Flask, jsonify
    from flask_jwt_extended import (
        JWTManager,
        create_access_token,
        get_jwt,
        get_jwt_identity,
        jwt_required,
    )

    expires = timedelta(hours=1)
    app = Flask("flask_jwt_extended")
    app.config["JWT_SECRET_KEY"] = PEER_SECRET
    app.config["JWT_ACCESS_TOKEN_EXPIRES"] = expires
    jwt = JWTManager(app)
    blocklist = redis.Redis.from_url(redis_url, decode_responses=True)

    @jwt.token_in_blocklist_loader
    def check_if_token_is_revoked(jwt_header: dict[str, Any], jwt_payload: dict[str, Any]) -> bool:
        return blocklist.get(jwt_payload["jti"]) is not None

    @app.post("/login")
    def login() -> Any:
        return jsonify(access_token=create_access_token(identity=USER))

    @app.delete("/logout")
    @jwt_required()
    def logout() -> Any:
        blocklist.set(get_jwt()["jti"], "", ex=expires)
        return jsonify(msg="Access token revoked")

    @app.get("/api/me")
    @jwt_required()
    def me() -> dict[str, str]:
        return {"sub": get_jwt_identity()}

    return app


def fastapi_users_app(redis_url: str) -> Any:
    import uuid
    from dataclasses import dataclass as dc

    import redis.asyncio
    from fastapi import Depends, FastAPI
    from fastapi_users import BaseUserManager, FastAPIUsers, UUIDIDMixin
    from fastapi_users.authentication import AuthenticationBackend, BearerTransport, RedisStrategy
    from fastapi_users.db import BaseUserDatabase
    from fastapi_users.password import PasswordHelper

    @dc
    class User:
        id: uuid.UUID
        email: str
        hashed_password: str
        is_active: bool = True
        is_superuser: bool = False
        is_verified: bool = True

    class MemoryUserDatabase(BaseUserDatabase[User, uuid.UUID]):  # type: ignore[misc]
        def __init__(self) -> None:
            self.users: dict[uuid.UUID, User] = {}

        async def get(self, id: uuid.UUID) -> User | None:
            return self.users.get(id)

        async def get_by_email(self, email: str) -> User | None:
            return next((u for u in self.users.values() if u.email == email), None)

        async def update(self, user: User, update_dict: dict[str, Any]) -> User:
            for name, value in update_dict.items():
                setattr(user, name, value)
            return user

    class UserManager(UUIDIDMixin, BaseUserManager[User, uuid.UUID]):  # type: ignore[misc]
        reset_password_token_secret = PEER_SECRET
        verification_token_secret = PEER_SECRET

    db = MemoryUserDatabase()
    user = User(uuid.UUID(int=42), EMAIL, PasswordHelper().hash(PASSWORD))  # (on every node)
    db.users[user.id] = user

    async def get_user_manager() -> Any:
        yield UserManager(db)

    client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)

    def get_redis_strategy() -> RedisStrategy[User, uuid.UUID]:
        return RedisStrategy(client, lifetime_seconds=3600)

    backend = AuthenticationBackend(
        name="redis",
        transport=BearerTransport(tokenUrl="auth/redis/login"),
        get_strategy=get_redis_strategy,
    )
    users = FastAPIUsers[User, uuid.UUID](get_user_manager, [backend])
    app = FastAPI()
    app.include_router(users.get_auth_router(backend), prefix="/auth/redis")
    current_user = Depends(users.current_user(active=True))

    @app.get("/api/me")
    async def me(user: User = current_user) -> dict[str, str]:
        return {"sub": str(user.id)}

    return app


def peer_contenders(stack: contextlib.ExitStack, redis_url: str) -> list[Contender]:
    """The peers' contenders, and the ceilings of their virtualenv, built in that virtualenv."""
    fje = [flask_jwt_extended_app(redis_url).test_client() for _ in range(2)]

    def fje_login() -> str:
        token: str = fje[0].post("/login", base_url=ORIGIN).get_json()["access_token"]
        return token

    def fje_get(client: Any, token: str) -> int:
        return int(client.get("/api/me", headers=bearer(token), base_url=ORIGIN).status_code)

    def fje_trial(node: str) -> tuple[float | None, int]:
        token = fje_login()
        if fje_get(fje[0], token) != 200 or fje_get(fje[1], token) != 200:
            raise RuntimeError("a fresh token was refused")
        fje[0].delete("/logout", headers=bearer(token), base_url=ORIGIN)
        target = fje[0] if node == "same" else fje[1]
        return chase(lambda: fje_get(target, token))

    fu = [asgi_client(stack, fastapi_users_app(redis_url)) for _ in range(2)]

    def fu_login() -> str:
        form = {"username": EMAIL, "password": PASSWORD}
        response = fu[0].post("/auth/redis/login", data=form)
        if response.status_code != 200:
            raise RuntimeError(f"fastapi-users login answered {response.status_code}")
        token: str = response.json()["access_token"]
        return token

    def fu_trial(node: str) -> tuple[float | None, int]:
        token = fu_login()
        gets = [asgi_get(c, bearer(token)) for c in fu]
        if gets[0]() != 200 or gets[1]() != 200:
            raise RuntimeError("a fresh token was refused")
        fu[0].post("/auth/redis/logout", headers=bearer(token))
        return chase(gets[0] if node == "same" else gets[1])

    fje_token, fu_token = fje_login(), fu_login()
    return [
        *ceilings(stack, "peers_", bearer(fje_token)),
        Contender("flask_jwt_extended", lambda: fje_get(fje[0], fje_token), fje_trial),
        *asgi_pair("fastapi_users", fu[0], bearer(fu_token), trial=fu_trial),
    ]


def peer_worker(redis_url: str) -> int:
    """The subprocess in the peers' virtualenv: one JSON command a line on stdin, one answer."""
    with contextlib.ExitStack() as stack:
        contenders = {c.key: c for c in peer_contenders(stack, redis_url)}
        versions = {}
        from importlib.metadata import version

        for dist in ("fastapi-users", "flask-jwt-extended", "fastapi", "flask", "redis", "httpx2"):
            versions[dist] = version(dist)
        gc.collect()
        gc.freeze()  # (the set-up's objects out of the collector's way, in every process alike)
        print(json.dumps({"ready": list(contenders), "versions": versions}), flush=True)
        for line in sys.stdin:
            cmd = json.loads(line)
            contender = contenders.get(cmd.get("key", ""))
            if cmd["cmd"] == "run" and contender:
                print(json.dumps(contender.run(cmd["n"])), flush=True)
            elif cmd["cmd"] == "trial" and contender and contender.trial:
                print(json.dumps(contender.trial(cmd["node"])), flush=True)
            else:
                break
    return 0


class PeerProcess(_Worker):
    """The peers' subprocess, and a ``Contender`` for each of its contenders."""

    def __init__(self, python: Path, redis_url: str) -> None:
        script = str(Path(__file__).resolve())
        super().__init__([str(python), script, "--peer-worker", redis_url], "the peers' subprocess")
        hello = self._read()
        self.keys: list[str] = hello["ready"]
        self.versions: dict[str, str] = hello["versions"]

    def contenders(self) -> list[Contender]:
        result = []
        for key in self.keys:
            c = Contender(key, lambda: 200)
            c.run = lambda n, key=key: tuple(self.ask(cmd="run", key=key, n=n))  # type: ignore[method-assign]
            if key in TRIALS:
                c.trial = lambda node, key=key: tuple(self.ask(cmd="trial", key=key, node=node))  # type: ignore[assignment]
            result.append(c)
        return result


def peers_python() -> Path:
    """The peers' virtualenv's python, created (and the peers pip-installed) on first use."""
    python = PEERS_VENV / "bin" / "python"
    stamp = PEERS_VENV / ".installed"
    wanted = "\n".join(PEERS)
    if stamp.exists() and stamp.read_text() == wanted:
        return python
    if not python.exists():
        print(f"http: creating {PEERS_VENV}", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
    print(f"http: pip install {' '.join(PEERS)}", file=sys.stderr, flush=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *PEERS],
        check=True,
    )
    stamp.write_text(wanted)
    return python


# -- the run and its table -------------------------------------------------------------------------

TC = "FastAPI (TestClient)"
LOOP = "FastAPI (ASGITransport, no thread hop)"
WZ = "Flask (test_client)"
ROWS = (  # key, row label, section, the ceiling it is divided by
    ("asgi_raw", "client alone: bare ASGI app", TC, "fastapi_noauth"),
    ("fastapi_noauth", "(a) no auth: the ceiling", TC, "fastapi_noauth"),
    ("fastapi_dep", "no auth, a no-op `Depends` taking the Request", TC, "fastapi_noauth"),
    ("fastapi_sessionsvc", "(b) sessionsvc `Depends(auth.require())`", TC, "fastapi_noauth"),
    ("fastapi_users", "(d) fastapi-users RedisStrategy (GET/request)", TC, "fastapi_noauth"),
    ("fastapi_pyjwt", "(e) PyJWT `jwt.decode`, no revocation", TC, "fastapi_noauth"),
    ("peers_asgi_raw", "peers' process: bare ASGI app", TC, "peers_fastapi_noauth"),
    ("peers_fastapi_noauth", "peers' process: no auth", TC, "peers_fastapi_noauth"),
    ("peers_fastapi_dep", "peers' process: no-op `Depends`", TC, "peers_fastapi_noauth"),
    ("asgi_raw_loop", "client alone: bare ASGI app", LOOP, "fastapi_noauth_loop"),
    ("fastapi_noauth_loop", "(a) no auth: the ceiling", LOOP, "fastapi_noauth_loop"),
    ("fastapi_dep_loop", "no auth, a no-op `Depends`", LOOP, "fastapi_noauth_loop"),
    ("fastapi_sessionsvc_loop", "(b) sessionsvc", LOOP, "fastapi_noauth_loop"),
    ("fastapi_users_loop", "(d) fastapi-users RedisStrategy", LOOP, "fastapi_noauth_loop"),
    ("fastapi_pyjwt_loop", "(e) PyJWT `jwt.decode`", LOOP, "fastapi_noauth_loop"),
    ("peers_asgi_raw_loop", "peers' process: bare ASGI app", LOOP, "peers_fastapi_noauth_loop"),
    ("peers_fastapi_noauth_loop", "peers' process: no auth", LOOP, "peers_fastapi_noauth_loop"),
    (
        "peers_fastapi_dep_loop",
        "peers' process: no-op `Depends`",
        LOOP,
        "peers_fastapi_noauth_loop",
    ),
    ("wsgi_raw", "client alone: bare WSGI app", WZ, "flask_noauth"),
    ("flask_noauth", "(a) no auth: the ceiling", WZ, "flask_noauth"),
    ("flask_sessionsvc", "(b) sessionsvc `@auth.required()`", WZ, "flask_noauth"),
    ("flask_jwt_extended", "(c) flask-jwt-extended blocklist (GET/request)", WZ, "flask_noauth"),
    ("peers_wsgi_raw", "peers' process: bare WSGI app", WZ, "peers_flask_noauth"),
    ("peers_flask_noauth", "peers' process: no auth", WZ, "peers_flask_noauth"),
)
TRIALS = ("fastapi_sessionsvc", "flask_sessionsvc", "fastapi_users", "flask_jwt_extended")


@dataclass
class Stats:
    rps: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    trials: dict[str, list[tuple[float | None, int]]] = field(default_factory=dict)

    def add(self, elapsed: float, lat: list[float]) -> None:
        lat = sorted(lat)
        self.rps.append(len(lat) / elapsed)
        self.p50.append(lat[len(lat) // 2])
        self.p99.append(lat[min(len(lat) - 1, int(len(lat) * 0.99))])

    @property
    def throughput(self) -> float:
        return statistics.median(self.rps)

    @property
    def p50_us(self) -> float:
        return statistics.median(self.p50) * 1e6

    @property
    def p99_us(self) -> float:
        return statistics.median(self.p99) * 1e6


def revocation_cell(trials: list[tuple[float | None, int]] | None) -> str:
    if not trials:
        return ""
    if any(delay is None for delay, _ in trials):
        return f"never (all {min(n for _, n in trials):,}+ requests served)"
    delays = sorted(d * 1e3 for d, _ in trials if d is not None)
    served = [n for _, n in trials]
    over = sum(d > 1.0 for d in delays)
    return (
        f"{statistics.median(delays):.2f} / {delays[-1]:.2f} ms; served "
        f"{statistics.median(served):g} / {max(served)}; {over} of {len(delays)} over 1 ms"
    )


def revocation_max_ms(stats: Stats, node: str) -> float:
    trials = stats.trials.get(node, [])
    if not trials or any(d is None for d, _ in trials):
        return float("inf")
    return max(d for d, _ in trials if d is not None) * 1e3


def ratio_checks(results: dict[str, Stats]) -> list[tuple[str, str, bool]]:
    checks: list[tuple[str, str, bool]] = []
    for fw, ours, top, peer, peer_name, peer_top in (
        (
            "FastAPI",
            "fastapi_sessionsvc",
            "fastapi_noauth",
            "fastapi_users",
            "fastapi-users",
            "peers_fastapi_noauth",
        ),
        (
            "Flask",
            "flask_sessionsvc",
            "flask_noauth",
            "flask_jwt_extended",
            "flask-jwt-extended",
            "peers_flask_noauth",
        ),
        (
            "FastAPI without TestClient hops",
            "fastapi_sessionsvc_loop",
            "fastapi_noauth_loop",
            "fastapi_users_loop",
            "fastapi-users",
            "peers_fastapi_noauth_loop",
        ),
    ):
        if ours not in results:
            continue
        s = results[ours]
        ratio = s.throughput / results[top].throughput
        name = f"{fw}: sessionsvc ≥ {THROUGHPUT_TARGET}× no-auth ceiling"
        checks.append((name, f"{ratio:.2f}×", ratio >= THROUGHPUT_TARGET))
        if peer in results:
            ratio = s.throughput / results[peer].throughput
            # The peer ran in another process: its ratio to that process's own ceiling, too.
            own = ratio * (results[peer_top].throughput / results[top].throughput)
            name = f"{fw}: sessionsvc ≥ {PEER_TARGET}× {peer_name}"
            measured = f"{ratio:.2f}× (each ÷ own ceiling: {own:.2f}×)"
            checks.append((name, measured, ratio >= PEER_TARGET))
        if s.trials:
            for node, where in (
                ("same", "same node"),
                ("second", "second node in this process"),
                ("process", "second node in another process"),
            ):
                if node not in s.trials:
                    continue
                worst = revocation_max_ms(s, node)
                name = f"{fw}: revoked token refused ≤ {REVOKE_TARGET_MS:g} ms, {where} (max)"
                checks.append((name, f"{worst:.2f} ms", worst <= REVOKE_TARGET_MS))
    return checks


def report(results: dict[str, Stats], n: int, rounds: int, trials: int, versions: str) -> None:
    print(
        f"# http benchmark: {n:,} sequential GETs per contender in {rounds} interleaved rounds "
        f"(median round), {trials} revocation trials per node\n\n{versions}\n"
    )
    print(
        "| client | contender | req/s | p50 µs | p99 µs | vs ceiling | p50 µs over ceiling "
        "| revoked token refused after, same node: ms median / max; requests still served "
        "| second node, same process | second node, another process |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---|---|---|")
    for key, label, section, top_key in ROWS:
        s, top = results.get(key), results.get(top_key)
        if s is None or top is None:
            continue
        print(
            f"| {section} | {label} | {s.throughput:,.0f} | {s.p50_us:,.0f} | {s.p99_us:,.0f} "
            f"| {s.throughput / top.throughput:.2f}× | {s.p50_us - top.p50_us:+,.0f} "
            f"| {revocation_cell(s.trials.get('same'))} "
            f"| {revocation_cell(s.trials.get('second'))} "
            f"| {revocation_cell(s.trials.get('process'))} |"
        )
    print("\n| target | measured | result |")
    print("|---|---|---|")
    for name, measured, ok in ratio_checks(results):
        print(f"| {name} | {measured} | {'met' if ok else 'MISSED'} |")
    print("\nWhere the time goes: median p50 in µs, each column over the no-auth ceiling:\n")
    print(
        "| client | test client alone | framework (ceiling − client) | no-op dependency "
        "| sessionsvc | the peer (Redis GET/request) | PyJWT decode |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    fa = ("asgi_raw", "fastapi_noauth", "fastapi_dep", "fastapi_sessionsvc", "fastapi_users")
    for section, suffix, keys in (
        (TC, "", (*fa, "fastapi_pyjwt")),
        (LOOP, "_loop", (*fa, "fastapi_pyjwt")),
        (WZ, "", ("wsgi_raw", "flask_noauth", "", "flask_sessionsvc", "flask_jwt_extended", "")),
    ):
        p = {k: results[k + suffix].p50_us for k in keys if k and k + suffix in results}
        raw, top = keys[0], keys[1]
        if raw not in p or top not in p:
            continue
        cells = [f"{p[k] - p[top]:+,.0f}" if k in p else "" for k in keys[2:]]
        print(f"| {section} | {p[raw]:,.0f} | {p[top] - p[raw]:+,.0f} | {' | '.join(cells)} |")


def versions_line(peer_versions: dict[str, str]) -> str:
    from importlib.metadata import version

    ours = ", ".join(f"{d} {version(d)}" for d in ("fastapi", "starlette", "flask", "httpx2"))
    peers = ", ".join(f"{d} {v}" for d, v in peer_versions.items())
    return (
        f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"switch interval {sys.getswitchinterval() * 1e3:g} ms. "
        f"Ours: {ours}. Peers' venv: {peers or 'not run'}."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--quick", action="store_true", help="fewer, smaller rounds (~1 min; full ~6 min)"
    )
    parser.add_argument("--n", type=int, help="sequential GETs per contender per round (2000)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (7, quick 3)")
    parser.add_argument("--trials", type=int, help="revocation trials per node (20, quick 5)")
    parser.add_argument("--no-peers", action="store_true", help="skip the peers' virtualenv")
    parser.add_argument(
        "--switch-interval",
        type=float,
        help="sys.setswitchinterval here and in the node process (Python's default: 0.005 s)",
    )
    parser.add_argument(
        "--no-other-process", action="store_true", help="no second node in another process"
    )
    parser.add_argument("--peer-worker", metavar="REDIS_URL", help=argparse.SUPPRESS)
    parser.add_argument("--node-worker", metavar="CONFIG", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    if args.peer_worker:
        return peer_worker(args.peer_worker)
    if args.node_worker:
        return node_worker(args.node_worker)
    n = args.n or (400 if args.quick else 2000)
    rounds = args.rounds or (3 if args.quick else 7)
    trials = args.trials or (5 if args.quick else 20)
    python = None if args.no_peers else peers_python()

    from sessionsvc.embedded import RedisProcess

    quiet_logs()

    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        server = stack.enter_context(RedisProcess(Path(tmp)))
        contenders = local_contenders(stack, server.url, not args.no_other_process)
        peer_versions: dict[str, str] = {}
        if python is not None:
            peers = PeerProcess(python, server.url)
            stack.callback(peers.close)
            contenders += peers.contenders()
            peer_versions = peers.versions
        results = {c.key: Stats() for c in contenders}
        gc.collect()
        gc.freeze()  # (the set-up's objects out of the collector's way, in every process alike)
        print(f"http: warm-up, then {rounds} rounds ...", file=sys.stderr, flush=True)
        for c in contenders:
            c.run(min(n, 300))
        for r in range(rounds):
            order = contenders if r % 2 == 0 else contenders[::-1]
            for c in order:
                results[c.key].add(*c.run(n))
        print(f"http: {trials} revocation trials per node ...", file=sys.stderr, flush=True)
        for _ in range(trials):
            for c in contenders:
                if c.trial is not None:
                    nodes = ["same", "second"]
                    if c.key.endswith("sessionsvc") and not args.no_other_process:
                        nodes.append("process")
                    for node in nodes:
                        results[c.key].trials.setdefault(node, []).append(c.trial(node))
        report(results, n, rounds, trials, versions_line(peer_versions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
