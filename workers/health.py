"""Health that tells the truth: ``/healthz``, ``/readyz`` and ``/metrics`` from a daemon thread.

The worker's parts report to one ``HealthState``: the reader loop beats on every turn and
each chore (``consume``, ``apply``, ``housekeeping``, ``tick``, ``pubsub``) reports success or
failure, with whether Redis itself was unreachable at the time. The probes judge from that:

- **liveness** (``/healthz``, restart on failure) fails when the loop has not turned for
  ``max_silence`` seconds (a hang), when a chore has failed for ``max_silence`` seconds while Redis
  answered (a wedge: restarting is the remedy), or when the applier holds work and has finished
  none of it for ``max_silence`` seconds. An unreachable Redis never fails liveness: a restart
  would not help.
- **readiness** (``/readyz``) also fails before the worker has reached Redis and created its
  consumer groups, while Redis is unreachable, and while any chore's latest attempt failed
  (degraded).

The body of a failing probe says why (``stalled: housekeeping failing for 42 s (ResponseError)``);
the gauges ``sessionsvc_worker_up{probe}`` and ``sessionsvc_worker_seconds_since_success{chore}``
carry the same, computed when scraped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

__all__ = ["CHORES", "HealthServer", "HealthState"]

CHORES = ("consume", "apply", "housekeeping", "tick", "pubsub")


class HealthState:
    """What the worker's parts report and the probes read (simple assignments: thread-safe)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_silence: float = 30.0):
        self.clock = clock
        self.max_silence = max_silence
        self.started = False
        """The consumer groups exist and the scripts are loaded (redone after a Redis error)."""
        self.last_beat = clock()
        self.ok_at: dict[str, float] = {}
        self.failing: dict[str, str] = {}
        self.redis_down = False
        self.busy: Callable[[], bool] = lambda: False
        """True while the applier holds work (the worker sets it)."""
        self._since = clock()

    def beat(self) -> None:
        """The reader loop turned."""
        self.last_beat = self.clock()

    def succeeded(self, chore: str) -> None:
        """``chore`` just succeeded (Redis answered it)."""
        self.ok_at[chore] = self.clock()
        self.failing.pop(chore, None)
        self.redis_down = False

    def failed(self, chore: str, error: str, *, redis_down: bool) -> None:
        """``chore`` just failed with ``error``; ``redis_down``: Redis did not answer at all."""
        self.failing[chore] = error
        self.redis_down = redis_down

    def since_success(self, chore: str) -> float:
        """Seconds since ``chore`` last succeeded (since start if it never did)."""
        return self.clock() - self.ok_at.get(chore, self._since)

    def liveness_problems(self) -> list[str]:
        """Why the process should be restarted (empty: alive)."""
        now, limit = self.clock(), self.max_silence
        problems = []
        if now - self.last_beat > limit:
            problems.append(f"loop silent for {now - self.last_beat:.0f} s")
        if not self.redis_down:
            for chore, error in list(self.failing.items()):
                if self.since_success(chore) > limit:
                    problems.append(
                        f"{chore} failing for {self.since_success(chore):.0f} s ({error})"
                    )
        if self.busy() and self.since_success("apply") > limit and "apply" not in self.failing:
            problems.append(f"apply stuck for {self.since_success('apply'):.0f} s")
        return problems

    def readiness_problems(self) -> list[str]:
        """Why the worker is not consuming normally (empty: ready)."""
        problems = self.liveness_problems()
        if not self.started:
            problems.append("not connected yet")
        if self.redis_down:
            problems.append("Redis unreachable")
        problems += [
            f"{c} failing ({e})" for c, e in list(self.failing.items()) if not self.redis_down
        ]
        return problems

    def alive(self) -> bool:
        """Liveness (``/healthz``)."""
        return not self.liveness_problems()

    @property
    def ready(self) -> bool:
        """Readiness (``/readyz``)."""
        return not self.readiness_problems()


class HealthServer:
    """A tiny HTTP server for probes and metrics on ``host:port`` (port 0: any free port)."""

    def __init__(self, state: HealthState, registry: CollectorRegistry, host: str, port: int):
        handler = _handler(state, registry)
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> HealthServer:
        """Serve in the background."""
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and release the port."""
        self.httpd.shutdown()
        self.httpd.server_close()


def _handler(state: HealthState, registry: CollectorRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif self.path == "/healthz":
                self._probe(state.liveness_problems(), b"ok\n", "stalled")
            elif self.path == "/readyz":
                self._probe(state.readiness_problems(), b"ready\n", "not ready")
            else:
                self._send(404, b"not found\n")

        def _probe(self, problems: list[str], ok: bytes, failing: str) -> None:
            if not problems:
                self._send(200, ok)
            else:
                self._send(503, f"{failing}: {'; '.join(problems)}\n".encode())

        def _send(self, status: int, body: bytes, ctype: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Probes are frequent: no access log."""

    return Handler
