"""``SESSIONSVC_REDIS_SENTINELS``/``SESSIONSVC_REDIS_SERVICE``: what the settings accept and
refuse, and what the client factories build from them (no Redis needed: Sentinel clients
connect lazily)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio.sentinel
import redis.connection
import redis.sentinel
from conftest import make_settings
from pydantic import ValidationError
from redis.exceptions import ReadOnlyError, ResponseError
from tls_harness import make_pki

from sessionsvc import ConfigError, load_settings
from sessionsvc._redis.clients import (
    async_client,
    blocking_async_client,
    blocking_client,
    sync_client,
)
from sessionsvc._redis.sentinel_conn import AsyncResolving, Resolving, ResolvingSSL
from sessionsvc._redis.slotpool import SlotPool
from sessionsvc.cli.config_check import check_config

SENTINELS = "127.0.0.1:26379, sentinel-b:26380,[::1]:26381"


def sentinel(**overrides: Any) -> Any:
    values = {"redis_sentinels": SENTINELS, "redis_service": "ss-primary", **overrides}
    return make_settings(**values)


def test_off_by_default() -> None:
    settings = make_settings()
    assert settings.redis_sentinels == () and settings.redis_service is None


def test_the_environment_gives_a_comma_separated_list(
    clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SESSIONSVC_ISSUER", "https://issuer.example")
    monkeypatch.setenv("SESSIONSVC_AUDIENCE", "api")
    monkeypatch.setenv("SESSIONSVC_REDIS_SENTINELS", SENTINELS)
    monkeypatch.setenv("SESSIONSVC_REDIS_SERVICE", "ss-primary")
    settings = load_settings()
    assert settings.redis_sentinels == ("127.0.0.1:26379", "sentinel-b:26380", "[::1]:26381")


@pytest.mark.parametrize("entry", ["sentinel-b", "h:0", "h:65536", "h:port", "a b:1", "h:1:2"])
def test_an_entry_that_is_not_host_port_is_refused_by_name(entry: str) -> None:
    with pytest.raises(ConfigError, match=r"SESSIONSVC_REDIS_SENTINELS: .*host:port") as caught:
        load_settings(**sentinel_kwargs(f"127.0.0.1:26379,{entry}"))
    assert entry not in str(caught.value).replace("host:port", "")


def sentinel_kwargs(sentinels: str, **overrides: Any) -> dict[str, Any]:
    settings = make_settings()
    base = {
        "issuer": settings.issuer,
        "audience": settings.audience,
        "redis_sentinels": sentinels,
        "redis_service": "ss-primary",
        "_env_file": None,
    }
    return {**base, **overrides}


def test_a_sentinel_named_twice_is_refused() -> None:
    with pytest.raises(ValidationError, match="twice"):
        sentinel(redis_sentinels="h:1,h:1")


def test_sentinels_need_a_service_name() -> None:
    with pytest.raises(ConfigError, match="SESSIONSVC_REDIS_SERVICE is required"):
        load_settings(**sentinel_kwargs("h:1", redis_service=None))


def test_a_service_name_without_sentinels_is_refused() -> None:
    with pytest.raises(ValidationError, match="SESSIONSVC_REDIS_SENTINELS is not"):
        make_settings(redis_service="ss-primary")


def test_sentinel_and_cluster_exclude_each_other() -> None:
    with pytest.raises(ValidationError, match="SESSIONSVC_REDIS_CLUSTER=true exclude"):
        sentinel(redis_cluster=True)


def test_sentinel_needs_a_tcp_url() -> None:
    with pytest.raises(ValidationError, match="needs a redis:// or rediss://"):
        sentinel(redis_url="unix:///run/redis.sock")


def test_the_sentinel_password_is_never_shown() -> None:
    settings = sentinel(redis_sentinel_password="s3ntinel-secret")
    assert "s3ntinel-secret" not in repr(settings) and "s3ntinel-secret" not in str(settings)


def test_config_check_names_the_sentinels_never_their_password() -> None:
    findings = check_config(sentinel(redis_sentinel_password="s3ntinel-secret"))
    text = "\n".join(message for _, message in findings)
    assert "redis_sentinels=127.0.0.1:26379,sentinel-b:26380" in text
    assert "redis_service=ss-primary" in text and "s3ntinel-secret" not in text


def test_empty_sentinel_variables_are_unset() -> None:
    settings = make_settings(redis_sentinels="", redis_service=" ", redis_sentinel_password="")
    assert settings.redis_sentinels == () and settings.redis_service is None
    assert settings.redis_sentinel_password is None


def pool_of(client: Any) -> Any:
    return client.connection_pool


def test_clients_ask_the_sentinels_for_the_primary() -> None:
    settings = sentinel(
        redis_url="redis://app:data-secret@ignored:1/3",
        redis_sentinel_username="watcher",
        redis_sentinel_password="s3ntinel-secret",
    )
    client = sync_client(settings)
    try:
        pool = pool_of(client)
        assert isinstance(pool, redis.sentinel.SentinelConnectionPool) and pool.is_master
        assert pool.connection_class is Resolving  # (a retry's reconnect asks the sentinels)
        assert pool.service_name == "ss-primary"
        node = pool.connection_kwargs
        assert (node["username"], node["password"], node["db"]) == ("app", "data-secret", 3)
        assert "host" not in node and node["socket_timeout"] == settings.redis_socket_timeout
        manager = pool.sentinel_manager
        addresses = [s.connection_pool.connection_kwargs for s in manager.sentinels]
        assert [(a["host"], a["port"]) for a in addresses] == [
            ("127.0.0.1", 26379),
            ("sentinel-b", 26380),
            ("::1", 26381),
        ]
        assert (addresses[0]["username"], addresses[0]["password"]) == (
            "watcher",
            "s3ntinel-secret",
        )
    finally:
        client.close()


def test_a_blocking_client_outwaits_its_block_but_the_sentinels_do_not() -> None:
    settings = sentinel()
    client = blocking_client(settings, 5.0, "feed")
    try:
        node = pool_of(client).connection_kwargs
        assert node["socket_timeout"] == 5.0 + settings.redis_socket_timeout
        assert node["retry"].get_retries() == 0
        first = pool_of(client).sentinel_manager.sentinels[0]
        assert first.connection_pool.connection_kwargs["socket_timeout"] == 2.0
    finally:
        client.close()


def test_the_asyncio_factories_build_sentinel_clients() -> None:
    settings = sentinel()

    async def build() -> list[Any]:
        clients = [async_client(settings), blocking_async_client(settings, 1.0)]
        pools = [pool_of(c) for c in clients]
        for client in clients:
            await client.aclose()
        return pools

    pools = asyncio.run(build())
    assert all(isinstance(p, redis.asyncio.sentinel.SentinelConnectionPool) for p in pools)
    assert all(p.connection_class is AsyncResolving for p in pools)


def test_tls_reaches_the_data_nodes_and_the_sentinels(tmp_path: Path) -> None:
    ca = make_pki(tmp_path).ca
    settings = sentinel(redis_url="rediss://ignored:1/0", redis_ca_file=ca)
    client = sync_client(settings)
    try:
        pool = pool_of(client)
        assert pool.connection_class is ResolvingSSL
        assert issubclass(pool.connection_class, redis.sentinel.SentinelManagedSSLConnection)
        assert pool.connection_kwargs["ssl_cert_reqs"] == "required"
        first = pool.sentinel_manager.sentinels[0].connection_pool
        assert issubclass(first.connection_class, redis.connection.SSLConnection)
        assert first.connection_kwargs["ssl_check_hostname"] is True
    finally:
        client.close()


class FakeConnection:
    def __init__(self) -> None:
        self.disconnected = 0

    def disconnect(self) -> None:
        self.disconnected += 1


def test_a_connection_that_met_readonly_is_dropped_before_it_goes_back() -> None:
    """A reply a ``BoundedConnection`` parsed itself: redis-py's READONLY rule never saw it."""
    client = sync_client(sentinel())
    try:
        pool, conn = SlotPool(client), FakeConnection()
        pool.pools[id(conn)] = pool_of(client)
        assert not pool.failed(ResponseError("ERR wrong number of arguments"))
        assert pool.failed(ReadOnlyError("READONLY You can't write against a read only replica"))
        pool.put(conn)
        assert conn.disconnected == 1
    finally:
        client.close()
