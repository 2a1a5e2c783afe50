"""Benchmark: sustained inbound events per second of one worker.

Run with ``./dev bench worker [--n 50000]``. It starts its own redis-server and measures, in one
run:

- **raw XADD** — the inbound events written with pipelined redis-py ``XADD`` (batches of 500):
  the rate Redis and the client manage with no consumer at all (the reference; the mean of the
  two backlogs the run writes, one per consumer, both printed);
- **bare forwarder** — the reference design: one process that reads batches through a consumer
  group, XADDs every entry to a log and XACKs, with no parsing and no state;
- **worker** — one ``Worker`` (in its own process) draining that backlog through the consumer
  group: parse and validate each event, apply it (state + log append, one script per event,
  one pipelined round trip per batch), dead-letter and ``XACK``; timed from the moment the
  set-up process is told to go until the group has acknowledged every entry (process start and
  set-up are not part of a sustained rate; the bare forwarder is timed the same way).

Events are a mix of ``token.revoke`` (with exp), ``session.revoke`` (foreign session ids) and
``user.revoke`` with ``before``, all distinct, so every one changes state and appends to the log.
Targets: worker ≥ 25,000 events/s and ≥ 30% of the raw XADD rate.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import redis

from sessionsvc import Settings, generate_jwks
from sessionsvc.embedded import RedisProcess
from workers.worker import Worker, WorkerOptions

STREAM = "ss:events"


def events(n: int, now: int) -> list[dict[str, str]]:
    out = []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            out.append({"type": "token.revoke", "jti": f"jti-{i}", "exp": str(now + 600)})
        elif kind == 1:
            out.append({"type": "session.revoke", "sid": f"foreign-session-{i}"})
        else:
            out.append({"type": "user.revoke", "sub": f"user-{i}", "before": str(now)})
    return out


def fill(client: redis.Redis, batch: list[dict[str, str]], stream: str = STREAM) -> float:
    start = time.perf_counter()
    for i in range(0, len(batch), 500):
        pipe = client.pipeline(transaction=False)
        for fields in batch[i : i + 500]:
            pipe.xadd(stream, fields)  # type: ignore[arg-type]
        pipe.execute()
    return time.perf_counter() - start


def worker_proc(kwargs: dict[str, Any], go: Any, stop: Any) -> None:
    settings = Settings(**kwargs, _env_file=None)  # type: ignore[call-arg]
    worker = Worker(settings, WorkerOptions(consumer="bench", housekeeping=3600))
    threading.Thread(target=lambda: (stop.wait(), worker.stop()), daemon=True).start()
    go.wait()
    worker.run()


def forwarder_proc(url: str, stream: str, go: Any, stop: Any) -> None:
    """The reference design: a bare forwarder (no parsing, no state): XREADGROUP a batch,
    XADD every entry to a log and XACK them, one pipeline per batch."""
    client = redis.Redis.from_url(url, socket_timeout=5)
    client.ping()
    go.wait()
    while not stop.is_set():
        reply: Any = client.xreadgroup("workers", "fwd", {stream: ">"}, count=500, block=200)
        entries = reply[0][1] if isinstance(reply, list) and reply else []
        if isinstance(reply, dict):
            entries = next(iter(reply.values()))
            entries = entries[0] if len(entries) == 1 and isinstance(entries[0], list) else entries
        if entries:
            pipe = client.pipeline(transaction=False)
            for _entry_id, fields in entries:
                pipe.xadd("bench:log", fields)
            pipe.xack(stream, "workers", *[entry_id for entry_id, _ in entries])
            pipe.execute()
    client.close()


def drain(target: Any, args: tuple[Any, ...], client: redis.Redis, stream: str, n: int) -> float:
    ctx = mp.get_context("fork")
    go, stop = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=target, args=(*args, go, stop))
    proc.start()
    time.sleep(1.0)  # process start and set-up are not part of a sustained rate
    start = time.perf_counter()
    go.set()
    while not drained(client, stream, n):
        time.sleep(0.005)
    elapsed = time.perf_counter() - start
    stop.set()
    proc.join(timeout=10)
    return elapsed


def drained(client: redis.Redis, stream: str, n: int) -> bool:
    try:
        groups: Any = client.xinfo_groups(stream)
    except redis.ResponseError:
        return False
    g = groups[0] if groups else None
    return bool(g) and int(g["pending"]) == 0 and int(g.get("entries-read") or 0) >= n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    args = parser.parse_args()
    now = int(time.time())
    with tempfile.TemporaryDirectory() as tmp, RedisProcess(Path(tmp)) as server:
        if not server.running:
            server.start()
        client = redis.Redis.from_url(server.url)
        raw_s = fill(client, events(args.n, now))
        kwargs = {
            "access_jwks": json.dumps(generate_jwks("EdDSA", "b-a")),
            "refresh_jwks": json.dumps(generate_jwks("EdDSA", "b-r")),
            "issuer": "https://bench.invalid",
            "audience": "bench",
            "redis_url": server.url,
            "env": "production",
            "tick_interval": 0,  # the log holds the applied events only
        }
        worker_s = drain(worker_proc, (kwargs,), client, STREAM, args.n)
        client.delete("bench:in")
        raw_s2 = fill(client, events(args.n, now), "bench:in")
        client.xgroup_create("bench:in", "workers", id="0")
        forward_s = drain(forwarder_proc, (server.url, "bench:in"), client, "bench:in", args.n)
        log_len = int(client.xlen("ss:{rev}:log"))
        dlq_len = int(client.xlen("{ss:events}:dlq")) if client.exists("{ss:events}:dlq") else 0
        client.close()
    fills = (raw_s, raw_s2)
    raw_s = (raw_s + raw_s2) / 2  # both backlogs are written the same way: two samples, not one
    raw_rate, rate, forward_rate = args.n / raw_s, args.n / worker_s, args.n / forward_s
    print(f"\nworker: {args.n} inbound events, 1 worker process, {mp.cpu_count()} CPUs\n")
    print("| what | seconds | events/s | vs raw XADD |")
    print("|---|---:|---:|---:|")
    print(f"| raw pipelined XADD (reference, mean of 2) | {raw_s:.2f} | {raw_rate:,.0f} | 100% |")
    print(
        f"| bare forwarder, no parsing or state (reference) | {forward_s:.2f} | "
        f"{forward_rate:,.0f} | {forward_rate / raw_rate:.0%} |"
    )
    print(f"| worker: parse + apply + ack | {worker_s:.2f} | {rate:,.0f} | {rate / raw_rate:.0%} |")
    absolute = "PASS" if rate >= 25_000 else "MISS"
    relative = "PASS" if rate >= 0.3 * raw_rate else "MISS"
    print(f"\nlog entries written: {log_len:,}; dead letters: {dlq_len}")
    print(f"raw XADD fills: {', '.join(f'{args.n / t:,.0f}/s' for t in fills)}")
    print(f"target ≥ 25,000 events/s: {absolute}; target ≥ 30% of raw XADD: {relative}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
