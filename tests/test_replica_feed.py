"""Validators on replicas (``SESSIONSVC_READ_FROM_REPLICAS``) against real servers: a primary with
a replica (``SESSIONSVC_REDIS_REPLICA_URL``), Sentinel and Redis Cluster. A revocation written to
the primary reaches a validator that reads a replica; a replica that stops receiving (detached
with ``REPLICAOF NO ONE``) makes the validator stale, never fresh past its last tick; catching
up makes it fresh again. The worker's ticks themselves: skipped by a validator on the primary,
trimmed with the log. Outcomes only, never timings."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.cluster
from redis_cluster import ClusterProcess
from redis_sentinel import SERVICE, SentinelGroup
from redis_server import RedisProcess
from revocation_harness import (
    REV,
    Applier,
    Tokens,
    feed_settings,
    following,
    outcome,
    raw_client,
    running_worker,
    wait_for,
)

from sessionsvc import Revocation, Settings
from sessionsvc.revocation.ticks import entry_time
from workers.worker import Worker, WorkerOptions

pytestmark = pytest.mark.redis

FAST = {"tick_interval": 0.1, "max_staleness": 1.0}  # stale soon after the ticks stop
FEED = "name=sessionsvc-feed"


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@dataclass
class Pair:
    primary: RedisProcess
    replica: RedisProcess

    def settings(self, **overrides: Any) -> Settings:
        values = {"read_from_replicas": True, "redis_replica_url": self.replica.url, **FAST}
        return feed_settings(self.primary.url, **{**values, **overrides})

    def detach(self) -> float:
        """Stop replicating; the time of the newest entry the replica holds (its last tick)."""
        with raw_client(self.replica.url) as client:
            client.execute_command("REPLICAOF", "NO", "ONE")
            newest: Any = client.xrevrange(REV.log, count=1)
        return entry_time(newest[0][0])

    def attach(self) -> None:
        with raw_client(self.replica.url) as client:
            client.execute_command("REPLICAOF", "127.0.0.1", str(self.primary.port))
        self.replica.wait_replicating()


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    with (
        RedisProcess(tmp_path / "primary") as primary,
        RedisProcess(tmp_path / "replica", replica_of=primary.port) as replica,
    ):
        replica.wait_replicating()
        yield Pair(primary, replica)


def feeds_on(url: str) -> bool:
    with raw_client(url) as client:
        listing = client.execute_command("CLIENT", "LIST")
    text = listing.decode() if isinstance(listing, bytes) else str(listing)
    return FEED in text


def fresh(v: Any) -> bool:
    return not v.health()["stale"]


@pytest.mark.topology
def test_a_revocation_on_the_primary_reaches_a_validator_on_the_replica(
    pair: Pair, mode: str
) -> None:
    settings, now = pair.settings(), time.time()
    victim = Tokens(settings).access("alice", "R-1")
    with running_worker(settings), following(settings, mode) as v:
        wait_for(lambda: fresh(v), "fresh from the ticks")
        with raw_client(pair.primary.url) as primary:
            Applier(primary)(Revocation("session", "R-1", until=now + 600))
        wait_for(lambda: outcome(v, victim) == "revoked", "the revocation through the replica")
        assert feeds_on(pair.replica.url) and not feeds_on(pair.primary.url)
        wait_for(lambda: v.health()["ticks"] > 0, "a tick read (skipped)")
        assert v.health()["bad_entries"] == 0


@pytest.mark.topology
def test_a_detached_replica_makes_the_validator_stale_never_wrongly_fresh(
    pair: Pair, mode: str
) -> None:
    settings, now = pair.settings(), time.time()
    victim = Tokens(settings).access("alice", "R-lost")
    with running_worker(settings), following(settings, mode) as v:
        wait_for(lambda: fresh(v), "fresh from the ticks")
        last_tick = pair.detach()
        with raw_client(pair.primary.url) as primary:
            Applier(primary)(Revocation("session", "R-lost", until=now + 600))
        # empty reads keep coming back from the detached replica: they prove nothing
        assert v.stale_after <= last_tick + settings.max_staleness
        wait_for(lambda: v.health()["stale"], "stale once its last tick is too old")
        assert outcome(v, victim) == "stale"  # not "ok": the revocation never arrived
        assert "R-lost" not in v.view.sessions


@pytest.mark.topology
def test_a_replica_catching_up_makes_the_validator_fresh_again(pair: Pair) -> None:
    settings, now = pair.settings(), time.time()
    victim = Tokens(settings).access("alice", "R-late")
    with running_worker(settings), following(settings) as v:
        wait_for(lambda: fresh(v), "fresh from the ticks")
        pair.detach()
        with raw_client(pair.primary.url) as primary:
            Applier(primary)(Revocation("session", "R-late", until=now + 600))
        wait_for(lambda: v.health()["stale"], "stale")
        pair.attach()
        wait_for(lambda: fresh(v), "fresh again")
        assert outcome(v, victim) == "revoked"


@pytest.mark.topology
def test_without_a_worker_a_validator_on_a_replica_is_never_fresh(pair: Pair) -> None:
    settings = pair.settings()
    with raw_client(pair.primary.url) as primary:
        entry = Applier(primary)(Revocation("session", "R-0", until=time.time() + 600))
    assert entry is not None
    with following(settings, wait=0.5) as v:
        wait_for(lambda: "R-0" in v.view.sessions, "the snapshot from the replica")
        assert v.stale_after <= entry_time(entry) + settings.max_staleness  # no later proof
        wait_for(lambda: v.health()["stale"], "stale: the snapshot's newest entry ages")


def test_a_validator_on_the_primary_skips_the_ticks(redis_url: str) -> None:
    settings = feed_settings(redis_url, tick_interval=0.05)
    with running_worker(settings), following(settings) as v:
        wait_for(lambda: v.health()["ticks"] >= 3, "a few ticks")
        assert fresh(v) and v.health()["bad_entries"] == 0 and len(v.view) == 0


def test_ticks_are_trimmed_with_the_log(redis_url: str) -> None:
    settings = feed_settings(redis_url, tick_interval=1, log_retention=60)
    later = time.time() + 120  # past log_retention
    worker = Worker(settings, WorkerOptions(consumer="hk-ticks"), clock=lambda: later)
    try:
        worker.chores.write_tick()
        worker.chores.write_tick()
        with raw_client(redis_url) as client:
            assert client.xlen(REV.log) == 2 and client.get(REV.epoch) is not None
            worker.scripts.load_all()
            worker.chores.prune_and_trim()
            assert client.xlen(REV.log) == 0 and client.get(REV.trimmed) is not None
    finally:
        worker.reader.close()
        worker.client.close()


@pytest.mark.sentinel
def test_on_sentinel_the_feed_reads_a_replica(redis_sentinel: SentinelGroup) -> None:
    group = redis_sentinel
    assert group.replica is not None
    values = {"redis_sentinels": group.addresses, "redis_service": SERVICE}
    settings = feed_settings("redis://127.0.0.1:1/0", read_from_replicas=True, **values, **FAST)
    victim = Tokens(settings).access("alice", "R-s")
    with running_worker(settings), following(settings) as v:
        wait_for(lambda: fresh(v), "fresh from the ticks")
        with raw_client(group.primary.url) as primary:
            Applier(primary)(Revocation("session", "R-s", until=time.time() + 600))
        wait_for(lambda: outcome(v, victim) == "revoked", "the revocation through the replica")
        assert feeds_on(group.replica.url) and not feeds_on(group.primary.url)


@pytest.mark.cluster
def test_on_a_cluster_the_feed_reads_a_replica_of_the_rev_slot(
    redis_cluster_with_replicas: ClusterProcess,
) -> None:
    cluster = redis_cluster_with_replicas
    settings = feed_settings(cluster.url, redis_cluster=True, read_from_replicas=True, **FAST)
    victim = Tokens(settings).access("alice", "R-c")
    with running_worker(settings), following(settings) as v:
        wait_for(lambda: fresh(v), "fresh from the ticks")
        client = redis.cluster.RedisCluster.from_url(cluster.url)
        try:
            Applier(client)(Revocation("session", "R-c", until=time.time() + 600))
        finally:
            client.close()
        wait_for(lambda: outcome(v, victim) == "revoked", "the revocation through the replica")
        primary = cluster.node_serving(REV.log)
        on = [n for n in cluster.nodes if feeds_on(n.url)]
        assert len(on) == 1 and on[0] is not primary


def test_a_failing_tick_leaves_the_other_chores_running(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = feed_settings(redis_url, tick_interval=1)
    worker = Worker(settings, WorkerOptions(consumer="hk-tick-fails"))
    try:
        worker.reader.ensure_groups()
        worker.scripts.load_all()

        def refused() -> None:
            raise redis.exceptions.OutOfMemoryError("OOM command not allowed")

        monkeypatch.setattr(worker.chores, "write_tick", refused)
        worker.chores.tick()
        assert set(worker.health.failing) == {"tick"}
        assert "housekeeping" in worker.health.ok_at
    finally:
        worker.reader.close()
        worker.client.close()
