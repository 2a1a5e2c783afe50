"""``SESSIONSVC_DURABILITY`` on a real Redis Cluster (3 primaries, a replica each): at
``replica`` a revocation is confirmed by ``WAIT`` on the primary that took it (``{rev}``'s, the
intake's for a publisher) and is on that primary's replica when acknowledged; with that replica
away it is ``RevocationNotDurable``; after a failover of the ``{rev}`` primary nothing
acknowledged is lost and everything resumes. At ``aof`` the check reads the ``{rev}``
primary. Outcomes only, never timings."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.cluster
from redis_cluster import ClusterProcess
from revocation_harness import (
    REV,
    Tokens,
    feed_settings,
    following,
    outcome,
    running_worker,
    wait_for,
)

from sessionsvc import (
    AsyncSessionService,
    ConfigError,
    Publisher,
    RefreshReuseDetected,
    RevocationNotDurable,
    SessionNotFound,
    SessionService,
    StoreUnavailable,
)
from sessionsvc.config import Settings
from sessionsvc.embedded import RedisProcess
from workers.worker import Worker, WorkerOptions

pytestmark = [pytest.mark.redis, pytest.mark.cluster, pytest.mark.topology]

SIDS = REV.key("sid")
USERS = REV.key("user")
INTAKE = "ss:events"


@dataclass
class Shard:
    """The primary serving one key's slot and its replica."""

    primary: RedisProcess
    replica: RedisProcess

    def waits(self) -> int:
        """How many ``WAIT`` the primary has served."""
        return _calls(self.primary, "wait")

    def replica_down(self) -> None:
        self.replica.stop()
        wait_for(lambda: self.primary.info("replication")["connected_slaves"] == 0, "no replica")

    def replica_up(self) -> None:
        self.replica.start()
        wait_for(lambda: _online(self.primary), "the replica back")

    def on_replica(self, *args: Any) -> Any:
        """A read on the replica (``READONLY``: it serves its primary's slots)."""
        return _on(self.replica, ("READONLY",), args)[-1]


def _on(node: RedisProcess, *commands: tuple[Any, ...]) -> list[Any]:
    client = node.client(socket_timeout=2.0, single_connection_client=True)
    try:
        return [client.execute_command(*c) for c in commands]
    finally:
        client.close()


def _calls(node: RedisProcess, command: str) -> int:
    stats = node.info("commandstats").get(f"cmdstat_{command}")
    return int(stats["calls"]) if stats else 0


def _online(primary: RedisProcess) -> bool:
    replica = primary.info("replication").get("slave0")
    return isinstance(replica, dict) and replica.get("state") == "online"


def shard(cluster: ClusterProcess, key: str) -> Shard:
    """The primary serving ``key``'s slot and its replica."""
    primary = cluster.node_serving(key)
    replicas = [
        n
        for n in cluster.nodes
        if n.running
        and n is not primary
        and n.info("replication").get("master_port") == primary.port
    ]
    return Shard(primary, replicas[0])


def settings_of(cluster: ClusterProcess, **overrides: Any) -> Settings:
    values = {"durability": "replica", "durability_timeout": 0.3, **overrides}
    return feed_settings(cluster.url, redis_cluster=True, **values)


def cluster_client(cluster: ClusterProcess) -> redis.cluster.RedisCluster:
    url = next(f"redis://127.0.0.1:{n.port}/0" for n in cluster.nodes if n.running)
    return redis.cluster.RedisCluster.from_url(url)


@pytest.fixture
def cluster(redis_cluster_with_replicas: ClusterProcess) -> ClusterProcess:
    return redis_cluster_with_replicas


@pytest.fixture
def rev(cluster: ClusterProcess) -> Shard:
    return shard(cluster, REV.log)


def test_session_revocations_are_waited_for_on_the_rev_primary(
    cluster: ClusterProcess, rev: Shard
) -> None:
    others = [n for n in cluster.primaries() if n is not rev.primary]
    with SessionService(settings_of(cluster)) as svc:
        tokens = svc.login("alice")
        assert rev.waits() == 0  # a login acknowledges no revocation
        assert svc.logout(tokens.session_id) is True
        waited = rev.waits()
        assert waited >= 1  # (2 when the first call met NOSCRIPT: the WAIT went with it)
        assert rev.on_replica("ZSCORE", SIDS, tokens.session_id) is not None
        svc.login("bob")
        assert svc.logout_all("bob") == 1
        assert rev.waits() > waited
        assert rev.on_replica("HGET", USERS, "bob") is not None
    assert all(_calls(n, "wait") == 0 for n in others)  # never an arbitrary node's WAIT


def test_a_refresh_reuse_is_waited_for_on_the_rev_primary(
    cluster: ClusterProcess, rev: Shard
) -> None:
    with SessionService(settings_of(cluster, refresh_overlap=0)) as svc:
        tokens = svc.login("carol")
        svc.refresh(tokens.refresh_token)  # a rotation: a {u} step, not a revocation
        with pytest.raises(RefreshReuseDetected):
            svc.refresh(tokens.refresh_token)
        assert rev.waits() >= 1
        assert rev.on_replica("ZSCORE", SIDS, tokens.session_id) is not None


