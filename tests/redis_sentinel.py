"""Pytest fixtures over a throw-away Sentinel deployment of ``RedisProcess`` children.

``SentinelGroup`` starts one primary, one replica of it and three sentinels
(``redis-server <conf> --sentinel``, each with its own config file in its own directory: a
sentinel rewrites it) monitoring the primary as ``SERVICE`` with quorum 2, a
``down-after-milliseconds`` of 500 and a ``failover-timeout`` of 3 s, and waits until every
sentinel knows the primary, the replica and the two other sentinels. ``failover()`` asks one
sentinel for a ``SENTINEL FAILOVER``; ``wait_promoted(node)`` waits until every sentinel names
``node`` and ``node`` answers as a primary. With a ``ServerTLS`` every process speaks TLS only,
among themselves too (``--tls-replication yes``). Fixture: ``redis_sentinel`` (a fresh group
per test: a failover changes it). Registered with ``pytest_plugins`` in ``tests/conftest.py``;
tests that use it carry the ``sentinel`` marker (skip: ``-m 'not sentinel'``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from sessionsvc.embedded import RedisProcess, ServerTLS

__all__ = ["SERVICE", "SentinelGroup"]

SERVICE = "ss-primary"
DEADLINE = 30.0


def _client(process: RedisProcess) -> redis.Redis:
    return process.client(socket_timeout=2.0)


def _ask(process: RedisProcess, command: Callable[[redis.Redis], Any]) -> Any:
    """``command(client)`` on a fresh connection; ``None`` when the server does not answer."""
    client = _client(process)
    try:
        return command(client)
    except redis.RedisError:
        return None
    finally:
        client.close()


def _wait(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {DEADLINE:g}s waiting for {what}")
        time.sleep(0.02)


class SentinelGroup:
    """A primary, a replica and three sentinels: ``start``, ``failover``, ``stop``."""

    def __init__(
        self, directory: Path, *, failover_timeout_ms: int = 3000, tls: ServerTLS | None = None
    ) -> None:
        """``tls``: every process speaks TLS only (``--tls-port``), the replica to its primary
        and the sentinels to the nodes and to each other too (``--tls-replication yes``)."""
        self.directory = Path(directory)
        self.tls = tls
        self._links = [] if tls is None else _links(tls)
        self.primary = RedisProcess(self.directory / "primary", tls=tls)
        self.replica: RedisProcess | None = None
        self.sentinels: list[RedisProcess] = []
        self.failover_timeout_ms = failover_timeout_ms

    @property
    def nodes(self) -> list[RedisProcess]:
        """The primary and the replica, in the order they were started."""
        return [self.primary] + ([] if self.replica is None else [self.replica])

    @property
    def addresses(self) -> str:
        """``SESSIONSVC_REDIS_SENTINELS`` for this group."""
        return ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)

    def start(self) -> SentinelGroup:
        """Start every process and wait until the sentinels know each other and the nodes."""
        self.primary.start()
        self.replica = RedisProcess(
            self.directory / "replica",
            replica_of=self.primary.port,
            tls=self.tls,
            extra_args=self._links,
        )
        self.replica.start().wait_replicating()
        for n in range(3):
            home = self.directory / f"sentinel-{n}"
            home.mkdir(parents=True, exist_ok=True)
            conf = home / "sentinel.conf"
            conf.write_text(
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary.port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} 500\n"
                f"sentinel failover-timeout {SERVICE} {self.failover_timeout_ms}\n"
            )
            sentinel = RedisProcess(
                home, config_file=conf, extra_args=["--sentinel", *self._links], tls=self.tls
            )
            self.sentinels.append(sentinel.start())
        _wait(self._settled, "the sentinels to know the primary, the replica and each other")
        return self

    def _settled(self) -> bool:
        for sentinel in self.sentinels:
            state = self.state(sentinel)
            if state is None or int(state.get("num-slaves", 0)) != 1:
                return False
            if int(state.get("num-other-sentinels", 0)) != 2:
                return False
        return True

    @staticmethod
    def state(sentinel: RedisProcess) -> dict[str, Any] | None:
        """``SENTINEL MASTER <service>`` (redis-py's dict), ``None`` if it does not answer."""
        reply: dict[str, Any] | None = _ask(sentinel, lambda c: c.sentinel_master(SERVICE))
        return reply

    @staticmethod
    def primary_port(sentinel: RedisProcess) -> int | None:
        """The port ``sentinel`` names as the service's primary now."""
        reply = _ask(sentinel, lambda c: c.sentinel_get_master_addr_by_name(SERVICE))
        return None if not reply else int(reply[1])

    @staticmethod
    def role(node: RedisProcess) -> str | None:
        """``master`` or ``slave``, as the node itself says (``None``: it does not answer)."""
        reply = _ask(node, lambda c: c.execute_command("ROLE"))
        return None if not reply else _text(reply[0])

    def failover(self) -> None:
        """``SENTINEL FAILOVER``: promote the replica without waiting for a failure."""
        client = _client(self.sentinels[0])
        try:
            client.execute_command("SENTINEL", "FAILOVER", SERVICE)
        finally:
            client.close()

    def wait_promoted(self, node: RedisProcess) -> None:
        """Wait until every live sentinel names ``node`` and it answers as a primary."""

        def promoted() -> bool:
            named = {self.primary_port(s) for s in self.sentinels if s.running}
            return named == {node.port} and self.role(node) == "master"

        _wait(promoted, f"port {node.port} promoted")

    def wait_demoted(self, node: RedisProcess) -> None:
        """Wait until ``node`` (a primary that lost a failover) answers as a replica."""
        _wait(lambda: self.role(node) == "slave", f"port {node.port} demoted")

    def stop(self) -> None:
        """Stop every process."""
        for process in [*self.sentinels, *self.nodes]:
            process.stop()


def _links(tls: ServerTLS) -> list[str]:
    """The arguments of a process that connects to the others over TLS, presenting the client
    certificate (the server's is for server authentication only)."""
    args = ["--tls-replication", "yes"]
    if tls.client_cert_file is not None and tls.client_key_file is not None:
        args += ["--tls-client-cert-file", str(tls.client_cert_file)]
        args += ["--tls-client-key-file", str(tls.client_key_file)]
    return args


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@pytest.fixture
def redis_sentinel(tmp_path: Path) -> Iterator[SentinelGroup]:
    """A fresh primary, replica and three sentinels for one test (stopped at the end)."""
    group = SentinelGroup(tmp_path / "sentinel")
    try:
        yield group.start()
    finally:
        group.stop()
