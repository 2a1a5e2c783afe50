"""Benchmark: Redis CPU per revocation per follower, and propagation, at 8 to 64 followers.

Run with ``./dev bench fanout [--followers 8,16,32,64] [--rounds 3] [--k 100] [--rate 50]``
(``--quick``: one round of 40 revocations at 8 and 16 followers). It starts its own
redis-server and, for each count N of follower **processes**, measures two kinds of follower:

- **sessionsvc** — a ``Validator`` started on the log (``Validator.start()``: its feed thread,
  snapshot, position checks every 5 s, the ``XREAD`` tail on the hot connection) with one
  listener that notes when each revocation was applied; no web framework, no token validation:
  as light as a sessionsvc follower can be. Revocations are ``SessionService.logout`` calls
  (one script: state + log entry);
- **plain XREAD** — the reference: raw redis-py, ``XREAD BLOCK`` on a stream, no sessionsvc;
  revocations are one ``XADD`` each.

Each window starts N fresh processes, waits until every one follows, then publishes ``--k``
revocations at a fixed ``--rate`` per second and waits 0.5 s more. Redis CPU is the server's
``used_cpu_sys + used_cpu_user`` (``INFO cpu``) over that window. The publish cost itself (with
what Redis spends idle over a window, cron and the ``INFO`` call) is measured the same way in a
window with no followers (one per kind and round) and subtracted, so

    CPU per revocation per follower = (window CPU − K × publish CPU) / (K × N)

is what each follower adds to Redis: the input that carries to a bigger machine. It includes
what followers cost Redis while idle in the window (their ``XREAD`` timeouts, the validators'
position checks). Propagation: publish → the follower applied it (``time.monotonic_ns``, shared
by every process), p50/p99 over all (revocation, follower) pairs and p50/p99 of "every follower
has it", as in ``benchmarks/propagation.py``. Kinds and counts run interleaved in rounds, so a
noisy spell of the machine lands on all of them. No target: the table is the capacity model's
input (``docs/capacity.md``).

With N processes on few cores (2 here) a revocation wakes all N at once and they queue for the
CPU: the latency of 32 and 64 processes mostly measures the scheduler, not Redis or sessionsvc.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
import structlog

from sessionsvc import SessionService, Validator
from sessionsvc.embedded import RedisProcess

sys.path.append(str(Path(__file__).parent))  # (./dev bench runs python -P)
from propagation import bench_kwargs, make_settings, reader_proc, summarize

KINDS = {"plain": "plain XREAD (redis-py)", "sessionsvc": "sessionsvc Validator feed"}
STREAM = "bench:fanout"


def validator_proc(kwargs: dict[str, Any], ready: Any, stop: Any, out: Any) -> None:
    """The lightest sessionsvc follower: a started Validator and one listener."""
    validator = Validator(make_settings(kwargs)).start()
    seen: dict[str, int] = {}
    validator.add_listener(lambda rev: seen.__setitem__(rev.value, time.monotonic_ns()))
    ready.release()
    stop.wait()
    out.put(seen)
    validator.close()


def redis_cpu(client: redis.Redis) -> float:
    info: Any = client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def window(
    client: redis.Redis,
    target: Callable[..., None] | None,
    args: tuple[Any, ...],
    procs: int,
    publish: Callable[[str], object],
    keys: list[str],
    gap: float,
) -> tuple[float, dict[str, list[int]]]:
    """Start ``procs`` followers, publish ``keys`` one per ``gap`` s: (Redis CPU s, latencies)."""
    ctx = mp.get_context("fork")
    ready, stop, out = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    children = [ctx.Process(target=target, args=(*args, ready, stop, out)) for _ in range(procs)]
    for child in children:
        child.start()
    for _ in children:
        ready.acquire()
    time.sleep(0.5)
    sent: dict[str, int] = {}
    cpu0 = redis_cpu(client)
    start = time.monotonic()
    for i, key in enumerate(keys):  # a fixed rate: the i-th one is due at start + i × gap
        time.sleep(max(0.0, start + i * gap - time.monotonic()))
        sent[key] = time.monotonic_ns()
        publish(key)
    time.sleep(0.5)
    cpu = redis_cpu(client) - cpu0
    stop.set()
    results = [out.get(timeout=60) for _ in children]
    for child in children:
        child.join()
    return cpu, {k: [r[k] - sent[k] for r in results if k in r] for k in keys}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", default="8,16,32,64", help="follower counts")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each runs every window")
    parser.add_argument("--k", type=int, default=100, help="revocations per window")
    parser.add_argument("--rate", type=float, default=50.0, help="revocations per second")
    parser.add_argument("--quick", action="store_true", help="1 round, 40 revocations, 8 and 16")
    args = parser.parse_args()
    if args.quick:
        args.followers, args.rounds, args.k = "8,16", 1, 40
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    counts = [int(n) for n in args.followers.split(",")]
    gap = 1.0 / args.rate
    began = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp, RedisProcess(Path(tmp)) as server:
        if not server.running:
            server.start()
        kwargs = bench_kwargs(server.url)
        service = SessionService(make_settings(kwargs))
        raw = redis.Redis.from_url(server.url)
        raw.xadd(STREAM, {"k": "start"})
        cpu: dict[tuple[str, int], float] = {}
        lat: dict[tuple[str, int], dict[str, list[int]]] = {}
        revs: dict[tuple[str, int], int] = {}
        seq = 0

        def sessions(k: int) -> list[str]:
            nonlocal seq
            seq += 1
            return [service.login(f"user-{seq}-{i}").session_id for i in range(k)]

        def xadd(key: str) -> object:
            return raw.xadd(STREAM, {"k": key})

        for r in range(args.rounds):  # kinds and counts interleaved: noise lands on all alike
            order = counts if r % 2 == 0 else counts[::-1]
            for n in [0, *order]:
                for kind in KINDS if (r + n) % 2 == 0 else list(KINDS)[::-1]:
                    if kind == "plain":
                        keys = [f"p{r}-{n}-{i}" for i in range(args.k)]
                        follow: tuple[Any, ...] = (reader_proc, (server.url, STREAM))
                        publish: Callable[[str], object] = xadd
                    else:
                        keys = sessions(args.k)
                        follow, publish = (validator_proc, (kwargs,)), service.logout
                    used, got = window(raw, *follow, n, publish, keys, gap)
                    cpu[kind, n] = cpu.get((kind, n), 0.0) + used
                    revs[kind, n] = revs.get((kind, n), 0) + len(keys)
                    lat.setdefault((kind, n), {}).update(got)
        service.close()
        raw.close()
    elapsed = time.monotonic() - began

    print(
        f"\nfanout: {', '.join(map(str, counts))} follower processes, {args.k} revocations per "
        f"window at {args.rate:g}/s, {args.rounds} interleaved rounds "
        f"({args.k * args.rounds} revocations per row), {mp.cpu_count()} CPUs, "
        f"Python {sys.version.split()[0]}, {elapsed:.0f} s"
    )
    print(
        f"NOTE: on {mp.cpu_count()} cores every revocation wakes all N processes at once; the "
        "latency of 32 and 64 processes mostly measures the scheduler, not Redis or sessionsvc. "
        "Redis CPU per revocation per follower is the figure that carries to bigger machines.\n"
    )
    publish_us = {kind: cpu[kind, 0] / revs[kind, 0] * 1e6 for kind in KINDS}
    print(
        "publish cost alone (no followers), Redis CPU µs per revocation: "
        + ", ".join(f"{title} {publish_us[kind]:.1f}" for kind, title in KINDS.items())
        + "\n"
    )
    print(
        "| followers | follower | Redis CPU µs / revocation / follower | Redis CPU µs / "
        "revocation (all) | p50 ms | p99 ms | all-followers p50 | all-followers p99 | missed |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for n in counts:
        for kind, title in KINDS.items():
            k = revs[kind, n]
            per_rev = cpu[kind, n] / k * 1e6
            per_follower = (per_rev - publish_us[kind]) / n
            s = summarize(title, lat[kind, n], n)
            print(
                f"| {n} | {title} | {per_follower:.2f} | {per_rev:.1f} | {s['p50']:.3f} | "
                f"{s['p99']:.3f} | {s['all_p50']:.3f} | {s['all_p99']:.3f} | {s['missing']} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
