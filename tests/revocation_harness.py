"""Helpers for the feed, worker and fault tests: polling, raw Redis clients, workers and
validators that are always stopped, token factories, a partitionable TCP proxy, subprocesses.

Nothing here sleeps for a fixed time: tests wait for a condition with ``wait_for``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import jwt
import redis
from conftest import make_settings

from sessionsvc import KeyRing, Revocation, Settings, TokenIssuer, TokenRejected, Validator
from sessionsvc.idp.mapping import UserMapper, default_user
from sessionsvc.revocation.log import APPLY_REVOCATION, RevKeys, revocation_args
from sessionsvc.tokens.keygen import generate_jwk
from sessionsvc.tokens.keys import load_jwks
from workers.health import HealthState
from workers.pubsub import PubSubForwarder
from workers.worker import Worker, WorkerOptions

T = TypeVar("T")
DEADLINE = 20.0
KIDS = ("k-a", "k-b")  # every settings object here has two access keys; k-a signs by default
REV = RevKeys()


def wait_for(predicate: Callable[[], T], what: str, timeout: float = DEADLINE) -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.005)


def feed_settings(url: str, **overrides: Any) -> Settings:
    """Settings for ``url`` with two access keys and a short ``feed_block`` (quick close). No
    worker ticks unless asked for (``tick_interval``): the log holds what the test wrote."""
    jwks = {"keys": [generate_jwk("EdDSA", kid) for kid in KIDS]}
    values: dict[str, Any] = {
        "access_jwks": json.dumps(jwks),
        "feed_block": 0.2,
        "tick_interval": 0,
    }
    values.update(overrides)
    return make_settings("EdDSA", redis_url=url, **values)


@contextlib.contextmanager
def raw_client(url: str, **kwargs: Any) -> Iterator[redis.Redis]:
    """A plain redis-py client (no sessionsvc code), always closed."""
    client = redis.Redis.from_url(url, **kwargs)
    try:
        yield client
    finally:
        client.close()


def raw_entries(client: redis.Redis, stream: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """XRANGE with every field kept in wire order (duplicates too), decoded as UTF-8 (replace)."""
    # through EVAL: redis-py's XRANGE callback would fold the fields into a dict
    reply: Any = client.eval("return redis.call('XRANGE', KEYS[1], '-', '+')", 1, stream)
    out = []
    for entry_id, flat in reply:
        pairs = [
            (flat[i].decode(errors="replace"), flat[i + 1].decode(errors="replace"))
            for i in range(0, len(flat), 2)
        ]
        out.append((entry_id.decode(), pairs))
    return out


def dead_letters(client: redis.Redis, dlq: str = "{ss:events}:dlq") -> dict[str, dict[str, str]]:
    """DLQ entries by the inbound entry id they came from (``dlq:entry``), metadata only: the
    worker's own ``dlq:`` fields come first; an original field may carry the same name later."""
    out = {}
    for _id, pairs in raw_entries(client, dlq):
        meta: dict[str, str] = {}
        for k, v in pairs:
            if k.startswith("dlq:"):
                meta.setdefault(k, v)
        out[meta.get("dlq:entry", _id)] = meta
    return out


class Applier:
    """Applies revocations through the one apply script (what the session service does)."""

    def __init__(self, client: redis.Redis) -> None:
        self.script = client.register_script(APPLY_REVOCATION)

    def __call__(self, rev: Revocation, **meta: Any) -> str | None:
        reply: Any = self.script(keys=REV.all(), args=revocation_args(rev, epoch="test", **meta))
        return None if reply is None else reply.decode()


class Tokens:
    """Access tokens for ``settings`` with a chosen ``sub``, ``sid``, ``iat`` and signing key."""

    def __init__(self, settings: Settings) -> None:
        assert settings.access_jwks is not None
        self.settings = settings
        self.ring = load_jwks(settings.access_jwks.get_secret_value(), ring="access")
        self._issuers: dict[str, TokenIssuer] = {}

    def access(
        self,
        sub: str = "alice",
        sid: str = "sid-1",
        *,
        iat: float | None = None,
        kid: str = KIDS[0],
    ) -> str:
        issuer = self._issuers.get(kid)
        if issuer is None:
            key = self.ring.get(kid)
            assert key is not None
            issuer = TokenIssuer(self.settings, access_keys=KeyRing("access", [key]))
            self._issuers[kid] = issuer
        return issuer.access_token(sub, sid, now=None if iat is None else int(iat))


def claims_of(token: str) -> dict[str, Any]:
    """The payload of a token we signed ourselves (no verification: test bookkeeping only)."""
    return jwt.decode(token, options={"verify_signature": False})  # type: ignore[no-any-return]


def outcome(validator: Validator, token: str) -> str:
    """``"ok"`` or the rejection reason."""
    try:
        validator.validate(token)
    except TokenRejected as exc:
        return exc.reason
    return "ok"


# -- validators ---------------------------------------------------------------------------------


