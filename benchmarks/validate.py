"""Benchmark: ``Validator.validate`` cold and warm against raw PyJWT ``jwt.decode``.

Run with ``./dev bench validate [--quick] [--rounds R]``. One run prints, for HS256 and EdDSA:

- **raw** — ``jwt.decode(token, key, algorithms=[alg], audience=..., issuer=...)``: PyJWT with the
  same prepared verification key the validator uses, one token decoded over and over (PyJWT has no
  cache, so repeating the token costs it nothing extra). The fair reference.
- **cold** — ``Validator.validate`` over N distinct pre-issued tokens, each validated once by a new
  validator, so every call misses the cache (strict parse, header, signature, claims, cache insert,
  revocation and time checks).
- **warm** — ``Validator.validate`` of one token over and over (every call a cache hit: one dict
  look-up, one clock read, the time window, view generation and freshness comparisons).

Method: keys from ``sessionsvc.generate_jwks``, tokens from ``TokenIssuer`` (with a ``roles`` app
claim), a warm-up pass first, then R rounds in which raw, cold and warm are timed one after the
other (interleaved, so load changes hit all three alike) with ``time.perf_counter``, the garbage
collector paused as ``timeit`` does. The figure reported is the **best** (fastest) round; the
median is printed beside it to show the spread. Loop overhead (~20 ns per call) is included in
every figure alike.

Targets: warm >= 60x raw throughput for HS256 and >= 200x for EdDSA; a warm validation
under 1 us; cold time <= 1.10x raw time.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import jwt

from sessionsvc import Settings, TokenIssuer, Validator, generate_jwks

ISSUER = "https://auth.bench.invalid"
AUDIENCE = "bench-api"
CLAIMS = {"roles": ["reader", "writer"]}
ALGS = ("HS256", "EdDSA")
WARM_TARGET = {"HS256": 60.0, "EdDSA": 200.0}  # warm throughput / raw throughput, at least
COLD_LIMIT = 1.10  # cold time / raw time, at most
WARM_LIMIT_US = 1.0  # a cached validation, at most

# Calls per timed run: (raw and cold, warm). Cold needs that many distinct tokens, issued up front,
# and must stay under the validator's cache size so that no call evicts.
SIZES = {
    "full": {"HS256": (20_000, 500_000), "EdDSA": (4_000, 500_000)},
    "quick": {"HS256": (3_000, 100_000), "EdDSA": (600, 100_000)},
}


def settings_for(alg: str) -> Settings:
    """Settings with new access and refresh rings of ``alg``; no environment or .env is read."""
    values: dict[str, Any] = {
        "access_jwks": json.dumps(generate_jwks(alg, f"bench-access-{alg}")),
        "refresh_jwks": json.dumps(generate_jwks(alg, f"bench-refresh-{alg}")),
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "_env_file": None,
    }
    return Settings(**values)


def timed(fn: Callable[[Any], object], args: Sequence[Any]) -> float:
    """Seconds per call of ``fn`` over ``args``, GC paused (as ``timeit`` does)."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        for arg in args:
            fn(arg)
        elapsed = time.perf_counter() - start
    finally:
        gc.enable()
    return elapsed / len(args)


@dataclass
class Result:
    """Seconds per call of each timed round."""

    alg: str
    raw: list[float]
    cold: list[float]
    warm: list[float]


