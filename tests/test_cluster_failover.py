"""A failover of the primary serving ``{rev}``: the validator feed finds the promoted replica
(its hot connection re-resolves the slot) and keeps applying revocations."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis.cluster
from redis_cluster import ClusterProcess
from revocation_harness import (
    REV,
    Applier,
    Tokens,
    feed_settings,
    following,
    outcome,
    running_worker,
    wait_for,
)

from sessionsvc import Revocation, SessionService, StoreUnavailable

pytestmark = [pytest.mark.redis, pytest.mark.cluster]


def applied(url: str, rev: Revocation) -> bool:
    """Apply ``rev`` with a fresh cluster client; False while the cluster fails over."""
    try:
        client = redis.cluster.RedisCluster.from_url(url)
        try:
            Applier(client)(rev)
        finally:
            client.close()
    except redis.RedisError:
        return False
    return True


def test_the_feed_follows_the_log_across_a_failover(
    redis_cluster_with_replicas: ClusterProcess,
) -> None:
    cluster = redis_cluster_with_replicas
    settings = feed_settings(cluster.url, redis_cluster=True)
    tokens, now = Tokens(settings), time.time()
    before, after = tokens.access("alice", "S-before"), tokens.access("alice", "S-after")
    with following(settings) as v:
        assert applied(cluster.url, Revocation("session", "S-before", until=now + 3600))
        wait_for(lambda: outcome(v, before) == "revoked", "the revocation before the failover")
        old = cluster.node_serving(REV.log)
        old.kill()
        url = next(f"redis://127.0.0.1:{n.port}/0" for n in cluster.nodes if n.running)
        wait_for(lambda: cluster.node_serving(REV.log) is not old, "a replica promoted")
        rev = Revocation("session", "S-after", until=now + 3600)
        wait_for(lambda: applied(url, rev), "an apply on the new primary")
        wait_for(lambda: outcome(v, after) == "revoked", "the revocation after the failover")
        assert outcome(v, before) == "revoked"  # never forgotten


def test_the_worker_consumes_and_applies_across_failovers(
    redis_cluster_with_replicas: ClusterProcess,
) -> None:
    """The primaries of the intakes' slot, then of ``{rev}``, fail over in turn: an event
    published after each still reaches the validator."""
    cluster = redis_cluster_with_replicas
    settings = feed_settings(cluster.url, redis_cluster=True)
    tokens = Tokens(settings)
    with following(settings) as v, running_worker(settings) as rw:
        for n, key in enumerate(["ss:events", REV.log]):
            old = cluster.node_serving(key)
            old.kill()
            wait_for(lambda k=key, o=old: cluster.node_serving(k) is not o, f"{key} failed over")
            url = next(f"redis://127.0.0.1:{node.port}/0" for node in cluster.nodes if node.running)
            sid = f"S-{n}"
            wait_for(lambda s=sid, u=url: published(u, s), "a publish after the failover")
            victim = tokens.access("alice", sid)
            wait_for(lambda t=victim: outcome(v, t) == "revoked", f"{sid} applied")
        assert rw.alive


def published(url: str, sid: str) -> bool:
    """XADD a session revocation with a fresh cluster client; False while failing over."""
    try:
        client = redis.cluster.RedisCluster.from_url(url)
        try:
            client.xadd("ss:events", {"type": "session.revoke", "sid": sid})
        finally:
            client.close()
    except redis.RedisError:
        return False
    return True


def test_validator_and_worker_outlive_a_whole_cluster_outage(tmp_path: Path) -> None:
    """Every node down (no node answers: the cluster client's own error), then back, empty:
    the feed re-bootstraps, the worker recreates its groups, and a new event gets through."""
    cluster = ClusterProcess(tmp_path / "cluster").start()
    try:
        settings = feed_settings(cluster.url, redis_cluster=True, redis_connect_timeout=0.2)
        victim = Tokens(settings).access("alice", "S-later")
        with following(settings) as v, running_worker(settings) as rw:
            value = rw.worker.metrics.registry.get_sample_value
            for node in cluster.nodes:
                node.kill()
            wait_for(
                lambda: (value("sessionsvc_worker_redis_errors_total") or 0) >= 2,
                "the worker to meet the outage",
            )
            for node in cluster.nodes:
                node.start()
            cluster.wait_ok()
            wait_for(lambda: published(cluster.url, "S-later"), "a publish after the outage")
            wait_for(lambda: outcome(v, victim) == "revoked", "the event after the outage")
            assert rw.alive
    finally:
        cluster.stop()


def test_a_service_built_before_the_cluster_is_up_works_once_it_is(tmp_path: Path) -> None:
    cluster = ClusterProcess(tmp_path / "cluster")
    settings = feed_settings(cluster.url, redis_cluster=True, redis_connect_timeout=0.2)
    sessions = SessionService(settings)  # no node answers yet
    try:
        with pytest.raises(StoreUnavailable):
            sessions.login("alice")
        cluster.start()
        pair = sessions.login("alice")
        assert sessions.logout(pair.session_id) is True
    finally:
        sessions.close()
        cluster.stop()
