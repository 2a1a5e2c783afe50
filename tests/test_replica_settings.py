"""``SESSIONSVC_READ_FROM_REPLICAS``, ``SESSIONSVC_REDIS_REPLICA_URL`` and
``SESSIONSVC_TICK_INTERVAL``: what the settings accept and refuse (no Redis needed), messages
naming the variables and never a value."""

from __future__ import annotations

from typing import Any

import pytest

from sessionsvc import ConfigError, load_settings
from sessionsvc.cli.config_check import check_config

REPLICA = "redis://:s3cret-replica@replica.internal:6380/0"


def settings(**overrides: Any) -> Any:
    values = {"issuer": "https://issuer.example", "audience": "api", "_env_file": None}
    return load_settings(**{**values, **overrides})


def test_off_by_default_with_ticks_every_second(clean_env: None) -> None:
    s = settings()
    assert (s.read_from_replicas, s.redis_replica_url, s.tick_interval) == (False, None, 1.0)


def test_one_redis_reads_the_replica_url(clean_env: None) -> None:
    s = settings(read_from_replicas=True, redis_replica_url=REPLICA)
    assert s.redis_replica_url.get_secret_value() == REPLICA
    assert "s3cret" not in repr(s)


def test_one_redis_without_a_replica_url_is_refused(clean_env: None) -> None:
    with pytest.raises(ConfigError, match="SESSIONSVC_REDIS_REPLICA_URL"):
        settings(read_from_replicas=True)


def test_a_replica_url_without_the_flag_is_refused(clean_env: None) -> None:
    with pytest.raises(ConfigError, match="SESSIONSVC_READ_FROM_REPLICAS is not true"):
        settings(redis_replica_url=REPLICA)


def test_an_empty_replica_url_is_unset(clean_env: None) -> None:
    assert settings(redis_replica_url=" ").redis_replica_url is None


def test_a_replica_url_on_sentinel_is_refused(clean_env: None) -> None:
    sentinel = {"redis_sentinels": "127.0.0.1:26379", "redis_service": "ss-primary"}
    with pytest.raises(ConfigError, match="not used with SESSIONSVC_REDIS_SENTINELS"):
        settings(read_from_replicas=True, redis_replica_url=REPLICA, **sentinel)


def test_sentinel_finds_its_replicas(clean_env: None) -> None:
    sentinel = {"redis_sentinels": "127.0.0.1:26379", "redis_service": "ss-primary"}
    assert settings(read_from_replicas=True, **sentinel).read_from_replicas


def test_a_replica_url_on_a_cluster_is_refused(clean_env: None) -> None:
    with pytest.raises(ConfigError, match="not used with SESSIONSVC_REDIS_CLUSTER"):
        settings(read_from_replicas=True, redis_cluster=True, redis_replica_url=REPLICA)


def test_a_cluster_finds_its_replicas(clean_env: None) -> None:
    assert settings(read_from_replicas=True, redis_cluster=True).read_from_replicas


def test_a_replica_url_of_another_scheme_is_refused(clean_env: None) -> None:
    with pytest.raises(ConfigError, match="scheme of SESSIONSVC_REDIS_URL") as caught:
        settings(read_from_replicas=True, redis_replica_url=REPLICA.replace("redis", "rediss"))
    assert "s3cret" not in str(caught.value)


def test_a_replica_url_redis_py_would_misread_is_refused_unquoted(clean_env: None) -> None:
    with pytest.raises(ConfigError) as caught:
        settings(read_from_replicas=True, redis_replica_url="redis://:pa/ss@replica:6380/0")
    assert "pa/ss" not in str(caught.value)


def test_replicas_without_ticks_are_refused(clean_env: None) -> None:
    with pytest.raises(ConfigError, match="SESSIONSVC_TICK_INTERVAL > 0"):
        settings(read_from_replicas=True, redis_replica_url=REPLICA, tick_interval=0)


def test_ticks_rarer_than_half_the_staleness_are_refused_on_replicas(clean_env: None) -> None:
    with pytest.raises(ConfigError, match="at most half of SESSIONSVC_MAX_STALENESS"):
        settings(read_from_replicas=True, redis_replica_url=REPLICA, tick_interval=8)


def test_ticks_may_be_off_when_no_validator_reads_a_replica(clean_env: None) -> None:
    assert settings(tick_interval=0).tick_interval == 0


def test_a_negative_tick_interval_is_refused(clean_env: None) -> None:
    with pytest.raises(ConfigError, match="SESSIONSVC_TICK_INTERVAL"):
        settings(tick_interval=-1)


def test_config_check_says_where_the_feed_reads_without_the_password(clean_env: None) -> None:
    s = settings(read_from_replicas=True, redis_replica_url=REPLICA)
    lines = [text for _, text in check_config(s) if "read_from_replicas" in text]
    assert len(lines) == 1 and "replica.internal" in lines[0] and "s3cret" not in lines[0]
