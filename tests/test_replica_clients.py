"""Which replica a validator's feed reads with ``SESSIONSVC_READ_FROM_REPLICAS`` (no Redis
needed: the clients connect lazily; ``CLUSTER NODES`` is parsed as text)."""

from __future__ import annotations

import redis.sentinel
from revocation_harness import feed_settings

from sessionsvc._redis.replicas import replicas_in
from sessionsvc.revocation.feed import feed_client

NODES = """\
aaa 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460
bbb 127.0.0.1:7004@17004 slave aaa 0 1 1 connected
ccc 127.0.0.1:7005@17005 slave,fail aaa 0 1 1 connected
ddd 127.0.0.1:7006@17006 slave aaa 0 1 1 disconnected
eee 127.0.0.1:7002@17002 master - 0 1 2 connected 5461-10922
fff 127.0.0.1:7007@17007 slave eee 0 1 2 connected
ggg [::1]:7008@17008 slave aaa 0 1 1 connected
"""


def test_a_cluster_replica_is_a_connected_healthy_replica_of_the_slots_primary() -> None:
    assert replicas_in(NODES) == [("127.0.0.1", 7004), ("[::1]", 7008)]


def test_a_primary_without_replicas_has_none() -> None:
    assert replicas_in(NODES.splitlines()[0]) == []


def test_on_one_redis_the_feed_reads_the_replica_url() -> None:
    settings = feed_settings(
        "redis://127.0.0.1:1/0",
        read_from_replicas=True,
        redis_replica_url="redis://127.0.0.1:2/0",
        tick_interval=1,
    )
    client = feed_client(settings)
    try:
        kwargs = client.connection_pool.connection_kwargs  # type: ignore[union-attr]
        assert (kwargs["port"], kwargs["client_name"]) == (2, "sessionsvc-feed")
    finally:
        client.close()


def test_on_one_redis_without_the_flag_the_feed_reads_the_primary() -> None:
    client = feed_client(feed_settings("redis://127.0.0.1:1/0"))
    try:
        assert client.connection_pool.connection_kwargs["port"] == 1  # type: ignore[union-attr]
    finally:
        client.close()


def test_on_sentinel_the_feed_asks_for_a_replica() -> None:
    sentinel = {"redis_sentinels": "127.0.0.1:26379", "redis_service": "ss-primary"}
    settings = feed_settings(
        "redis://127.0.0.1:1/0", read_from_replicas=True, tick_interval=1, **sentinel
    )
    client = feed_client(settings)
    try:
        pool = client.connection_pool  # type: ignore[union-attr]
        assert isinstance(pool, redis.sentinel.SentinelConnectionPool) and not pool.is_master
    finally:
        client.close()