def test_a_rotation_is_waited_for_on_the_users_primary(cluster: ClusterProcess) -> None:
    """As on one Redis, a rotation (it consumes the presented refresh token) is confirmed: on
    the primary of the user's slot, which then has it on its replica."""
    with SessionService(settings_of(cluster)) as svc:
        tokens = svc.login("dave")
        user = shard(cluster, svc.core.keys.index("dave"))
        before = user.waits()
        svc.refresh(tokens.refresh_token)
        assert user.waits() > before
        session = svc.core.keys.session("dave", tokens.session_id)
        assert user.on_replica("HGET", session, "prev") is not None  # the rotation, replicated


def test_async_session_revocations_are_waited_for_on_the_rev_primary(
    cluster: ClusterProcess, rev: Shard
) -> None:
    async def scenario() -> str:
        async with AsyncSessionService(settings_of(cluster)) as svc:
            tokens = await svc.login("dave")
            assert await svc.logout(tokens.session_id) is True
            return tokens.session_id

    sid = asyncio.run(scenario())
    assert rev.waits() >= 1
    assert rev.on_replica("ZSCORE", SIDS, sid) is not None


def test_without_the_rev_replica_no_revocation_is_acknowledged(
    cluster: ClusterProcess, rev: Shard
) -> None:
    with SessionService(settings_of(cluster, refresh_overlap=0)) as svc:
        first, second = svc.login("erin"), svc.login("frank")
        reused = svc.login("grace")
        svc.refresh(reused.refresh_token)
        rev.replica_down()
        with pytest.raises(RevocationNotDurable) as caught:
            svc.logout(first.session_id)
        assert isinstance(caught.value, StoreUnavailable)
        with pytest.raises(RevocationNotDurable):
            svc.logout_all("frank")
        with pytest.raises(RevocationNotDurable):
            svc.refresh(reused.refresh_token)  # reuse: revoked, not confirmed
        assert _on(rev.primary, ("ZSCORE", SIDS, first.session_id))[0] is not None
        assert svc.list_sessions("erin") == []  # revoked on the primary: hidden, not yet ended
        rev.replica_up()
        assert svc.logout(first.session_id) is True  # the retry ends the session it left
        svc.logout_all("frank")  # the retry finishes the fence the first attempt left
        with pytest.raises(SessionNotFound):
            svc.get_session(second.session_id)
    assert rev.on_replica("ZSCORE", SIDS, first.session_id) is not None
    assert rev.on_replica("HGET", USERS, "frank") is not None


def test_a_moved_rev_slot_fails_one_confirmed_call_then_the_next_goes_there(
    cluster: ClusterProcess, rev: Shard
) -> None:
    with SessionService(settings_of(cluster)) as svc:
        tokens = svc.login("henry")  # (the client's slot map: {rev} where it was)
        target = next(n for n in cluster.primaries() if n is not rev.primary)
        slot = int(_on(target, ("CLUSTER", "KEYSLOT", REV.log))[0])
        cluster.assign(slot, target)  # ({rev} is empty: nothing to migrate)
        moved = shard(cluster, REV.log)
        with pytest.raises(StoreUnavailable):  # MOVED: not followed, the map re-read
            svc.logout(tokens.session_id)
        assert svc.logout(tokens.session_id) is True
        assert moved.waits() >= 1

    def on_its_replica() -> Any:
        try:
            return moved.on_replica("ZSCORE", SIDS, tokens.session_id)
        except redis.exceptions.MovedError:  # (the replica's map may lag the move)
            return None

    wait_for(on_its_replica, "the logout on the new primary's replica")


def test_a_publishers_event_is_waited_for_on_its_intakes_primary(cluster: ClusterProcess) -> None:
    intake = shard(cluster, INTAKE)
    publisher = Publisher(settings_of(cluster))
    try:
        entry = publisher.revoke_session("S-pub")
        assert intake.waits() >= 1
        assert [e[0].decode() for e in intake.on_replica("XRANGE", INTAKE, "-", "+")] == [entry]
        intake.replica_down()
        with pytest.raises(RevocationNotDurable):
            publisher.revoke_session("S-pub-2")
    finally:
        publisher.close()


def pending(client: redis.cluster.RedisCluster) -> int:
    try:
        return int(client.xpending(INTAKE, "workers")["pending"])
    except redis.ResponseError:
        return -1


def test_the_worker_acknowledges_only_what_the_rev_replica_confirmed(
    cluster: ClusterProcess, rev: Shard
) -> None:
    settings = settings_of(cluster)
    options = {"claim_idle": 0.3, "housekeeping": 0.1, "max_deliveries": 1000}
    client = cluster_client(cluster)
    try:
        with running_worker(settings, **options) as rw:
            # S-1 is no session id of ours: an apply (the ScriptRunner's run, pinned to {rev})
            client.xadd(INTAKE, {"type": "session.revoke", "sid": "S-1"})
            wait_for(lambda: pending(client) == 0 and client.zscore(SIDS, "S-1"), "applied")
            assert rev.waits() >= 1
            assert rev.on_replica("ZSCORE", SIDS, "S-1") is not None

            rev.replica_down()
            # a logout-everywhere: the session service's cluster steps, run by the worker
            client.xadd(INTAKE, {"type": "user.revoke", "sub": "u-2"})
            wait_for(lambda: client.hget(USERS, "u-2"), "applied on the primary")
            assert pending(client) == 1  # ... and not acknowledged
            rev.replica_up()
            wait_for(lambda: pending(client) == 0, "acknowledged once the replica is back")
            assert rev.on_replica("HGET", USERS, "u-2") is not None
            assert client.xlen("{ss:events}:dlq") == 0
            assert rw.alive
    finally:
        client.close()


