"""Benchmark: reading stream replies through ``BoundedConnection`` vs ``HotConnection``.

Run with ``./dev bench bounded_read [--calls 2000] [--rounds 10]``. It starts its own
redis-server and measures, in one run:

- **µs per reply** — ``XREADGROUP … COUNT n STREAMS s 0`` (a consumer re-reading its pending
  entries: the same reply every call) for n = 1 and n = 500 small revocation events, through
  ``HotConnection`` (redis-py's hiredis parser) and ``BoundedConnection`` (its fast path: our
  socket read + hiredis), interleaved rounds, the median round reported; plus the cost of
  parsing the same reply bytes with ``ReplyParser`` alone (the slow path's parser, no I/O);
- **peak memory** — a fresh process reading one reply holding a 50 MB field: growth of
  ``ru_maxrss`` (the process is a grandchild of this one, so Linux's ru_maxrss, kept across
  execve, starts from a small interpreter's, not from this process's).

Target: the fast path within a few percent of ``HotConnection``; peak growth well under 50 MB.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from sessionsvc._redis.bounded import BoundedConnection
from sessionsvc._redis.hotconn import HotConnection
from sessionsvc._redis.resp import NEED_DATA, ReplyParser
from sessionsvc.embedded import RedisProcess

MEMORY_SCRIPT = """
import json, resource, sys
import redis
from sessionsvc._redis.bounded import BoundedConnection
from sessionsvc._redis.hotconn import HotConnection

kind, url = sys.argv[1], sys.argv[2]
client = redis.Redis.from_url(url)
conn = BoundedConnection(client) if kind == "BoundedConnection" else HotConnection(client)
conn("PING")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = __import__("time").perf_counter()
reply = conn("XRANGE", "big", "-", "+")
seconds = __import__("time").perf_counter() - started
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"growth_kb": after - before, "seconds": seconds}))
"""
RELAY = (
    "import subprocess, sys; print(subprocess.run([sys.executable, '-c', *sys.argv[1:]],"
    " check=True, capture_output=True, text=True).stdout, end='')"
)


def per_call_us(conn: Any, command: tuple[str, ...], calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        conn(*command)
    return (time.perf_counter() - started) / calls * 1e6


def parse_only_us(raw: bytes, calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        parser = ReplyParser()
        parser.feed(raw)
        assert parser.next_reply() is not NEED_DATA
    return (time.perf_counter() - started) / calls * 1e6


def memory(url: str, kind: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", RELAY, MEMORY_SCRIPT, kind, url],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    report: dict[str, float] = json.loads(out.stdout)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, RedisProcess(Path(tmp)) as server:
        if not server.running:
            server.start()
        admin = redis.Redis.from_url(server.url)
        for n in (1, 500):
            key = f"s{n}"
            pipe = admin.pipeline(transaction=False)
            for i in range(n):
                pipe.xadd(key, {"type": "token.revoke", "jti": f"jti-{i:08d}", "exp": "1800000600"})
            pipe.execute()
            admin.xgroup_create(key, "g", id="0")
            admin.xreadgroup("g", "c", {key: ">"})
        client = redis.Redis.from_url(server.url)
        hot, bounded = HotConnection(client), BoundedConnection(client)
        rows = []
        for n in (1, 500):
            command = ("XREADGROUP", "GROUP", "g", "c", "COUNT", str(n), "STREAMS", f"s{n}", "0")
            assert hot(*command) == bounded(*command)
            calls = max(args.calls // (1 if n == 1 else 20), 50)
            times: dict[str, list[float]] = {"hot": [], "bounded": []}
            for _ in range(args.rounds):
                times["hot"].append(per_call_us(hot, command, calls))
                times["bounded"].append(per_call_us(bounded, command, calls))
            raw = redis.Redis.from_url(server.url).connection_pool.get_connection()
            raw.send_command(*command)
            sock = raw._sock
            data = b""
            probe = ReplyParser()
            while True:  # the reply's bytes, read whole
                chunk = sock.recv(1 << 16)
                data += chunk
                probe.feed(chunk)
                if probe.next_reply() is not NEED_DATA:
                    break
            raw.disconnect()
            parse = statistics.median(parse_only_us(data, calls) for _ in range(3))
            h, b = statistics.median(times["hot"]), statistics.median(times["bounded"])
            rows.append((n, len(data), h, b, parse))
        hot.close()
        bounded.close()
        blob = bytes(range(256)) * 204_800
        admin.xadd("big", {"type": "token.revoke", "jti": "small"})
        admin.execute_command("XADD", "big", "*", "type", "token.revoke", "blob", blob)
        del blob
        mem = {kind: memory(server.url, kind) for kind in ("HotConnection", "BoundedConnection")}
        admin.close()
        client.close()
    print(
        f"\nbounded_read: XREADGROUP re-read of pending entries, {args.rounds} interleaved "
        "rounds, median round; redis-server on 127.0.0.1\n"
    )
    print(
        "| entries | reply bytes | HotConnection µs | BoundedConnection µs | ratio | "
        "ReplyParser alone µs |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for n, size, h, b, parse in rows:
        print(f"| {n} | {size:,} | {h:.1f} | {b:.1f} | {b / h:.3f} | {parse:.1f} |")
    print("\npeak memory reading one reply holding a 50 MB field (fresh process)\n")
    print("| reader | ru_maxrss growth MB | seconds |")
    print("|---|---:|---:|")
    for kind, report in mem.items():
        print(f"| {kind} | {report['growth_kb'] / 1024:.1f} | {report['seconds']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
