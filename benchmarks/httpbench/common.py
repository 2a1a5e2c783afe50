"""What every part of the http benchmark shares: the constants, a contender and its timed
loop, the revocation chase, and the subprocess wrapper (one JSON command a line)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parent.parent
ENTRY = BENCHMARKS / "http.py"  # (the subprocesses run it with a worker flag)
USER, PASSWORD = "alice", "alice-password"


ORIGIN = "https://testserver"


ISSUER = "https://auth.bench.invalid"


AUDIENCE = "bench-api"


EMAIL = "alice@example.com"


CSRF_SECRET = "0123456789abcdef0123456789abcdef-bench-only"


PEER_SECRET = "bench-only-hs256-secret-of-at-least-32-bytes!"


CHASE_LIMIT = 2.0  # seconds a revoked token is tried before "never"


THROUGHPUT_TARGET = 0.9  # sessionsvc / its framework's no-auth ceiling, at least


PEER_TARGET = 1.5  # sessionsvc / the same framework's peer, at least


REVOKE_TARGET_MS = 5.0  # a revoked token refused within, on both nodes


Get = Callable[[], int]  # one protected GET with the contender's token: the status code


Trial = Callable[[str], tuple[float | None, int]]  # node -> (seconds to refusal | None, served)


@dataclass
class Contender:
    key: str
    get: Get
    trial: Trial | None = None  # None: nothing can revoke its token
    batch: Callable[[int], tuple[float, list[float]]] | None = None  # instead of ``get``
    nodes: tuple[str, ...] = ("same", "second")  # where ``trial`` chases a revoked token

    def run(self, n: int) -> tuple[float, list[float]]:
        """``n`` sequential GETs: (seconds in all, each request's seconds)."""
        if self.batch is not None:
            return self.batch(n)
        lat: list[float] = []
        clock = time.perf_counter_ns
        start = clock()
        for _ in range(n):
            t0 = clock()
            status = self.get()
            lat.append((clock() - t0) / 1e9)
            if status != 200:
                raise RuntimeError(f"{self.key}: GET answered {status}")
        return (clock() - start) / 1e9, lat


def chase(
    get: Get, limit: float = CHASE_LIMIT, since: int | None = None
) -> tuple[float | None, int]:
    """GETs until one is refused: (seconds from ``since`` (``time.monotonic_ns``, shared by the
    machine's processes; default now) to the refusal's return, requests served); ``None`` if
    none was refused within ``limit``."""
    served = 0
    start = time.monotonic_ns() if since is None else since
    while True:
        status = get()
        elapsed = (time.monotonic_ns() - start) / 1e9
        if status == 401:
            return elapsed, served
        served += 1
        if elapsed > limit:
            return None, served


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def quiet_logs() -> None:
    """sessionsvc's log lines to stderr, warnings only: stdout is the table (or the protocol)."""
    import logging

    from sessionsvc.logs import configure_logging

    configure_logging("development", logging.WARNING)


class _Worker:
    """A benchmark subprocess answering one JSON command per line (``ask``)."""

    def __init__(self, argv: list[str], what: str) -> None:
        self.what = what
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def _read(self) -> Any:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.what} ended (its error is above)")
        return json.loads(line)

    def ask(self, **cmd: Any) -> Any:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ask(cmd="quit")
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        if self.proc.poll() is None:
            self.proc.kill()
