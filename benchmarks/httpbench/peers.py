"""The peers, flask-jwt-extended and fastapi-users, in their own virtualenv (created on the
first run from PyPI) and a subprocess of it. No ``from __future__ import annotations``:
FastAPI reads the routes' annotations."""

import contextlib
import gc
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from httpbench.ceilings import asgi_client, asgi_get, asgi_pair, ceilings
from httpbench.common import (
    BENCHMARKS,
    EMAIL,
    ENTRY,
    ORIGIN,
    PASSWORD,
    PEER_SECRET,
    USER,
    Contender,
    _Worker,
    bearer,
    chase,
)

PEERS_VENV = BENCHMARKS / ".peers-venv"


PEERS = (
    "fastapi-users==15.0.5",
    "flask-jwt-extended==4.7.4",
    "fastapi",
    "flask",
    "redis",
    "httpx2",
    "uvicorn",
)


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
        script = str(ENTRY)
        super().__init__([str(python), script, "--peer-worker", redis_url], "the peers' subprocess")
        hello = self._read()
        self.keys: list[str] = hello["ready"]
        self.versions: dict[str, str] = hello["versions"]

    def contenders(self) -> list[Contender]:
        result = []
        for key in self.keys:
            c = Contender(key, lambda: 200)
            c.run = lambda n, key=key: tuple(self.ask(cmd="run", key=key, n=n))  # type: ignore[method-assign]
            if key in ("fastapi_users", "flask_jwt_extended"):  # (the ones with a trial)
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
