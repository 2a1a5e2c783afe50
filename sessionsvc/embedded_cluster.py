"""A throw-away Redis Cluster of ``RedisProcess`` nodes, for tests and benchmarks.

``ClusterProcess`` starts ``primaries`` × (1 + ``replicas``) redis-servers with
``--cluster-enabled yes`` on free loopback ports whose bus port (port + 10000) is valid and was
free too, joins them with ``redis-cli --cluster create``, and waits for ``cluster_state:ok`` on
every node. Not for production: every node listens on 127.0.0.1 without a password.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from sessionsvc.embedded import RedisProcess, free_port

__all__ = ["ClusterProcess", "cluster_port", "node_client"]

MAX_PORT = 65535 - 10000  # the cluster bus listens on port + 10000


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_port(taken: set[int] | frozenset[int] = frozenset()) -> int:
    """A free loopback port ≤ ``MAX_PORT`` whose bus port (+10000) was free a moment ago too."""
    for _ in range(1000):
        port = free_port()
        if port <= MAX_PORT and port not in taken and _bindable(port + 10000):
            return port
    raise RuntimeError("no free port pair (port, port + 10000) on 127.0.0.1")


def _redis_cli(server: str) -> str:
    """The redis-cli beside ``server`` (or valkey-cli), else the one on PATH."""
    for name in ("redis-cli", "valkey-cli"):
        sibling = Path(server).with_name(name)
        if sibling.exists():
            return str(sibling)
    return shutil.which("redis-cli") or "redis-cli"


class ClusterProcess:
    """A Redis Cluster of ``RedisProcess`` children: ``start``, ``flush``, ``stop``."""

    def __init__(
        self,
        directory: Path,
        *,
        primaries: int = 3,
        replicas: int = 0,
        node_timeout_ms: int | None = None,
    ) -> None:
        """``node_timeout_ms``: how long a node may not answer before the others call it failed
        (default: 2 s with replicas, so a failover test is quick; 30 s without, where a failed
        primary can only take the cluster down, which a busy machine must not cause)."""
        self.directory = Path(directory)
        self.replicas = replicas
        self.nodes: list[RedisProcess] = []
        taken: set[int] = set()
        for _ in range(primaries * (1 + replicas)):
            port = cluster_port(taken)
            taken |= {port, port + 10000}
            node_dir = self.directory / str(port)
            conf = node_dir / f"nodes-{port}.conf"
            args = ["--cluster-enabled", "yes", "--cluster-config-file", str(conf)]
            timeout = node_timeout_ms or (2000 if replicas else 30_000)
            args += ["--cluster-node-timeout", str(timeout)]
            self.nodes.append(RedisProcess(node_dir, port=port, extra_args=args))

    @property
    def url(self) -> str:
        """A URL naming the first node (the client discovers the rest)."""
        return f"redis://127.0.0.1:{self.nodes[0].port}/0"

    def start(self, timeout: float = 30.0) -> ClusterProcess:
        """Start every node, create the cluster, wait for ``cluster_state:ok`` everywhere."""
        for node in self.nodes:
            node.start()
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        create = ["--cluster", "create", *addresses, "--cluster-replicas", str(self.replicas)]
        subprocess.run(  # noqa: S603 (redis-cli beside the server, our own arguments)
            [_redis_cli(self.nodes[0].binary), *create, "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=timeout,
        )
        self.wait_ok(timeout)
        return self

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Wait until every running node reports ``cluster_state:ok`` and knows every node."""
        deadline = time.monotonic() + timeout
        while not all(self._ok(node) for node in self.nodes if node.running):
            if time.monotonic() > deadline:
                raise RuntimeError("the cluster did not reach cluster_state:ok")
            time.sleep(0.05)

    def _ok(self, node: RedisProcess) -> bool:
        with node_client(node) as client:
            try:
                info = client.execute_command("CLUSTER", "INFO")
            except redis.RedisError:
                return False
        text = info.decode() if isinstance(info, bytes) else str(info)
        known = f"cluster_known_nodes:{len(self.nodes)}"
        return "cluster_state:ok" in text and known in text

    def wait_replicas_synced(self, timeout: float = 30.0) -> None:
        """Wait until every primary has a replica whose link is up."""
        deadline = time.monotonic() + timeout
        while not all(self._replicated(node) for node in self.primaries()):
            if time.monotonic() > deadline:
                raise RuntimeError("the replicas did not sync")
            time.sleep(0.05)

    @staticmethod
    def _replicated(node: RedisProcess) -> bool:
        with node_client(node) as client:
            info = client.info("replication")
        replica = info.get("slave0")
        return isinstance(replica, dict) and replica.get("state") == "online"

    def node_serving(self, key: str) -> RedisProcess:
        """The primary that serves ``key``'s slot (as a running node sees the map)."""
        with node_client(next(n for n in self.nodes if n.running)) as client:
            slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))
            slots: Any = client.execute_command("CLUSTER", "SLOTS")
        for start, end, primary, *_ in slots:
            if start <= slot <= end:
                return next(n for n in self.nodes if n.port == int(primary[1]))
        raise RuntimeError(f"no primary serves slot {slot}")

    def primaries(self) -> list[RedisProcess]:
        """The running nodes that are primaries now."""
        out = []
        for node in self.nodes:
            if not node.running:
                continue
            with node_client(node) as client:
                role = client.execute_command("ROLE")
            if role[0] in (b"master", "master"):
                out.append(node)
        return out

    def flush(self) -> None:
        """FLUSHALL and SCRIPT FLUSH on every primary."""
        for node in self.primaries():
            with node_client(node) as client:
                client.flushall()
                client.script_flush()

    def stop(self) -> None:
        """Stop every node."""
        for node in self.nodes:
            node.stop()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class node_client:
    """A plain connection to one node (a context manager: ``with node_client(node) as c``)."""

    def __init__(self, node: RedisProcess) -> None:
        self.client = redis.Redis(
            port=node.port, socket_timeout=2, socket_connect_timeout=2, retry=Retry(NoBackoff(), 0)
        )

    def __enter__(self) -> Any:  # (redis-py: execute_command is untyped)
        return self.client

    def __exit__(self, *exc: object) -> None:
        self.client.close()
