"""The http benchmark's table: each contender's median round against its ceiling, the
revocation trials, the targets, and where the time goes."""

from __future__ import annotations

import os
import platform
import statistics
import sys
from dataclasses import dataclass, field

from httpbench.common import PEER_TARGET, REVOKE_TARGET_MS, THROUGHPUT_TARGET

TC = "FastAPI (TestClient)"


LOOP = "FastAPI (ASGITransport, no thread hop)"


WZ = "Flask (test_client)"
DJ = "Django (test Client)"


ROWS = (  # key, row label, section, the ceiling it is divided by
    ("asgi_raw", "client alone: bare ASGI app", TC, "fastapi_noauth"),
    ("fastapi_noauth", "(a) no auth: the ceiling", TC, "fastapi_noauth"),
    ("fastapi_dep", "no auth, a no-op `Depends` taking the Request", TC, "fastapi_noauth"),
    ("fastapi_sessionsvc", "(b) sessionsvc `Depends(auth.require())`", TC, "fastapi_noauth"),
    ("fastapi_sessionsvc_mw", "(b) sessionsvc `AuthMiddleware`", TC, "fastapi_noauth"),
    ("fastapi_users", "(d) fastapi-users RedisStrategy (GET/request)", TC, "fastapi_noauth"),
    ("fastapi_pyjwt", "(e) PyJWT `jwt.decode`, no revocation", TC, "fastapi_noauth"),
    ("peers_asgi_raw", "peers' process: bare ASGI app", TC, "peers_fastapi_noauth"),
    ("peers_fastapi_noauth", "peers' process: no auth", TC, "peers_fastapi_noauth"),
    ("peers_fastapi_dep", "peers' process: no-op `Depends`", TC, "peers_fastapi_noauth"),
    ("asgi_raw_loop", "client alone: bare ASGI app", LOOP, "fastapi_noauth_loop"),
    ("fastapi_noauth_loop", "(a) no auth: the ceiling", LOOP, "fastapi_noauth_loop"),
    ("fastapi_dep_loop", "no auth, a no-op `Depends`", LOOP, "fastapi_noauth_loop"),
    ("fastapi_sessionsvc_loop", "(b) sessionsvc", LOOP, "fastapi_noauth_loop"),
    ("fastapi_sessionsvc_mw_loop", "(b) sessionsvc `AuthMiddleware`", LOOP, "fastapi_noauth_loop"),
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
    ("django_noauth", "(a) no auth: the ceiling (no middleware)", DJ, "django_noauth"),
    (
        "django_sessionsvc",
        "(b) sessionsvc `AuthMiddleware` + `@require_session()`",
        DJ,
        "django_noauth",
    ),
)


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
    fu = ("fastapi_users", "fastapi-users", "peers_fastapi_noauth")
    fu_loop = ("fastapi_users_loop", "fastapi-users", "peers_fastapi_noauth_loop")
    fje = ("flask_jwt_extended", "flask-jwt-extended", "peers_flask_noauth")
    for fw, ours, top, (peer, peer_name, peer_top) in (
        ("FastAPI", "fastapi_sessionsvc", "fastapi_noauth", fu),
        ("FastAPI, middleware", "fastapi_sessionsvc_mw", "fastapi_noauth", fu),
        ("Flask", "flask_sessionsvc", "flask_noauth", fje),
        ("Django", "django_sessionsvc", "django_noauth", ("", "", "")),
        (
            "FastAPI without TestClient hops",
            "fastapi_sessionsvc_loop",
            "fastapi_noauth_loop",
            fu_loop,
        ),
        (
            "FastAPI middleware without hops",
            "fastapi_sessionsvc_mw_loop",
            "fastapi_noauth_loop",
            fu_loop,
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
