"""The real-server phase of the http benchmark: every server started (``served``), rounds of
``wrk`` interleaved across them (one connection, then eight; the order reversed every other
round), then the revocation trials over HTTP; and its table."""

from __future__ import annotations

import contextlib
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from httpbench.common import PEER_TARGET, REVOKE_TARGET_MS, THROUGHPUT_TARGET, bearer, chase
from httpbench.ours import Node
from httpbench.report import revocation_cell
from httpbench.served import (
    OURS,
    PEERS,
    Load,
    Served,
    http_get,
    peer_login,
    peer_logout,
    wrk,
)

MANY = 8  # connections of the second load
CEILING = {
    "fastapi_sessionsvc": "fastapi_noauth",
    "fastapi_sessionsvc_mw": "fastapi_noauth",
    "fastapi_users": "fastapi_noauth",
    "flask_sessionsvc": "flask_noauth",
    "flask_jwt_extended": "flask_noauth",
    "django_sessionsvc": "django_noauth",
}
LABELS = {
    "fastapi_noauth": ("FastAPI (uvicorn)", "(a) no auth: the ceiling"),
    "fastapi_sessionsvc": ("FastAPI (uvicorn)", "(b) sessionsvc `Depends(auth.require())`"),
    "fastapi_sessionsvc_mw": ("FastAPI (uvicorn)", "(b) sessionsvc `AuthMiddleware`"),
    "fastapi_users": ("FastAPI (uvicorn)", "(d) fastapi-users RedisStrategy (GET/request)"),
    "flask_noauth": ("Flask (Werkzeug server)", "(a) no auth: the ceiling"),
    "flask_sessionsvc": ("Flask (Werkzeug server)", "(b) sessionsvc `@auth.required()`"),
    "flask_jwt_extended": ("Flask (Werkzeug server)", "(c) flask-jwt-extended blocklist"),
    "django_noauth": ("Django (Werkzeug server)", "(a) no auth: the ceiling (no middleware)"),
    "django_sessionsvc": ("Django (Werkzeug server)", "(b) sessionsvc middleware + decorator"),
}
PEER_OF = {"fastapi_sessionsvc": "fastapi_users", "flask_sessionsvc": "flask_jwt_extended"}


@dataclass
class ServedStats:
    one: list[Load] = field(default_factory=list)
    many: list[Load] = field(default_factory=list)
    trials: list[tuple[float | None, int]] = field(default_factory=list)

    def rps(self, many: bool = False) -> float:
        return statistics.median(x.rps for x in (self.many if many else self.one))

    def p(self, name: str) -> float:
        return statistics.median(getattr(x, name) for x in self.one)


def _path(key: str) -> str:
    return "/api/plain" if key == "django_noauth" else "/api/me"


def served_phase(
    redis_url: str,
    jwks: dict[str, str],
    peers_python: Path | None,
    rounds: int,
    seconds: float,
    trials: int,
) -> dict[str, ServedStats]:
    """Start every server, load each with ``wrk`` for ``rounds`` rounds, chase revocations."""
    import httpx2

    results: dict[str, ServedStats] = {}
    with contextlib.ExitStack() as stack:
        servers = [
            Served(k, Path(sys.executable), {"redis_url": redis_url, "jwks": jwks}) for k in OURS
        ]
        if peers_python is not None:
            servers += [Served(k, peers_python, {"redis_url": redis_url}) for k in PEERS]
        for s in servers:
            stack.callback(s.close)
        clients: dict[str, Any] = {
            s.key: stack.enter_context(httpx2.Client(base_url=s.url)) for s in servers
        }
        login = Node(clients["fastapi_sessionsvc"].request)  # (a node over HTTP: it logs out)
        ours = login.login()
        tokens = {
            s.key: peer_login(clients[s.key], s.key) if s.key in PEERS else ours for s in servers
        }
        for s in servers:
            results[s.key] = ServedStats()
            wrk(s.url + _path(s.key), bearer(tokens[s.key]), 1, 1)  # (warm-up)
        print(f"http: real servers, {rounds} rounds of wrk ...", file=sys.stderr, flush=True)
        for r in range(rounds):
            for s in servers if r % 2 == 0 else servers[::-1]:
                url, headers = s.url + _path(s.key), bearer(tokens[s.key])
                results[s.key].one.append(wrk(url, headers, 1, seconds))
                results[s.key].many.append(wrk(url, headers, MANY, seconds))
        for _ in range(trials):
            for s in servers:
                if s.key in CEILING:
                    results[s.key].trials.append(_trial(s.key, clients[s.key], login))
    return results


