"""Pytest fixtures over a throw-away Redis Cluster (``sessionsvc.embedded_cluster``).

``ClusterProcess`` here adds what tests of slot migration need (``begin_migration``,
``migrate``, ``assign``, ``node_id``). Fixtures: ``redis_cluster`` (3 primaries, one per test
session) and ``redis_cluster_url`` (a URL naming one node, after FLUSHALL and SCRIPT FLUSH on
every primary), ``redis_cluster_with_replicas`` (one per test). Registered with
``pytest_plugins`` in ``tests/conftest.py``; tests that use them carry the ``cluster`` marker
(skip: ``-m 'not cluster'``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sessionsvc.embedded import RedisProcess
from sessionsvc.embedded_cluster import ClusterProcess as BaseCluster
from sessionsvc.embedded_cluster import cluster_port, node_client

__all__ = ["ClusterProcess", "cluster_port"]


class ClusterProcess(BaseCluster):
    """``sessionsvc.embedded_cluster.ClusterProcess`` with slot-migration helpers."""

    @staticmethod
    def node_id(node: RedisProcess) -> str:
        """``CLUSTER MYID`` of ``node``."""
        with node_client(node) as client:
            return _text(client.execute_command("CLUSTER", "MYID"))

    def begin_migration(self, key: str, target: RedisProcess) -> int:
        """Mark ``key``'s slot IMPORTING on ``target`` and MIGRATING on its owner (nothing
        moved yet: the owner answers ASK for a key it lacks); the slot."""
        source = self.node_serving(key)
        with node_client(source) as client:
            slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))
        with node_client(target) as client:
            client.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", self.node_id(source))
        with node_client(source) as client:
            client.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", self.node_id(target))
        return slot

    @staticmethod
    def migrate(source: RedisProcess, target: RedisProcess, *keys: str) -> None:
        """``MIGRATE`` ``keys`` from ``source`` to ``target`` (a slot in migration)."""
        with node_client(source) as client:
            client.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)

    def assign(self, slot: int, owner: RedisProcess) -> None:
        """``CLUSTER SETSLOT slot NODE owner`` on every primary, the owner first (ends a
        migration, or undoes one), then wait until every node's map names ``owner``."""
        owner_id = self.node_id(owner)
        nodes = self.primaries()
        for node in sorted(nodes, key=lambda n: n is not owner):
            with node_client(node) as client:
                client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", owner_id)
        deadline = time.monotonic() + 30.0
        while not all(self._serves(node, slot, owner) for node in nodes):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the nodes do not agree on slot {slot}")
            time.sleep(0.05)

    @staticmethod
    def _serves(node: RedisProcess, slot: int, owner: RedisProcess) -> bool:
        with node_client(node) as client:
            slots: Any = client.execute_command("CLUSTER", "SLOTS")
        return any(s <= slot <= e and int(p[1]) == owner.port for s, e, p, *_ in slots)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterProcess]:
    """A 3-primary cluster shared by the whole test session (stopped at the end)."""
    cluster = ClusterProcess(tmp_path_factory.mktemp("cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def redis_cluster_with_replicas(tmp_path: Path) -> Iterator[ClusterProcess]:
    """3 primaries with a replica each, for one test (a failover test may kill a primary)."""
    cluster = ClusterProcess(tmp_path / "cluster", replicas=1)
    try:
        cluster.start()
        cluster.wait_replicas_synced()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def redis_cluster_url(redis_cluster: ClusterProcess) -> str:
    """The shared cluster's URL (one node), emptied for this test."""
    redis_cluster.flush()
    return redis_cluster.url
