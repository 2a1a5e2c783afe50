"""``SESSIONSVC_REDIS_CLUSTER``: what the setting accepts and what refuses it (no Redis needed)."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio.cluster
from conftest import AUDIENCE, ISSUER, make_settings
from pydantic import ValidationError

from sessionsvc import (
    Publisher,
    StoreUnavailable,
)
from sessionsvc._redis.clients import async_client, is_cluster
from sessionsvc.embedded import free_port
from workers.app import main as worker_main


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
    settings = make_settings(
        redis_url=unreachable_cluster(), redis_cluster=True, redis_connect_timeout=0.2
    )
    with pytest.raises(StoreUnavailable, match="Redis Cluster"):
        Publisher(settings)


def test_the_worker_exits_2_with_the_reason_when_no_node_answers(
    clean_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings()
    assert settings.access_jwks is not None
    for name, value in {
        "REDIS_URL": unreachable_cluster(),
        "REDIS_CLUSTER": "true",
        "REDIS_CONNECT_TIMEOUT": "0.2",
        "ISSUER": ISSUER,
        "AUDIENCE": AUDIENCE,
        "ACCESS_JWKS": settings.access_jwks.get_secret_value(),
    }.items():
        monkeypatch.setenv(f"SESSIONSVC_{name}", value)
    assert worker_main(["--no-pubsub"]) == 2
    assert "cannot reach the Redis Cluster" in capsys.readouterr().err
