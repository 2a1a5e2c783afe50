"""The cluster harness itself (``tests/redis_cluster.py``)."""

from __future__ import annotations

import pytest
import redis.cluster
from redis_cluster import ClusterProcess, cluster_port

from sessionsvc.embedded_cluster import MAX_PORT

pytestmark = [pytest.mark.redis, pytest.mark.cluster]


def test_cluster_ports_leave_room_for_the_bus_port() -> None:
    port = cluster_port()
    assert port <= MAX_PORT


def test_three_primaries_cover_every_slot(redis_cluster: ClusterProcess) -> None:
    client = redis.cluster.RedisCluster.from_url(redis_cluster.url)
    try:
        primaries = client.get_primaries()
        assert len(primaries) == 3
        assert int(client.cluster_info()["cluster_slots_assigned"]) == 16384
    finally:
        client.close()


def test_flush_empties_every_primary(redis_cluster: ClusterProcess) -> None:
    client = redis.cluster.RedisCluster.from_url(redis_cluster.url)
    try:
        for key in ("{a}x", "{b}x", "{c}x", "{d}x"):
            client.set(key, "1")
        redis_cluster.flush()
        assert client.dbsize(target_nodes=redis.cluster.RedisCluster.PRIMARIES) == 0
    finally:
        client.close()