def retried(call: Any, what: str) -> Any:
    """``call()`` once the cluster answers (a failover under way: ``StoreUnavailable``)."""
    result: list[Any] = []

    def attempt() -> bool:
        try:
            result.append(call())
        except StoreUnavailable:
            return False
        return True

    wait_for(attempt, what)
    return result[0]


def test_no_acknowledged_revocation_is_lost_when_the_rev_primary_fails_over(
    cluster: ClusterProcess, rev: Shard
) -> None:
    settings = settings_of(cluster)
    tokens = Tokens(settings)
    with SessionService(settings) as svc, following(settings) as v:
        sessions = [svc.login(f"user-{n}") for n in range(8)]
        acknowledged = [s.session_id for s in sessions if svc.logout(s.session_id)]
        assert len(acknowledged) == len(sessions)
        survivor = svc.login("zoe")

        rev.primary.kill()  # SIGKILL: no shutdown work
        wait_for(lambda: cluster.node_serving(REV.log) is rev.replica, "the replica promoted")
        promoted = rev.replica
        held = {m.decode() for m in _on(promoted, ("ZRANGE", SIDS, 0, -1))[0]}
        assert set(acknowledged) <= held  # every acknowledged revocation, in the state ...
        logged = _on(promoted, ("XRANGE", REV.log, "-", "+"))[0]
        values = {fields[b"value"].decode() for _, fields in logged}
        assert set(acknowledged) <= values  # ... and in the log

        # the new primary has no replica yet: nothing can be acknowledged at replica
        with pytest.raises((RevocationNotDurable, StoreUnavailable)):
            svc.logout(survivor.session_id)
        rev.primary.start()  # the old primary comes back as the new one's replica
        wait_for(lambda: _online(promoted), "the old primary replicating the new one")

        fresh = retried(lambda: svc.login("yann"), "a login after the failover")
        rotated = retried(lambda: svc.refresh(fresh.refresh_token), "a refresh after it")
        assert retried(lambda: svc.logout(rotated.session_id), "a revocation after it")
        victim = tokens.access("yann", rotated.session_id)
        wait_for(lambda: outcome(v, victim) == "revoked", "the feed after the failover")
        victims = [tokens.access("x", sid) for sid in acknowledged]
        wait_for(lambda: all(outcome(v, t) == "revoked" for t in victims), "none forgotten")


def test_aof_on_a_cluster_without_aof_is_refused(
    redis_cluster: ClusterProcess, redis_cluster_url: str
) -> None:
    settings = feed_settings(redis_cluster_url, redis_cluster=True, durability="aof")
    primary = redis_cluster.node_serving(REV.log)
    infos = _calls(primary, "info")
    with SessionService(settings) as svc:
        tokens = svc.login("alice")  # ({u} steps: no revocation, no check)
        with pytest.raises(ConfigError, match="SESSIONSVC_DURABILITY=aof"):
            svc.logout(tokens.session_id)
    assert _calls(primary, "info") > infos  # the {rev} primary was asked
    worker = Worker(settings, WorkerOptions(consumer="w1", block=0.1))
    with pytest.raises(ConfigError, match="SESSIONSVC_DURABILITY=aof"):
        worker.run()
    client = redis.cluster.RedisCluster.from_url(redis_cluster_url)
    try:
        assert client.zscore(SIDS, tokens.session_id) is None  # nothing applied
    finally:
        client.close()


@pytest.fixture
def aof_cluster(tmp_path: Path) -> Iterator[ClusterProcess]:
    cluster = ClusterProcess(tmp_path / "cluster").start()
    try:
        for node in cluster.nodes:
            _on(node, ("CONFIG", "SET", "appendonly", "yes"))
        wait_for(
            lambda: all(n.info("persistence")["aof_enabled"] == 1 for n in cluster.nodes),
            "AOF on",
        )
        yield cluster
    finally:
        cluster.stop()


def test_aof_on_a_cluster_with_aof_works(aof_cluster: ClusterProcess) -> None:
    settings = feed_settings(aof_cluster.url, redis_cluster=True, durability="aof")
    client = cluster_client(aof_cluster)
    try:
        with SessionService(settings) as svc:
            tokens = svc.login("alice")
            assert svc.logout(tokens.session_id) is True
        with running_worker(settings) as rw:
            client.xadd(INTAKE, {"type": "session.revoke", "sid": "S-aof"})
            wait_for(lambda: client.zscore(SIDS, "S-aof"), "the worker's apply")
            assert rw.alive
    finally:
        client.close()
