"""Session service benchmark: login / refresh / logout / logout_all against a real redis-server.

Run with ``./dev bench sessions [--n 3000] [--rounds 20]``. It starts its own redis-server
(``sessionsvc.embedded.RedisProcess``; never the one on 6379) and measures, in the same run,
one client, sequential calls:

- ``baseline``: a raw redis-py pipeline ``HSET`` (8 fields) + ``EXPIRE`` — one round trip;
- ``sign pair``: signing an access + refresh token pair (no I/O);
- ``verify``: verifying a refresh token (no I/O; every refresh must do it first);
- the four session operations.

Targets (p50 latency): logout and logout_all ≤ 1.5 × baseline; login and refresh
≤ 1.5 × (baseline + sign pair). For HS256 and EdDSA. The measurements run interleaved in
rounds; a ratio is the median over rounds of (p50 of the op) / (target from the same round's
references), which cancels most of the drift of a shared machine.

Durability (``SESSIONSVC_DURABILITY``): refresh, logout and logout_all at each level, each level
on a server of its own started here — ``none`` on the plain one, ``aof`` on one with
``appendonly yes`` / ``appendfsync everysec``, ``replica`` on a primary with one replica on this
host (the call, the barrier and ``WAIT 1`` in one round trip) — interleaved with the plain
server's baseline in the same rounds: "× baseline" is the median over rounds of
p50(op) / p50(baseline), "× none" of p50(op) / p50(the same op at ``none``). No target: the
table says what each level costs.

Two more references show what that formula leaves out: "sign + baseline" and "verify + sign +
baseline" do the minimum work of a login / a refresh (verify the presented token, sign a pair,
one round trip) in one loop. On small VMs, CPU work between socket waits runs markedly slower
than the same work in a hot loop of its own, and a refresh must verify the presented token
(EdDSA verification costs more than signing); the last column compares against those.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from sessionsvc import SessionService, Settings, generate_jwks
from sessionsvc.embedded import RedisProcess

Timings = list[float]
Row = tuple[str, list[Timings], str, float | None, float | None]


def measure(
    ops: dict[str, Callable[[int], object]], n: int, rounds: int
) -> dict[str, list[Timings]]:
    """Per-call latencies (seconds) of every op, in ``rounds`` chunks of n/rounds calls run
    round-robin, so machine noise falls on the references and the operations alike."""
    out: dict[str, list[Timings]] = {name: [] for name in ops}
    chunk = n // rounds
    for r in range(rounds):
        for name, op in ops.items():
            t: Timings = []
            for i in range(r * chunk, (r + 1) * chunk):
                start = time.perf_counter()
                op(i)
                t.append(time.perf_counter() - start)
            out[name].append(t)
    return out


def stats(rounds: list[Timings]) -> tuple[float, float, float]:
    """(ops/s, p50 µs, p99 µs) over every call of every round."""
    t = sorted(x for r in rounds for x in r)
    return len(t) / sum(t), statistics.median(t) * 1e6, t[int(len(t) * 0.99) - 1] * 1e6


def ratio(op: list[Timings], *refs: list[Timings]) -> float:
    """Median over rounds of p50(op) / (1.5 × Σ p50(ref)) within each round."""
    values = []
    for i, t in enumerate(op):
        budget = 1.5 * sum(statistics.median(ref[i]) for ref in refs)
        values.append(statistics.median(t) / budget)
    return statistics.median(values)


def settings_for(alg: str, url: str, durability: str = "none") -> Settings:
    """Settings with throw-away key rings of ``alg`` and the benchmark's Redis."""
    return Settings(
        access_jwks=json.dumps(generate_jwks(alg, f"bench-access-{alg}")),  # type: ignore[arg-type]
        refresh_jwks=json.dumps(generate_jwks(alg, f"bench-refresh-{alg}")),  # type: ignore[arg-type]
        issuer="https://bench.invalid",
        audience="bench",
        redis_url=url,  # type: ignore[arg-type]
        env="development",
        durability=durability,  # type: ignore[arg-type]
        _env_file=None,  # type: ignore[call-arg]
    )


def per_round(op: list[Timings], ref: list[Timings]) -> float:
    """Median over rounds of p50(op) / p50(ref) within each round."""
    return statistics.median(
        statistics.median(t) / statistics.median(ref[i]) for i, t in enumerate(op)
    )


