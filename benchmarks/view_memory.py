"""Benchmark: validator memory per revocation entry, and bootstrap time, at 1,000,000 entries.

Run with ``./dev bench view_memory [--n 1000000]``. It starts its own redis-server, writes N
session revocations (realistic session ids, ``until`` spread over 15 minutes) straight into the
``{rev}`` state with pipelined ZADD (no log entries: what a long-running deployment's snapshot
holds), then in one run:

- **bootstrap** — ``Validator.start()`` on an empty view: one atomic SNAPSHOT script, reply
  parsed, every entry union-merged into the view; timed until the validator is synced;
- **memory** — a second validator bootstrapped under ``tracemalloc``: the bytes still held after
  bootstrap (the view, its fingerprints, shared expiry minutes, the feed's client), divided by N;
- **reference** — the same ids in a plain ``set`` of the strings (what merely holding the ids
  costs in Python).

Targets: ≤ 80 bytes per entry; bootstrap ≤ 3 s.
"""

from __future__ import annotations

import argparse
import gc
import json
import secrets
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import redis

from sessionsvc import Settings, Validator, generate_jwks
from sessionsvc.embedded import RedisProcess
from sessionsvc.revocation.log import RevKeys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    args = parser.parse_args()
    now = time.time()
    with tempfile.TemporaryDirectory() as tmp, RedisProcess(Path(tmp)) as server:
        if not server.running:
            server.start()
        client = redis.Redis.from_url(server.url)
        key = RevKeys().key("sid")
        for start in range(0, args.n, 10_000):
            pipe = client.pipeline(transaction=False)
            batch = {
                f"{secrets.token_urlsafe(9)}.{secrets.token_urlsafe(16)}": now + 900 + (i % 900)
                for i in range(start, min(args.n, start + 10_000))
            }
            pipe.zadd(key, batch)
            pipe.execute()
        client.close()
        settings = Settings(
            access_jwks=json.dumps(generate_jwks("EdDSA", "m-a")),  # type: ignore[arg-type]
            refresh_jwks=json.dumps(generate_jwks("EdDSA", "m-r")),  # type: ignore[arg-type]
            issuer="https://bench.invalid",
            audience="bench",
            redis_url=server.url,
            env="production",
            _env_file=None,  # type: ignore[arg-type, call-arg]
        )
        timing = Validator(settings)  # bootstrap time, without tracemalloc's slowdown
        started = time.perf_counter()
        timing.start(wait=60)
        boot = time.perf_counter() - started
        timing.close()
        del timing
        validator = Validator(settings)
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        validator.start(wait=120)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
        size = len(validator.view)
        validator.close()
        tracemalloc.stop()
        gc.collect()
        tracemalloc.start()
        ref_before = tracemalloc.get_traced_memory()[0]
        ids = [f"{secrets.token_urlsafe(9)}.{secrets.token_urlsafe(16)}" for _ in range(args.n)]
        plain = set(ids)
        del ids
        gc.collect()
        ref = tracemalloc.get_traced_memory()[0] - ref_before
        tracemalloc.stop()
        del plain
    per_entry, ref_entry = held / size, ref / args.n
    print(f"\nview memory: {size:,} session revocations in the view\n")
    print("| what | bytes/entry | total MB | seconds |")
    print("|---|---:|---:|---:|")
    print(f"| reference: set of the id strings | {ref_entry:.0f} | {ref / 1e6:.0f} | |")
    print(f"| validator view after bootstrap | {per_entry:.0f} | {held / 1e6:.0f} | {boot:.2f} |")
    print(
        f"\ntarget ≤ 80 bytes/entry: {'PASS' if per_entry <= 80 else 'MISS'}; "
        f"bootstrap ≤ 3 s: {'PASS' if boot <= 3 else 'MISS'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
