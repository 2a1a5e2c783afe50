"""``/healthz``, ``/readyz`` and ``/metrics`` over HTTP, served from a daemon thread.

``/healthz`` answers 200 while the process runs its loop (its heartbeat is recent);
``/readyz`` answers 200 once the worker has reached Redis and created its group, and 503 while
Redis is unreachable; ``/metrics`` is the Prometheus text format of the worker's registry.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

__all__ = ["HealthServer", "HealthState"]


class HealthState:
    """What the loop reports and the HTTP endpoints read (thread-safe by simple assignment)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_silence: float = 30.0):
        self.clock = clock
        self.max_silence = max_silence
        self.ready = False
        self.last_beat = clock()

    def beat(self) -> None:
        """The loop is alive."""
        self.last_beat = self.clock()

    def alive(self) -> bool:
        """True while the loop has beaten within ``max_silence`` seconds."""
        return self.clock() - self.last_beat <= self.max_silence


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
                ok = state.alive()
                self._send(200 if ok else 503, b"ok\n" if ok else b"stalled\n")
            elif self.path == "/readyz":
                ok = state.ready and state.alive()
                self._send(200 if ok else 503, b"ready\n" if ok else b"not ready\n")
            else:
                self._send(404, b"not found\n")

        def _send(self, status: int, body: bytes, ctype: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Probes are frequent: no access log."""

    return Handler