LEVELS = ("none", "aof", "replica")
LevelRow = tuple[str, str, list[Timings], float, float]


def durability(alg: str, urls: dict[str, str], n: int, rounds: int) -> list[LevelRow]:
    """refresh, logout and logout_all at every level (``urls``: level → its server), with the
    plain server's baseline in the same rounds: (level, op, timings, × baseline, × none)."""
    raw = redis.Redis.from_url(urls["none"])
    for url in urls.values():
        redis.Redis.from_url(url).flushall()
    services = {level: SessionService(settings_for(alg, urls[level], level)) for level in LEVELS}
    pairs: dict[str, list[Any]] = {}
    for level, svc in services.items():
        for i in range(200):  # warm up: connections, scripts, the AOF check
            svc.logout(svc.refresh(svc.login(f"warm-{i}").refresh_token).session_id)
        pairs[level] = [svc.login(f"user-{i % 1000}") for i in range(n)]
        for i in range(n):  # users for logout_all, two sessions each
            svc.login(f"all-{i}")
            svc.login(f"all-{i}")

    def baseline(i: int) -> None:
        pipe = raw.pipeline(transaction=False)
        pipe.hset(f"bench:{i}", mapping={"sub": "u", "sid": "s", "cur": "j" * 22})
        pipe.expire(f"bench:{i}", 3600)
        pipe.execute()

    ops: dict[str, Callable[[int], object]] = {"baseline": baseline}
    for level, svc in services.items():
        p = pairs[level]

        def refresh(i: int, svc: SessionService = svc, p: list[Any] = p) -> None:
            p[i] = svc.refresh(p[i].refresh_token)

        ops[f"{level} refresh"] = refresh
        ops[f"{level} logout"] = lambda i, svc=svc, p=p: svc.logout(p[i].session_id)
        ops[f"{level} logout_all"] = lambda i, svc=svc, level=level: svc.logout_all(f"all-{i}")
    t = measure(ops, n, rounds)
    for svc in services.values():
        svc.close()
    raw.close()
    rows: list[LevelRow] = []
    for level in LEVELS:
        for op in ("refresh", "logout", "logout_all"):
            timings = t[f"{level} {op}"]
            rows.append(
                (
                    level,
                    op,
                    timings,
                    per_round(timings, t["baseline"]),
                    per_round(timings, t[f"none {op}"]),
                )
            )
    return rows


def run(alg: str, url: str, n: int, rounds: int) -> list[Row]:
    """Every measurement for one algorithm: (name, timings per round, target, p50/target,
    p50 / 1.5 × the minimal same work in one loop)."""
    raw = redis.Redis.from_url(url)
    raw.flushall()
    with SessionService(settings_for(alg, url)) as svc:
        issuer, verifier = svc.core.issuer, svc.core.verifier
        fields = {
            "sub": "u",
            "sid": "s",
            "created": "1",
            "last_seen": "1",
            "idle_exp": "2",
            "abs_exp": "3",
            "cur": "j" * 22,
            "ip": "192.0.2.1",
        }
        sample = issuer.refresh_token("user", "c2Vzcw.AAAAAAAAAAAAAAAAAAAAAA")
        pairs: list[Any] = [None] * n

        def baseline(i: int) -> None:
            pipe = raw.pipeline(transaction=False)
            pipe.hset(f"bench:{i}", mapping=fields)
            pipe.expire(f"bench:{i}", 3600)
            pipe.execute()

        def sign_baseline(i: int) -> None:
            issuer.issue(f"user-{i}")
            baseline(i)

        def verify_sign_baseline(i: int) -> None:
            verifier.verify(sample, time.time())
            sign_baseline(i)

        def login(i: int) -> None:
            pairs[i] = svc.login(f"user-{i % 1000}", ip="192.0.2.1", user_agent="bench/1.0")

        def refresh(i: int) -> None:
            pairs[i] = svc.refresh(pairs[i].refresh_token)

        for i in range(200):  # warm up: connections, scripts, caches
            baseline(i)
            svc.logout(svc.refresh(svc.login(f"warm-{i}").refresh_token).session_id)
        for i in range(n):  # users for logout_all, two sessions each
            svc.login(f"all-{i}")
            svc.login(f"all-{i}")
        t = measure(
            {
                "baseline": baseline,
                "sign": lambda i: issuer.issue(f"user-{i}"),
                "verify": lambda i: verifier.verify(sample, time.time()),
                "sign+base": sign_baseline,
                "verify+sign+base": verify_sign_baseline,
                "login": login,
                "refresh": refresh,
                "logout": lambda i: svc.logout(pairs[i].session_id),
                "logout_all": lambda i: svc.logout_all(f"all-{i}"),
            },
            n,
            rounds,
        )
    raw.close()
    base, sign = t["baseline"], t["sign"]
    return [
        ("baseline HSET+EXPIRE", base, "", None, None),
        ("sign pair", sign, "", None, None),
        ("verify refresh token", t["verify"], "", None, None),
        ("sign + baseline", t["sign+base"], "", None, None),
        ("verify + sign + baseline", t["verify+sign+base"], "", None, None),
        (
            "login",
            t["login"],
            "1.5×(base+sign)",
            ratio(t["login"], base, sign),
            ratio(t["login"], t["sign+base"]),
        ),
        (
            "refresh",
            t["refresh"],
            "1.5×(base+sign)",
            ratio(t["refresh"], base, sign),
            ratio(t["refresh"], t["verify+sign+base"]),
        ),
        ("logout", t["logout"], "1.5×base", ratio(t["logout"], base), None),
        (
            "logout_all (2 sessions)",
            t["logout_all"],
            "1.5×base",
            ratio(t["logout_all"], base),
            None,
        ),
    ]


