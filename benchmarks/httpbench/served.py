"""Real servers: each contender's app in a process of its own behind a real HTTP server
(uvicorn for the ASGI apps, Werkzeug's threaded HTTP/1.1 server for the WSGI ones), loaded by
``wrk`` from the benchmark's process over loopback, one connection and then eight: no test
client, no thread hop, the HTTP parsing and the sockets included. A revoked token is chased
over HTTP too: between requests the server's threads block on their sockets, as a deployed
node's do, so its follower thread gets the GIL at once.

The subprocess (``--server-worker CONFIG``) builds one app, serves it on a free port, prints
``{"port": N}`` and serves until a line arrives on its stdin. This module imports nothing of
sessionsvc at the top: the peers' servers run it in their own virtualenv.
"""

from __future__ import annotations

import gc
import json
import logging
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from httpbench.common import ENTRY, PASSWORD, USER, Get, _Worker, bearer

OURS = (
    "fastapi_noauth",
    "fastapi_sessionsvc",
    "fastapi_sessionsvc_mw",
    "flask_noauth",
    "flask_sessionsvc",
    "django_noauth",
    "django_sessionsvc",
)
PEERS = ("fastapi_users", "flask_jwt_extended")
_LATENCY = re.compile(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_UNITS = {"us": 1.0, "ms": 1e3, "s": 1e6}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _app(cfg: dict[str, Any]) -> tuple[Any, bool]:
    """The app of ``cfg["key"]`` and whether it is ASGI."""
    key = cfg["key"]
    if key in ("fastapi_noauth", "flask_noauth"):
        from httpbench import ceilings

        if key == "fastapi_noauth":
            return ceilings.fastapi_noauth(), True
        return ceilings.flask_noauth(), False
    if key in PEERS:
        from httpbench import peers

        if key == "fastapi_users":
            return peers.fastapi_users_app(cfg["redis_url"]), True
        return peers.flask_jwt_extended_app(cfg["redis_url"]), False
    from httpbench import ours
    from httpbench.common import quiet_logs

    quiet_logs()
    settings, web = ours.sessionsvc_settings(cfg["redis_url"], cfg["jwks"])
    if key == "fastapi_sessionsvc":
        return ours.sessionsvc_fastapi(settings, web), True
    if key == "fastapi_sessionsvc_mw":
        return ours.sessionsvc_fastapi_middleware(settings, web), True
    if key == "flask_sessionsvc":
        return ours.sessionsvc_flask(settings, web)[0], False
    from httpbench.djangoapp import django_handlers, django_project

    django_project(lambda: ours.sessionsvc_django(settings, web))
    ceiling, handler = django_handlers()
    return (ceiling if key == "django_noauth" else handler), False


def server_worker(config: str) -> int:
    """The subprocess: serve one app until a line arrives on stdin."""
    cfg = json.loads(config)
    app, asgi = _app(cfg)
    port = _free_port()
    stop: Callable[[], object]
    if asgi:
        import uvicorn

        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.01)
        stop = lambda: setattr(server, "should_exit", True)  # noqa: E731
    else:
        from werkzeug.serving import WSGIRequestHandler, make_server

        class Handler(WSGIRequestHandler):
            protocol_version = "HTTP/1.1"  # (keep-alive, as wrk expects)

            def log_request(self, *args: Any) -> None:
                pass

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        wsgi = make_server("127.0.0.1", port, app, threaded=True, request_handler=Handler)
        thread = threading.Thread(target=wsgi.serve_forever, daemon=True)
        thread.start()
        stop = wsgi.shutdown
    gc.collect()
    gc.freeze()
    print(json.dumps({"port": port}), flush=True)
    sys.stdin.readline()
    stop()
    thread.join(5)
    return 0


class Served(_Worker):
    """One server subprocess (``python``: this virtualenv's or the peers')."""

    def __init__(self, key: str, python: Path, config: dict[str, Any]) -> None:
        argv = [str(python), str(ENTRY), "--server-worker", json.dumps({"key": key, **config})]
        super().__init__(argv, f"the {key} server")
        self.key = key
        self.url = f"http://127.0.0.1:{self._read()['port']}"


@dataclass
class Load:
    """One ``wrk`` run: requests/s and the p50/p99 latency in µs."""

    rps: float
    p50_us: float
    p99_us: float


def have_wrk() -> bool:
    """Whether ``wrk`` is on the PATH (Debian: ``apt-get install wrk``)."""
    return shutil.which("wrk") is not None


def wrk(url: str, headers: dict[str, str], connections: int, seconds: float) -> Load:
    """``wrk`` on ``url`` with ``headers``: one thread, ``connections`` keep-alive connections."""
    args = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency"]
    args += [f"-H{name}: {value}" for name, value in headers.items()]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk {url}: some requests were refused:\n{out}")
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    lat = {m[1]: float(m[2]) * _UNITS[m[3]] for m in _LATENCY.finditer(out)}
    if found is None or set(lat) != {"50", "99"}:
        raise RuntimeError(f"wrk {url}: unexpected output:\n{out}")
    return Load(float(found[1]), lat["50"], lat["99"])


def http_get(client: Any, token: str) -> Get:
    """One GET of ``/api/me`` over HTTP with ``token``: its status code."""
    return lambda: int(client.get("/api/me", headers=bearer(token)).status_code)


def peer_login(client: Any, key: str) -> str:
    """A peer's token from its own login route, over HTTP."""
    if key == "fastapi_users":
        from httpbench.common import EMAIL

        response = client.post("/auth/redis/login", data={"username": EMAIL, "password": PASSWORD})
    else:
        response = client.post("/login", json={"username": USER})
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def peer_logout(client: Any, key: str, token: str) -> None:
    """A peer's logout route, over HTTP."""
    if key == "fastapi_users":
        client.post("/auth/redis/logout", headers=bearer(token)).raise_for_status()
    else:
        client.delete("/logout", headers=bearer(token)).raise_for_status()