class LoopThread:
    """An asyncio event loop in a daemon thread; ``run(coro)`` from any other thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = DEADLINE) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


@contextlib.contextmanager
def following(
    settings: Settings,
    mode: str = "sync",
    *,
    wait: float = 10.0,
    listener: Callable[[Revocation], None] | None = None,
    clock: Callable[[], float] = time.time,
) -> Iterator[Validator]:
    """A validator following the log with ``start()`` (sync) or ``astart()`` on a loop thread."""
    validator = Validator(settings, clock=clock)
    if listener is not None:
        validator.add_listener(listener)
    if mode == "sync":
        try:
            validator.start(wait=wait)
            yield validator
        finally:
            validator.close()
        return
    loop = LoopThread()
    try:
        loop.run(validator.astart(wait=wait))
        try:
            yield validator
        finally:
            loop.run(validator.aclose())
    finally:
        loop.close()


# -- workers ------------------------------------------------------------------------------------


@dataclass
class RunningWorker:
    worker: Worker
    thread: threading.Thread
    forwarder: PubSubForwarder | None

    @property
    def alive(self) -> bool:
        return self.thread.is_alive()


@contextlib.contextmanager
def running_worker(
    settings: Settings,
    consumer: str = "w1",
    *,
    pubsub: bool = False,
    health: HealthState | None = None,
    clock: Callable[[], float] = time.time,
    idp_user: UserMapper = default_user,
    **options: Any,
) -> Iterator[RunningWorker]:
    """A ``Worker`` running in a thread (and its pub/sub forwarder), stopped and joined after."""
    opts = {"consumer": consumer, "housekeeping": 60.0, "block": 0.1, **options}
    worker = Worker(settings, WorkerOptions(**opts), health=health, clock=clock, idp_user=idp_user)
    thread = threading.Thread(target=worker.run, name=f"worker-{consumer}", daemon=True)
    forwarder = PubSubForwarder(settings, worker.metrics).start() if pubsub else None
    thread.start()
    try:
        yield RunningWorker(worker, thread, forwarder)
    finally:
        worker.stop()
        thread.join(DEADLINE)
        if forwarder is not None:
            forwarder.close()
        assert not thread.is_alive(), "the worker did not stop"


def group_info(client: redis.Redis, stream: str = "ss:events") -> dict[str, Any]:
    """XINFO GROUPS of the ``workers`` group (decoded), or {} before it exists."""
    try:
        groups: Any = client.xinfo_groups(stream)
    except redis.ResponseError:
        return {}
    for g in groups:
        if g["name"] in (b"workers", "workers"):
            return {k: v.decode() if isinstance(v, bytes) else v for k, v in g.items()}
    return {}


def all_consumed(client: redis.Redis, last_id: str, stream: str = "ss:events") -> bool:
    """Every entry up to ``last_id`` was delivered to the group and acknowledged."""
    g = group_info(client, stream)
    return bool(g) and g["last-delivered-id"] == last_id and int(g["pending"]) == 0


def wait_subscribed(client: redis.Redis, channel: str = "ss:events") -> None:
    """Until some client is subscribed to ``channel`` (a message before that would be lost)."""

    def subscribed() -> bool:
        counts: Any = client.pubsub_numsub(channel)
        return bool(counts and counts[0][1] >= 1)

    wait_for(subscribed, f"a subscriber on {channel}")


# -- worker processes -----------------------------------------------------------------------------


def worker_env(settings: Settings) -> dict[str, str]:
    """The environment of a ``python -m workers`` child configured like ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONSVC_")}
    assert settings.access_jwks is not None and settings.refresh_jwks is not None
    env |= {
        "SESSIONSVC_REDIS_URL": settings.redis_url.get_secret_value(),
        "SESSIONSVC_ISSUER": settings.issuer,
        "SESSIONSVC_AUDIENCE": settings.audience,
        "SESSIONSVC_ACCESS_JWKS": settings.access_jwks.get_secret_value(),
        "SESSIONSVC_REFRESH_JWKS": settings.refresh_jwks.get_secret_value(),
        "SESSIONSVC_ENV": "production",
    }
    return env


class WorkerProcess:
    """``python -m workers`` as a child process; output goes to files (never a full pipe)."""

    def __init__(self, settings: Settings, directory: Path, consumer: str, *args: str) -> None:
        self.stderr_path = directory / f"{consumer}.stderr"
        self.stdout_path = directory / f"{consumer}.stdout"
        with open(self.stderr_path, "wb") as err, open(self.stdout_path, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "workers", "--consumer", consumer, *args],
                env=worker_env(settings),
                cwd=directory,  # no .env file there
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def metrics_port(self) -> int:
        """The port the child printed for ``--metrics-port 0``."""
        found = wait_for(
            lambda: (
                self.running() and re.search(r"metrics on http://[\d.]+:(\d+)/metrics", self.stderr)
            ),
            "the metrics port on stderr",
        )
        return int(found[1])

    def running(self) -> bool:
        """True while the child runs; fails the test (with its stderr) once it has exited."""
        code = self.process.poll()
        if code is not None:
            raise AssertionError(f"the worker exited with {code}: {self.stderr[-2000:]}")
        return True

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = DEADLINE) -> int:
        return self.process.wait(timeout)

    def close(self) -> None:
        """Kill the child if it still runs, and reap it."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()


def http_get(url: str) -> tuple[int, str]:
    """GET ``url``: (status, body), also for 4xx/5xx answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read().decode()


# -- a network partition ------------------------------------------------------------------------


class Proxy:
    """A TCP relay in front of a Redis port; ``partition()`` cuts every connection and refuses
    new ones (they are accepted and closed at once) until ``heal()``."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._cut = False
        self._closed = threading.Event()
        self._accepter = threading.Thread(target=self._accept, name="proxy", daemon=True)
        self._accepter.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def partition(self) -> None:
        self._cut = True
        with self._lock:
            doomed = list(self._open)
        for sock in doomed:
            self._drop(sock)

    def heal(self) -> None:
        self._cut = False

    def close(self) -> None:
        self._closed.set()
        self.partition()
        self._accepter.join()
        self.listener.close()
        for thread in self._threads:
            thread.join()

    def __enter__(self) -> Proxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            if self._cut:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=2)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open |= {client, upstream}
            for src, dst in ((client, upstream), (upstream, client)):
                pump = threading.Thread(target=self._pump, args=(src, dst), daemon=True)
                self._threads.append(pump)
                pump.start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            self._drop(src)
            self._drop(dst)

    def _drop(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.discard(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
