"""Session operations on Redis Cluster against one Redis, in the same run.

Run with ``./dev bench cluster [--n 2000] [--rounds 20]``. It starts its own servers (never the
one on 6379): one redis-server, and a 3-primary cluster on this host
(``sessionsvc.embedded_cluster``). On one Redis each operation is one script; on the cluster
the single-slot steps of ``sessionsvc.sessions.cluster`` (login 2 round trips, refresh 2,
logout 3, logout_all 3, list 2). One client, sequential calls, EdDSA, interleaved in rounds.

Columns: "× one Redis" is the median over rounds of p50(op on the cluster) / p50(the same op on
one Redis); "× baseline" of p50(op) / p50(the cluster's baseline: a pipelined ``HSET`` +
``EXPIRE`` on one node through the cluster client, one round trip). No target: the table says
what the steps cost against the round trips they take.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
import redis.cluster

from sessionsvc import SessionService
from sessionsvc.embedded import RedisProcess
from sessionsvc.embedded_cluster import ClusterProcess

sys.path.append(str(Path(__file__).parent))  # (./dev bench runs python -P)
from sessions import measure, per_round, settings_for, stats

OPS = ("login", "refresh", "logout", "logout_all", "list")
TRIPS = {"login": 2, "refresh": 2, "logout": 3, "logout_all": 3, "list": 2}


def operations(svc: SessionService, n: int, tag: str) -> dict[str, Callable[[int], object]]:
    """The five operations on ``svc``, each call ``i`` on users prepared for it."""
    pairs: list[Any] = [svc.login(f"{tag}-r-{i % 500}") for i in range(n)]
    ends = [svc.login(f"{tag}-o-{i % 500}") for i in range(n)]
    for i in range(n):  # users for logout_all, two sessions each
        svc.login(f"{tag}-all-{i}")
        svc.login(f"{tag}-all-{i}")

    def refresh(i: int) -> None:
        pairs[i] = svc.refresh(pairs[i].refresh_token)

    return {
        "login": lambda i: svc.login(f"{tag}-l-{i % 500}"),
        "refresh": refresh,
        "logout": lambda i: svc.logout(ends[i].session_id),
        "logout_all": lambda i: svc.logout_all(f"{tag}-all-{i}"),
        "list": lambda i: svc.list_sessions(f"{tag}-r-{i % 500}"),
    }


def run(single_url: str, cluster_url: str, n: int, rounds: int) -> dict[str, Any]:
    """Both topologies' timings, interleaved, with each one's baseline."""
    one = SessionService(settings_for("EdDSA", single_url))
    many = SessionService(
        settings_for("EdDSA", cluster_url).model_copy(update={"redis_cluster": True})
    )
    raw = redis.Redis.from_url(single_url)
    craw = redis.cluster.RedisCluster.from_url(cluster_url)
    for svc in (one, many):  # warm up: connections, scripts on every node
        for i in range(200):
            svc.logout(svc.refresh(svc.login(f"warm-{i}").refresh_token).session_id)
            svc.logout_all(f"warm-{i}")
            svc.list_sessions(f"warm-{i}")

    def baseline(client: Any) -> Callable[[int], None]:
        def call(i: int) -> None:
            pipe = client.pipeline(transaction=False)
            pipe.hset("bench:{b}", mapping={"sub": "u", "sid": "s", "cur": "j" * 22})
            pipe.expire("bench:{b}", 3600)
            pipe.execute()

        return call

    ops: dict[str, Callable[[int], object]] = {
        "one baseline": baseline(raw),
        "cluster baseline": baseline(craw),
    }
    for tag, svc in (("one", one), ("cluster", many)):
        for name, op in operations(svc, n, tag).items():
            ops[f"{tag} {name}"] = op
    t = measure(ops, n, rounds)
    for closing in (one, many, raw, craw):
        closing.close()
    return t


def main() -> int:
    """Start the servers, run, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="operations per measurement")
    parser.add_argument("--rounds", type=int, default=20, help="interleaved rounds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, RedisProcess(Path(tmp) / "one") as server:
        cluster = ClusterProcess(Path(tmp) / "cluster").start()
        try:
            t = run(server.url, cluster.url, args.n, args.rounds)
        finally:
            cluster.stop()
    print(
        f"session operations, one Redis vs a 3-primary cluster on this host: {args.n} sequential "
        f"calls each in {args.rounds} interleaved rounds, one client, EdDSA\n"
    )
    print(
        f"{'operation':<11} {'trips':>5} {'one p50 µs':>10} {'cluster p50 µs':>14} "
        f"{'cluster p99 µs':>14} {'× one Redis':>11} {'× baseline':>10}"
    )
    for topology in ("one", "cluster"):
        _, p50, p99 = stats(t[f"{topology} baseline"])
        print(f"{'baseline':<11} {1:>5} ({topology}: p50 {p50:.1f} µs, p99 {p99:.1f} µs)")
    for op in OPS:
        _, one50, _ = stats(t[f"one {op}"])
        _, c50, c99 = stats(t[f"cluster {op}"])
        vs_one = per_round(t[f"cluster {op}"], t[f"one {op}"])
        vs_base = per_round(t[f"cluster {op}"], t["cluster baseline"])
        print(
            f"{op:<11} {TRIPS[op]:>5} {one50:>10.1f} {c50:>14.1f} {c99:>14.1f} "
            f"{vs_one:>11.2f} {vs_base:>10.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
