"""``SESSIONSVC_REDIS_CLUSTER``: what the setting accepts and what refuses it (no Redis needed)."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio.cluster
from conftest import make_settings
from pydantic import ValidationError

from sessionsvc import AsyncSessionService, ConfigError, SessionService
from sessionsvc._redis.clients import async_client, is_cluster


def test_off_by_default() -> None:
    assert make_settings().redis_cluster is False


@pytest.mark.parametrize(
    "url", ["unix:///run/redis.sock", "redis://127.0.0.1:7000/2", "redis://127.0.0.1:7000?db=1"]
)
def test_a_cluster_needs_a_tcp_url_to_database_0(url: str) -> None:
    with pytest.raises(ValidationError, match="Redis Cluster"):
        make_settings(redis_url=url, redis_cluster=True)


def test_the_async_factory_builds_a_cluster_client() -> None:
    settings = make_settings(redis_url="redis://127.0.0.1:7000/0", redis_cluster=True)
    client = async_client(settings)  # (connects lazily: no Redis needed)
    try:
        assert isinstance(client, redis.asyncio.cluster.RedisCluster) and is_cluster(client)
    finally:
        asyncio.run(client.aclose())


@pytest.mark.parametrize("service", [SessionService, AsyncSessionService])
def test_session_operations_refuse_a_cluster(service: type[SessionService]) -> None:
    settings = make_settings(redis_url="redis://127.0.0.1:7000/0", redis_cluster=True)
    with pytest.raises(ConfigError, match="not supported yet"):
        service(settings)
