"""``SESSIONSVC_REDIS_CLUSTER``: what the setting accepts and what refuses it (no Redis needed)."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio.cluster
from conftest import make_settings
from pydantic import ValidationError

from sessionsvc import (
    Publisher,
    StoreUnavailable,
)
from sessionsvc._redis.clients import async_client, is_cluster
from sessionsvc.embedded import free_port
from workers.worker import Worker, WorkerOptions


def test_off_by_default() -> None:
    assert make_settings().redis_cluster is False


@pytest.mark.parametrize(
    "url", ["unix:///run/redis.sock", "redis://127.0.0.1:7000/2", "redis://127.0.0.1:7000?db=1"]
)
def test_a_cluster_needs_a_tcp_url_to_database_0(url: str) -> None:
    with pytest.raises(ValidationError, match="Redis Cluster"):
        make_settings(redis_url=url, redis_cluster=True)


@pytest.mark.parametrize("level", ["aof", "replica"])
def test_durability_levels_are_accepted_on_a_cluster(level: str) -> None:
    settings = make_settings(
        redis_url="redis://127.0.0.1:7000", redis_cluster=True, durability=level
    )
    assert (settings.redis_cluster, settings.durability) == (True, level)


def test_the_async_factory_builds_a_cluster_client() -> None:
    settings = make_settings(redis_url="redis://127.0.0.1:7000/0", redis_cluster=True)
    client = async_client(settings)  # (connects lazily: no Redis needed)
    try:
        assert isinstance(client, redis.asyncio.cluster.RedisCluster) and is_cluster(client)
    finally:
        asyncio.run(client.aclose())


def unreachable_cluster() -> str:
    """A cluster URL where nothing listens."""
    return f"redis://127.0.0.1:{free_port()}/0"


def test_a_cluster_client_that_reaches_no_node_is_store_unavailable() -> None:
    """Built while no node answers (the sync client connects on first use, as on one Redis):
    each operation is ``StoreUnavailable`` until one does."""
    settings = make_settings(
        redis_url=unreachable_cluster(), redis_cluster=True, redis_connect_timeout=0.2
    )
    publisher = Publisher(settings)
    for _ in range(2):
        with pytest.raises(StoreUnavailable, match="Redis Cluster"):
            publisher.revoke_session("S-1")
    publisher.close()


def test_a_worker_built_while_no_node_answers_starts_and_waits(
    clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As on one Redis: no exit while the cluster is away (the loop retries, the health
    reports Redis unreachable)."""
    settings = make_settings(
        redis_url=unreachable_cluster(), redis_cluster=True, redis_connect_timeout=0.2
    )
    worker = Worker(settings, WorkerOptions(consumer="w-1"))
    assert not worker.client.built  # type: ignore[union-attr]