def print_durability(alg: str, rows: list[LevelRow]) -> None:
    """The durability table."""
    print(
        f"\ndurability ({alg}): none = no persistence; aof = appendonly yes, appendfsync "
        "everysec; replica = one replica on this host, WAIT 1\n"
    )
    print(
        f"{'level':<8} {'operation':<12} {'ops/s':>7} {'p50 µs':>8} {'p99 µs':>8} "
        f"{'× baseline':>10} {'× none':>7}"
    )
    for level, op, timings, base, none in rows:
        ops, p50, p99 = stats(timings)
        print(f"{level:<8} {op:<12} {ops:>7.0f} {p50:>8.1f} {p99:>8.1f} {base:>10.2f} {none:>7.2f}")


def main() -> int:
    """Start redis-server, run both algorithms, print the table; exit 1 if a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000, help="operations per measurement")
    parser.add_argument("--rounds", type=int, default=20, help="interleaved rounds")
    parser.add_argument(
        "--durability", choices=("yes", "no", "only"), default="yes", help="the levels' table"
    )
    args = parser.parse_args()
    missed = 0
    with tempfile.TemporaryDirectory() as tmp, RedisProcess(Path(tmp)) as server:
        if args.durability != "only":
            missed = algorithms(server, args.n, args.rounds)
        if args.durability != "no":
            aof = ["--appendonly", "yes", "--appendfsync", "everysec"]
            with (
                RedisProcess(Path(tmp) / "aof", extra_args=aof) as with_aof,
                RedisProcess(Path(tmp) / "primary") as primary,
                RedisProcess(Path(tmp) / "replica", replica_of=primary.port) as replica,
            ):
                replica.wait_replicating()
                urls = {"none": server.url, "aof": with_aof.url, "replica": primary.url}
                print_durability("EdDSA", durability("EdDSA", urls, args.n, args.rounds))
    return 1 if missed else 0


def algorithms(server: RedisProcess, n: int, rounds: int) -> int:
    """The main table, both algorithms; the number of targets missed."""
    missed = 0
    print(
        f"sessions benchmark: {n} sequential calls each in {rounds} interleaved "
        f"rounds, one client, {Path(server.binary).name} on 127.0.0.1\n"
    )
    print(
        f"{'alg':<6} {'operation':<25} {'ops/s':>7} {'p50 µs':>8} {'p99 µs':>8} "
        f"{'target':>16} {'p50/target':>10}        {'vs 1-loop ref':>13}"
    )
    for alg in ("HS256", "EdDSA"):
        for name, timings, target, value, loop in run(alg, server.url, n, rounds):
            ops, p50, p99 = stats(timings)
            line = f"{alg:<6} {name:<25} {ops:>7.0f} {p50:>8.1f} {p99:>8.1f}"
            if value is not None:
                missed += value > 1
                verdict = "ok" if value <= 1 else "MISSED"
                line += f" {target:>16} {value:>10.2f} {verdict:<6}"
            if loop is not None:
                line += f" {loop:>13.2f}"
            print(line)
    return missed


if __name__ == "__main__":
    sys.exit(main())