def _trial(key: str, client: Any, login: Node) -> tuple[float | None, int]:
    """Logout (sessionsvc: on the FastAPI server, where the others learn it from the log; a
    peer: its own route on its server), then GETs over HTTP until one is refused."""
    token = peer_login(client, key) if key in PEERS else login.login()
    get = http_get(client, token)
    if get() != 200:
        raise RuntimeError(f"{key}: a fresh token was refused")
    if key in PEERS:
        peer_logout(client, key, token)
    else:
        login.logout(token)
    return chase(get, since=time.monotonic_ns())


def served_report(results: dict[str, ServedStats], seconds: float) -> None:
    """The real servers' table and their targets."""
    print(
        f"\nReal servers, each in a process of its own, loaded by wrk over loopback "
        f"({seconds:g} s per load, median round); revocation chased over HTTP after a logout on "
        "the FastAPI `Depends` server (for the others: a node in another process):\n"
    )
    print(
        "| server | contender | 1 conn: req/s | p50 µs | p99 µs | vs ceiling "
        f"| {MANY} conns: req/s | vs ceiling | revoked token refused after: ms median / max; "
        "requests still served |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for key, (server, label) in LABELS.items():
        s = results.get(key)
        if s is None:
            continue
        top = results[CEILING.get(key, key)]
        one, many = s.rps(), s.rps(True)
        print(
            f"| {server} | {label} | {one:,.0f} | {s.p('p50_us'):,.0f} | {s.p('p99_us'):,.0f} "
            f"| {one / top.rps():.2f}× | {many:,.0f} | {many / top.rps(True):.2f}× "
            f"| {revocation_cell(s.trials)} |"
        )
    print("\n| target (real servers) | measured | result |\n|---|---|---|")
    for key in (
        "fastapi_sessionsvc",
        "fastapi_sessionsvc_mw",
        "flask_sessionsvc",
        "django_sessionsvc",
    ):
        s = results.get(key)
        if s is None:
            continue
        server, label = LABELS[key]
        top = results[CEILING[key]]
        for many in (False, True):
            ratio = s.rps(many) / top.rps(many)
            conns = f"{MANY} connections" if many else "1 connection"
            _target(
                f"{server} {label}, {conns}: ≥ {THROUGHPUT_TARGET}× no-auth",
                f"{ratio:.2f}×",
                ratio >= THROUGHPUT_TARGET,
            )
            peer = results.get(PEER_OF.get(key, ""))
            if peer is not None:
                ratio = s.rps(many) / peer.rps(many)
                _target(
                    f"{server}, {conns}: ≥ {PEER_TARGET}× {LABELS[PEER_OF[key]][1]}",
                    f"{ratio:.2f}×",
                    ratio >= PEER_TARGET,
                )
        worst = max((d for d, _ in s.trials if d is not None), default=float("inf")) * 1e3
        if any(d is None for d, _ in s.trials):
            worst = float("inf")
        _target(
            f"{server} {label}: revoked token refused ≤ {REVOKE_TARGET_MS:g} ms (max)",
            f"{worst:.2f} ms",
            worst <= REVOKE_TARGET_MS,
        )


def _target(name: str, measured: str, ok: bool) -> None:
    print(f"| {name} | {measured} | {'met' if ok else 'MISSED'} |")
