"""Benchmark: a protected HTTP endpoint, sessionsvc against the peers and the frameworks' ceilings.

Run with ``./dev bench http [--quick] [--n N] [--rounds R] [--trials T] [--seconds S]``. One
run starts its own redis-server (``RedisProcess``, never 6379) and measures, each framework
through its own in-process test client (FastAPI: Starlette's ``TestClient`` on
``https://testserver``; Flask: Werkzeug's ``app.test_client()``; Django: ``django.test.Client``),
then behind a real server loaded by ``wrk`` (``httpbench.served``), one ``GET /api/me`` with
``Authorization: Bearer``, HS256 for all:

- (a) **no auth** — the same route without auth: the framework's ceiling. Beside it, what the
  test client alone costs (a bare ASGI / WSGI callable) and, for FastAPI, a no-op ``Depends``
  that takes the ``Request`` (what any auth dependency pays FastAPI);
- (b) **sessionsvc** — ``Depends(auth.require())`` or FastAPI's ``AuthMiddleware``,
  ``@auth.required()`` in Flask, Django's ``AuthMiddleware`` with ``@require_session()``; the
  token from ``POST /auth/login`` with ``{"transport": "bearer"}``; no Redis call per request;
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
second node in another process (``--node-worker``), as a deployment has it (Django: one
project per process, so no second one in this process). PyJWT has nothing to revoke: its token
keeps working ("never").

Real servers (``httpbench.served``, skipped without ``wrk``, or with ``--no-servers``): each
contender in a process of its own, FastAPI under uvicorn, Flask and Django under Werkzeug's
threaded HTTP/1.1 server, ``wrk`` with one and with eight keep-alive connections, rounds
interleaved; the revocation chased over HTTP after a logout on this process's node.

Targets: sessionsvc ≥ 0.9× its framework's no-auth throughput; ≥ 1.5× flask-jwt-extended
(Flask) and fastapi-users (FastAPI); a revoked token refused within 5 ms on every node (the
worst trial). A benchmark, not a test: it prints MISSED and never fails. (No ``from __future__
import annotations``: FastAPI reads the routes' annotations, which name local objects.)
"""

import sys
from pathlib import Path

# This file is named http.py and Python puts its folder first on sys.path, where it would shadow
# the standard library's ``http`` package (which httpx, Starlette and Werkzeug import). Its
# parts are the package ``httpbench`` beside it, imported from that folder put back last.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.append(str(_HERE))

import argparse  # noqa: E402
import contextlib  # noqa: E402
import gc  # noqa: E402
import tempfile  # noqa: E402

from httpbench.common import quiet_logs  # noqa: E402
from httpbench.nodes import local_contenders, node_worker  # noqa: E402
from httpbench.peers import PeerProcess, peer_worker, peers_python  # noqa: E402
from httpbench.report import Stats, report, versions_line  # noqa: E402
from httpbench.served import have_wrk, server_worker  # noqa: E402
from httpbench.servedrun import served_phase, served_report  # noqa: E402


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
    parser.add_argument(
        "--no-servers", action="store_true", help="skip the real servers loaded by wrk"
    )
    parser.add_argument("--seconds", type=float, help="seconds per wrk load (3, quick 1)")
    parser.add_argument("--peer-worker", metavar="REDIS_URL", help=argparse.SUPPRESS)
    parser.add_argument("--server-worker", metavar="CONFIG", help=argparse.SUPPRESS)
    parser.add_argument("--node-worker", metavar="CONFIG", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    if args.peer_worker:
        return peer_worker(args.peer_worker)
    if args.node_worker:
        return node_worker(args.node_worker)
    if args.server_worker:
        return server_worker(args.server_worker)
    n = args.n or (400 if args.quick else 2000)
    rounds = args.rounds or (3 if args.quick else 7)
    trials = args.trials or (5 if args.quick else 20)
    python = None if args.no_peers else peers_python()

    from sessionsvc.embedded import RedisProcess

    quiet_logs()

    with tempfile.TemporaryDirectory() as tmp, RedisProcess(Path(tmp)) as server:
        jwks = in_process(server.url, args, python, n, rounds, trials)
        if args.no_servers:
            return 0
        if not have_wrk():
            print("\nhttp: no wrk (apt-get install wrk): real servers skipped", file=sys.stderr)
            return 0
        seconds = args.seconds or (1.0 if args.quick else 3.0)
        served = served_phase(server.url, jwks, python, rounds, seconds, trials)
        served_report(served, seconds)
    return 0


def in_process(
    redis_url: str, args: argparse.Namespace, python: Path | None, n: int, rounds: int, trials: int
) -> dict[str, str]:
    """The test clients' rounds and trials, and their tables; the keys the nodes used. Every
    in-process node is closed at the end (their followers would otherwise wake with every
    revocation of the real servers' phase and delay this process's HTTP client)."""
    with contextlib.ExitStack() as stack:
        contenders, jwks = local_contenders(stack, redis_url, not args.no_other_process)
        peer_versions: dict[str, str] = {}
        if python is not None:
            peers = PeerProcess(python, redis_url)
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
                    for node in c.nodes:
                        results[c.key].trials.setdefault(node, []).append(c.trial(node))
        report(results, n, rounds, trials, versions_line(peer_versions))
    gc.unfreeze()
    return jwks


if __name__ == "__main__":
    sys.exit(main())