def bench(alg: str, n: int, n_warm: int, rounds: int) -> Result:
    """Time raw, cold and warm for ``alg`` over ``rounds`` interleaved rounds."""
    settings = settings_for(alg)
    issuer = TokenIssuer(settings)
    keys = issuer.access_keys
    assert n < settings.cache_size, "cold tokens must fit the cache (no eviction)"
    key = keys.signing_key().verify_key  # the prepared public key / secret the validator uses
    tokens = [issuer.issue(f"user-{i}", claims=CLAIMS).access_token for i in range(n)]
    token = tokens[0]

    def raw(tok: str) -> object:
        return jwt.decode(tok, key, algorithms=[alg], audience=AUDIENCE, issuer=ISSUER)

    # Both paths must agree on what they accept before their speed means anything.
    assert raw(token)["sub"] == Validator(settings, keys=keys).validate(token)["sub"] == "user-0"

    warm_validator = Validator(settings, keys=keys)
    warm_validator.validate(token)  # the one miss; every timed call below hits
    repeated = [token] * n_warm

    # Warm-up: let the interpreter's specialising caches and the allocators settle.
    timed(raw, tokens[:200])
    timed(Validator(settings, keys=keys).validate, tokens[:200])
    timed(warm_validator.validate, repeated[:10_000])

    result = Result(alg, [], [], [])
    for _ in range(rounds):
        result.raw.append(timed(raw, [token] * n))
        cold_validator = Validator(settings, keys=keys)  # empty cache: every call misses
        result.cold.append(timed(cold_validator.validate, tokens))
        assert len(cold_validator._cache) == n, "a cold call did not miss the cache"
        result.warm.append(timed(warm_validator.validate, repeated))
    return result


def us(seconds: float) -> str:
    return f"{seconds * 1e6:,.3f}" if seconds < 1e-5 else f"{seconds * 1e6:,.1f}"


def report(results: list[Result], rounds: int, mode: str) -> bool:
    """Print the tables; return True when every target passes."""
    print(
        f"# validate benchmark ({mode}): best of {rounds} rounds (median beside it)\n\n"
        f"Python {platform.python_version()}, PyJWT {version('PyJWT')}, "
        f"cryptography {version('cryptography')}, {platform.machine()}\n"
    )
    print("| alg | path | µs/op (best) | µs/op (median) | ops/s | throughput vs raw |")
    print("|---|---|---:|---:|---:|---:|")
    for r in results:
        raw = min(r.raw)
        rows = (
            ("raw `jwt.decode`", r.raw),
            ("`validate` cold", r.cold),
            ("`validate` warm", r.warm),
        )
        for label, samples in rows:
            best = min(samples)
            print(
                f"| {r.alg} | {label} | {us(best)} | {us(statistics.median(samples))} "
                f"| {1 / best:,.0f} | {raw / best:,.2f}× |"
            )
    print("\n| target | measured | result |")
    print("|---|---:|---|")
    ok = True
    for r in results:
        raw, cold, warm = min(r.raw), min(r.cold), min(r.warm)
        checks = (
            (
                f"{r.alg} warm ≥ {WARM_TARGET[r.alg]:.0f}× raw throughput",
                f"{raw / warm:,.0f}×",
                raw / warm >= WARM_TARGET[r.alg],
            ),
            (
                f"{r.alg} warm < {WARM_LIMIT_US:.0f} µs",
                f"{warm * 1e6:.3f} µs",
                warm * 1e6 < WARM_LIMIT_US,
            ),
            (
                f"{r.alg} cold time ≤ {COLD_LIMIT:.2f}× raw time",
                f"{cold / raw:.3f}×",
                cold / raw <= COLD_LIMIT,
            ),
        )
        for name, measured, passed in checks:
            ok &= passed
            print(f"| {name} | {measured} | {'PASS' if passed else 'MISS'} |")
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer, smaller rounds (~5 s)")
    parser.add_argument("--rounds", type=int, help="timed rounds per measurement (7, quick 3)")
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full"
    rounds = args.rounds or (3 if args.quick else 7)
    results = []
    for alg in ALGS:
        n, n_warm = SIZES[mode][alg]
        print(f"{alg}: issuing {n:,} tokens, {rounds} rounds ...", file=sys.stderr, flush=True)
        results.append(bench(alg, n, n_warm, rounds))
    ok = report(results, rounds, mode)
    print(f"\nAll targets {'PASS' if ok else 'not met: see MISS above'}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
