"""Benchmark: how fast key events reach running validators, against references of the same run.

Run with ``./dev bench keys [--k 40] [--rounds 4] [--procs 4] [--intervals 0.2,1]
[--rotations 30]`` (``--quick``: a short run that checks the benchmark works, not its figures).
It starts its own redis-server and measures two key events:

1. **key.revoke** — published as operators publish it (``Publisher``, the CLI's publisher, to the
   trusted intake ``ss:events``), applied by a worker process; the validators — one in the
   benchmark's process and ``--procs`` in processes of their own, each following the log
   (``Validator.start()``) and holding a warm cached token of every key — each time until their
   listener fired *and* ``validate`` of that key's token then raised ``revoked``. Each event names
   a key of its own (a key revocation never expires), every one in the configured access ring.
   **Reference, the same run:** the same pipeline with ``session.revoke`` (the event of
   ``./dev bench propagation``'s worker path): same publisher, worker, log and validators. The
   two kinds alternate in rounds (``--rounds``, fresh validator processes in each window), so a
   noisy spell of the machine lands on both; the table shows key/session ratios per validator.
2. **JWKS file change** — a validator configured with a watched JWKS file
   (``SESSIONSVC_KEYS_RELOAD_INTERVAL``, ``sessionsvc.tokens.ring_watcher``) and a rotation in
   the file, as ``sessionsvc keys rotate`` makes it (``sessionsvc.tokens.rotation``: stage, then
   promote and retire; each written atomically, ``write_document``). Measured: the write of a
   staged key → the first ``validate`` of a token signed by that key that accepts it (a
   listener of the validator's ring, called on the watcher thread right after the ring is in
   use). Between rotations the previous key is promoted and the one before it retired (not
   measured), then the next write waits a stratified random share of the interval, so that
   writes fall uniformly between the watcher's ticks. **Reference:** the configured interval:
   the expected mean is interval/2 plus the reload's own cost (the file read and judged,
   measured in the run); "past the tick" is each latency minus the time the watcher still had
   to sleep when the file was written (the reload, the listener and thread wake-ups); a write
   that ends just after a tick has read the file waits for the next one ("a tick late": counted,
   and its "past the tick" taken from the tick that read it).

Clock: ``time.monotonic_ns`` (CLOCK_MONOTONIC, shared by every process on the machine). Events
are published one at a time, ``--gap`` apart. No target: key.revoke should cost what a session
revocation costs, and a file change should arrive about half an interval after its write.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from sessionsvc import (
    KeyRing,
    Publisher,
    SessionService,
    Settings,
    TokenIssuer,
    TokenRejected,
    Validator,
    generate_jwk,
    generate_jwks,
)
from sessionsvc.embedded import RedisProcess
from sessionsvc.tokens.jwks_file import read_document, write_document
from sessionsvc.tokens.keys import load_jwks
from sessionsvc.tokens.ring_watch import RingWatch
from sessionsvc.tokens.rotation import promote, retire, stage

sys.path.append(str(Path(__file__).parent))  # (./dev bench runs python -P)
from propagation import bench_kwargs, follow, make_settings, worker_proc

KINDS = {"session": "session.revoke (reference)", "key": "key.revoke"}
LOCAL = "in-process"
Latencies = dict[str, dict[str, int]]  # validator -> event key -> publish→rejected ns


def private_signer(settings: Settings, jwk: dict[str, Any]) -> TokenIssuer:
    """An issuer signing access tokens with ``jwk`` (its ``key_ops`` put aside: a staged or
    verification-only key signs here on purpose, to make tokens of that key)."""
    private = {k: v for k, v in jwk.items() if k != "key_ops"}
    ring = load_jwks(json.dumps({"keys": [private]}), ring="access")
    return TokenIssuer(settings, access_keys=KeyRing("access", ring.keys.values()))


def validator_proc(
    kwargs: dict[str, Any], tokens: dict[str, str], index: int, ready: Any, stop: Any, out: Any
) -> None:
    """One validator process: follow the log, report ``(index, {value: ns})`` at ``stop``."""
    validator = Validator(make_settings(kwargs)).start()
    seen: dict[str, int] = {}
    follow(validator, tokens, seen)
    ready.release()
    stop.wait()
    out.put((index, seen))
    validator.close()


def window(
    kwargs: dict[str, Any],
    tokens: dict[str, str],
    publish: Callable[[str], object],
    procs: int,
    gap: float,
) -> Latencies:
    """Start ``procs`` validator processes and one here, publish one event per ``tokens`` key
    ``gap`` seconds apart: publish→rejected per validator and event."""
    ctx = mp.get_context("fork")
    ready, stop, out = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    children = [
        ctx.Process(target=validator_proc, args=(kwargs, tokens, i + 1, ready, stop, out))
        for i in range(procs)
    ]
    for child in children:
        child.start()
    for _ in children:
        ready.acquire()
    local = Validator(make_settings(kwargs)).start()  # (after the forks: no thread is copied)
    seen: dict[str, int] = {}
    follow(local, tokens, seen)
    time.sleep(0.5)
    sent: dict[str, int] = {}
    for key in tokens:
        sent[key] = time.monotonic_ns()
        publish(key)
        time.sleep(gap)
    time.sleep(0.5)
    stop.set()
    results = [(0, seen)] + [out.get(timeout=30) for _ in children]
    for child in children:
        child.join()
    local.close()
    return {
        LOCAL if i == 0 else f"process {i}": {k: got[k] - sent[k] for k in sent if k in got}
        for i, got in results
    }


def quantiles(values: list[float]) -> tuple[float, float]:
    """p50 and p99 of ``values`` (the one value itself for one, 0 for none)."""
    if len(values) < 2:
        return (values[0], values[0]) if values else (0.0, 0.0)
    q = statistics.quantiles(values, n=100)
    return q[49], q[98]


def revoke_bench(url: str, args: argparse.Namespace) -> tuple[dict[str, Latencies], int]:
    """Part 1: session.revoke and key.revoke through the worker, interleaved in rounds."""
    per_round, total = args.k, args.k * args.rounds
    kids = [f"bench-k{i}" for i in range(total)]
    victims = {kid: generate_jwk("EdDSA", kid) | {"key_ops": ["verify"]} for kid in kids}
    access = generate_jwks("EdDSA", "bench-a")
    access["keys"] += list(victims.values())  # every kid a key.revoke names is configured
    kwargs = bench_kwargs(url) | {"access_jwks": json.dumps(access)}
    settings = make_settings(kwargs)
    service = SessionService(settings)
    publisher = Publisher(settings)  # the CLI's publisher: the trusted intake ss:events
    ctx = mp.get_context("fork")
    stop = ctx.Event()
    worker = ctx.Process(target=worker_proc, args=(kwargs, stop))
    worker.start()
    time.sleep(1.0)
    lat: dict[str, Latencies] = {kind: {} for kind in KINDS}
    for r in range(args.rounds):
        for kind in KINDS if r % 2 == 0 else list(KINDS)[::-1]:
            if kind == "session":
                pairs = [service.login(f"user-{r}-{i}") for i in range(per_round)]
                tokens = {p.session_id: p.access_token for p in pairs}

                def publish(value: str) -> object:  # (a sid)
                    return publisher.revoke_session(value, reason="logout")

            else:
                chosen = kids[r * per_round : (r + 1) * per_round]
                tokens = {
                    kid: private_signer(settings, victims[kid]).access_token("alice", f"s-{kid}")
                    for kid in chosen
                }

                def publish(value: str) -> object:  # (a kid)
                    return publisher.revoke_key(value, reason="key_compromise")

            for name, got in window(kwargs, tokens, publish, args.procs, args.gap).items():
                lat[kind].setdefault(name, {}).update(got)
    stop.set()
    worker.join(timeout=10)
    publisher.close()
    service.close()
    return lat, total


@dataclass
class Rotation:
    """One measured rotation: ns from the write's start to the new key's first acceptance, the
    write itself, and the time from the previous reload to the write."""

    latency: int
    write: int
    since_reload: int


class RingListener:
    """A listener of the validator's ring (after the validator's own: the ring is in use). With
    a ``token`` set it validates it and notes when it was accepted."""

    def __init__(self, validator: Validator) -> None:
        self.validator = validator
        self.token: str | None = None
        self.accepted: int | None = None
        self.at = 0
        self.changed = threading.Event()

    def __call__(self, ring: KeyRing) -> None:
        if self.token is not None:
            try:
                self.validator.validate(self.token)
            except TokenRejected:
                pass
            else:
                self.accepted = time.monotonic_ns()
        self.at = time.monotonic_ns()
        self.changed.set()

    def written(self, path: Path, doc: dict[str, Any], timeout: float) -> None:
        """Write ``doc`` to ``path`` and wait until the validator has reloaded it."""
        self.changed.clear()
        write_document(path, doc)
        if not self.changed.wait(timeout):
            raise RuntimeError(f"the validator did not reload {path} within {timeout} s")


def rotation_bench(
    url: str, tmp: Path, interval: float, n: int, rng: random.Random
) -> tuple[list[Rotation], float]:
    """Part 2: ``n`` rotations of a watched JWKS file at ``interval``; the measured rotations
    and the median cost of one reload of that file (read and judged, seconds)."""
    path = tmp / f"access-{interval:g}.jwks"
    write_document(path, generate_jwks("EdDSA", "rot-0"))
    kwargs = bench_kwargs(url) | {"access_jwks": str(path), "keys_reload_interval": interval}
    settings = make_settings(kwargs)
    validator = Validator(settings)
    assert validator.keys_watch is not None
    listener = RingListener(validator)
    validator.keys_watch.listeners.append(listener)
    validator.start()
    timeout = 5 * interval + 5
    now = time.time
    doc = stage(
        read_document(path), generate_jwk("EdDSA", "rot-1"), ring="access", now=now(), delay=0
    )
    listener.written(path, doc, timeout)  # (a staged key, so that each loop starts by promoting)
    shares = [(i + rng.random()) / n for i in range(n)]  # stratified: writes spread evenly
    rng.shuffle(shares)
    out: list[Rotation] = []
    for i, share in enumerate(shares):
        doc = retire(promote(doc, ring="access", now=now(), lifetime=0), ring="access", now=now())
        listener.written(path, doc, timeout)  # not measured: the previous key is retired
        reloaded = listener.at
        jwk = generate_jwk("EdDSA", f"rot-{i + 2}")
        token = private_signer(settings, jwk).access_token("alice", f"s-rot-{i}")
        doc = stage(doc, jwk, ring="access", now=now(), delay=0)
        listener.token, listener.accepted = token, None
        listener.changed.clear()
        time.sleep(max(0.0, (reloaded + share * interval * 1e9 - time.monotonic_ns()) / 1e9))
        began = time.monotonic_ns()
        write_document(path, doc)
        wrote = time.monotonic_ns()
        if not listener.changed.wait(timeout) or listener.accepted is None:
            raise RuntimeError(f"the staged key rot-{i + 2} was not accepted within {timeout} s")
        out.append(Rotation(listener.accepted - began, wrote - began, began - reloaded))
        listener.token = None
    validator.close()
    costs = []
    for _ in range(20):
        t0 = time.perf_counter()
        RingWatch(str(path), ring="access", interval=0)
        costs.append(time.perf_counter() - t0)
    return out, statistics.median(costs)


def print_revocations(lat: dict[str, Latencies], procs: int, total: int, rounds: int) -> None:
    """The table of part 1: per validator, each kind's p50/p99 and key/session ratios."""
    print(
        f"\nkey.revoke vs session.revoke: Publisher (trusted intake) → worker → 1 validator in "
        f"process + {procs} validator processes, {total} events per kind in {rounds} "
        f"interleaved rounds, {mp.cpu_count()} CPUs, Python {sys.version.split()[0]}\n"
    )
    print(
        "| validator | session.revoke p50 ms | session p99 ms | key.revoke p50 ms | "
        "key p99 ms | key/session p50 | key/session p99 | missed (session, key) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    names = [LOCAL] + [f"process {i + 1}" for i in range(procs)]
    rows: list[tuple[str, dict[str, list[float]], dict[str, int]]] = []
    for name in names:
        ms = {kind: [v / 1e6 for v in lat[kind].get(name, {}).values()] for kind in KINDS}
        rows.append((name, ms, {kind: total - len(ms[kind]) for kind in KINDS}))
    every = {kind: [x for _n, ms, _m in rows for x in ms[kind]] for kind in KINDS}
    rows.append(
        ("all (validator, event) pairs", every, {k: sum(r[2][k] for r in rows) for k in KINDS})
    )
    full: dict[str, list[float]] = {}
    for kind in KINDS:
        events = set().union(*(lat[kind].get(name, {}) for name in names))
        full[kind] = [
            max(lat[kind][name][e] for name in names) / 1e6
            for e in events
            if all(e in lat[kind].get(name, {}) for name in names)
        ]
    rows.append(("every validator has it", full, {kind: total - len(full[kind]) for kind in KINDS}))
    for name, ms, missed in rows:
        s50, s99 = quantiles(ms["session"])
        k50, k99 = quantiles(ms["key"])
        print(
            f"| {name} | {s50:.3f} | {s99:.3f} | {k50:.3f} | {k99:.3f} | "
            f"{k50 / s50 if s50 else 0:.2f} | {k99 / s99 if s99 else 0:.2f} | "
            f"{missed['session']}, {missed['key']} |"
        )


def print_rotations(results: dict[float, tuple[list[Rotation], float]]) -> None:
    """The table of part 2: write→accepted per reload interval, against the interval."""
    print(
        "\nJWKS file change: a staged key written atomically → its first token accepted by a "
        "running validator watching the file\n"
    )
    print(
        "| reload interval s | rotations | write p50 ms | reload cost ms | mean ms | p50 ms | "
        "max ms | mean / interval | expected mean / interval | past the tick p50 ms | "
        "past the tick max ms | a tick late |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for interval, (rots, cost) in results.items():
        ms = [r.latency / 1e6 for r in rots]
        past: list[float] = []
        missed = 0
        for r in rots:
            # the watcher sleeps `interval` after a reload: at the write it still had
            # interval − since_reload to sleep; the rest of the latency is the reload and
            # wake-ups. A write that ended just after a tick's read waits for the next tick.
            extra = (r.latency - (interval * 1e9 - r.since_reload)) / 1e6
            while extra > interval * 1e3 / 2:
                extra -= interval * 1e3
                missed += 1
            past.append(extra)
        mean = statistics.fmean(ms)
        print(
            f"| {interval:g} | {len(rots)} | {statistics.median(r.write / 1e6 for r in rots):.2f} "
            f"| {cost * 1e3:.2f} | {mean:.1f} | {statistics.median(ms):.1f} | {max(ms):.1f} | "
            f"{mean / 1e3 / interval:.3f} | {0.5 + cost / interval:.3f} | "
            f"{statistics.median(past):.2f} | {max(past):.2f} | {missed} |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=40, help="events per kind and round")
    parser.add_argument("--rounds", type=int, default=4, help="rounds; each runs both kinds")
    parser.add_argument("--procs", type=int, default=4, help="validator processes (and 1 here)")
    parser.add_argument("--gap", type=float, default=0.01, help="seconds between events")
    parser.add_argument("--intervals", default="0.2,1", help="reload intervals (seconds)")
    parser.add_argument("--rotations", type=int, default=30, help="rotations per interval")
    parser.add_argument("--seed", type=int, default=13, help="seed of the write times")
    parser.add_argument("--quick", action="store_true", help="2 rounds of 5, 4 rotations at 0.1 s")
    args = parser.parse_args()
    if args.quick:
        args.k, args.rounds, args.procs, args.intervals, args.rotations = 5, 2, 2, "0.1", 4
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    intervals = [float(x) for x in args.intervals.split(",")]
    rng = random.Random(args.seed)
    began = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp, RedisProcess(Path(tmp)) as server:
        if not server.running:
            server.start()
        lat, total = revoke_bench(server.url, args)
        rotations = {
            i: rotation_bench(server.url, Path(tmp), i, args.rotations, rng) for i in intervals
        }
    print_revocations(lat, args.procs, total, args.rounds)
    print_rotations(rotations)
    print(f"\n{time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
