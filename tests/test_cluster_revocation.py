"""The revocation path on a 3-primary Redis Cluster (``SESSIONSVC_REDIS_CLUSTER=true``): the
validator feed, publishers, the worker (streams, scripts, dead letters, pub/sub, chores)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis.cluster
from revocation_harness import (
    REV,
    Applier,
    Tokens,
    all_consumed,
    dead_letters,
    feed_settings,
    following,
    outcome,
    running_worker,
    wait_for,
)

from sessionsvc import (
    AsyncPublisher,
    Publisher,
    Revocation,
    SessionService,
    Settings,
    TokenRejected,
    Validator,
)
from sessionsvc.sessions.keys import user_tag
from workers.worker import Worker, WorkerOptions

pytestmark = [pytest.mark.redis, pytest.mark.cluster]

EVENTS = "ss:events"


def cluster_settings(url: str, **overrides: Any) -> Settings:
    """``feed_settings`` with ``redis_cluster`` on."""
    return feed_settings(url, redis_cluster=True, **overrides)


@contextlib.contextmanager
def cluster_client(url: str) -> Iterator[redis.cluster.RedisCluster]:
    """A plain redis-py cluster client (no sessionsvc code), always closed."""
    client = redis.cluster.RedisCluster.from_url(url)
    try:
        yield client
    finally:
        client.close()


def subscribers(client: redis.cluster.RedisCluster, channel: str) -> int:
    """Subscribers of ``channel`` on every primary (PUBSUB NUMSUB counts a node's own)."""
    replies: Any = client.pubsub_numsub(channel, target_nodes=client.PRIMARIES)
    if isinstance(replies, dict):
        return sum(int(counts[0][1]) for counts in replies.values())
    return sum(int(n) for _, n in replies)


def test_the_rev_and_intake_slots_are_on_different_primaries(
    redis_cluster_url: str,
) -> None:
    """The premise of the suite: the revocation state and the intakes live apart."""
    with cluster_client(redis_cluster_url) as client:
        rev = client.get_node_from_key(REV.log)
        intake = client.get_node_from_key(EVENTS)
        assert rev.name != intake.name


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_the_feed_bootstraps_and_tails_the_log(redis_cluster_url: str, mode: str) -> None:
    settings, now = cluster_settings(redis_cluster_url), time.time()
    tokens = Tokens(settings)
    early, late = tokens.access("alice", "S-early"), tokens.access("alice", "S-late")
    with cluster_client(redis_cluster_url) as client:
        apply = Applier(client)
        apply(Revocation("session", "S-early", until=now + 3600))
        with following(settings, mode) as v:
            assert outcome(v, early) == "revoked"  # the snapshot
            assert outcome(v, late) == "ok"
            apply(Revocation("session", "S-late", until=now + 3600))
            wait_for(lambda: outcome(v, late) == "revoked", "the tail")


@pytest.mark.parametrize("event", ["session", "user", "key"])
def test_an_intake_event_reaches_the_validator(redis_cluster_url: str, event: str) -> None:
    settings = cluster_settings(redis_cluster_url)
    tokens = Tokens(settings)
    victim, bystander = tokens.access("alice", "S-1"), tokens.access("bob", "S-2", kid="k-b")
    fields = {
        "session": {"type": "session.revoke", "sid": "S-1"},
        "user": {"type": "user.revoke", "sub": "alice"},
        "key": {"type": "key.revoke", "kid": "k-a"},
    }[event]
    with (
        following(settings) as v,
        running_worker(settings) as rw,
        cluster_client(redis_cluster_url) as client,
    ):
        last = client.xadd(EVENTS, fields).decode()  # type: ignore[arg-type]
        wait_for(lambda: outcome(v, victim) == "revoked", f"{event} to reach the validator")
        assert outcome(v, bystander) == "ok"
        wait_for(lambda: all_consumed(client, last), "the entry acknowledged")  # type: ignore[arg-type]
        assert rw.alive


def test_publishers_charge_their_budget_and_reach_the_validator(redis_cluster_url: str) -> None:
    settings = cluster_settings(redis_cluster_url, publishers={"idp": ["session.revoke"]})
    tokens = Tokens(settings)
    victim = tokens.access("alice", "S-idp")
    with (
        following(settings) as v,
        running_worker(settings) as rw,
        cluster_client(redis_cluster_url) as client,
    ):
        publisher = Publisher(settings, intake="idp")
        try:
            publisher.revoke_session("S-idp")
        finally:
            publisher.close()
        wait_for(lambda: outcome(v, victim) == "revoked", "the publisher's revocation")
        assert client.zcard(REV.budget("idp")) == 1
        assert client.xlen("{ss:events}:dlq") == 0 and rw.alive


def test_the_async_publisher_writes_its_intake(redis_cluster_url: str) -> None:
    async def publish() -> str:
        publisher = AsyncPublisher(cluster_settings(redis_cluster_url))
        try:
            return await publisher.revoke_token("J-1", exp=time.time() + 60)
        finally:
            await publisher.aclose()

    entry = asyncio.run(publish())
    with cluster_client(redis_cluster_url) as client:
        assert [i.decode() for i, _ in client.xrange(EVENTS)] == [entry]


def test_bad_entries_are_dead_lettered(redis_cluster_url: str) -> None:
    settings = cluster_settings(redis_cluster_url)
    with running_worker(settings) as rw, cluster_client(redis_cluster_url) as client:
        bad = client.xadd(EVENTS, {"type": "session.revoke"}).decode()
        good = client.xadd(EVENTS, {"type": "session.revoke", "sid": "S-ok"}).decode()
        wait_for(lambda: all_consumed(client, good), "both entries")  # type: ignore[arg-type]
        letters = dead_letters(client)  # type: ignore[arg-type]
        assert list(letters) == [bad] and letters[bad]["dlq:error"] == "missing_field"
        assert client.zscore(REV.key("sid"), "S-ok") is not None and rw.alive


def test_a_published_message_is_forwarded_and_applied(redis_cluster_url: str) -> None:
    settings = cluster_settings(redis_cluster_url)
    tokens = Tokens(settings)
    victim = tokens.access("alice", "S-ps")
    with (
        following(settings) as v,
        running_worker(settings, pubsub=True),
        cluster_client(redis_cluster_url) as client,
    ):
        wait_for(lambda: subscribers(client, EVENTS) >= 1, "the forwarder")
        client.publish(EVENTS, json.dumps({"type": "session.revoke", "sid": "S-ps"}))
        wait_for(lambda: outcome(v, victim) == "revoked", "the forwarded message")
        assert client.xlen("{ss:events}:pubsub") == 1


def test_housekeeping_prunes_beats_and_trims(redis_cluster_url: str) -> None:
    settings, now = cluster_settings(redis_cluster_url), time.time()
    with cluster_client(redis_cluster_url) as client:
        apply = Applier(client)
        apply(Revocation("session", "S-expired", until=now - 10))
        apply(Revocation("session", "S-live", until=now + 3600))
        client.xadd(EVENTS, {"type": "session.revoke", "sid": "S-x"})
        worker = Worker(settings, WorkerOptions(consumer="hk"))
        try:
            worker.reader.ensure_groups()
            worker.scripts.load_all()
            worker.chores.heartbeat()
            worker.chores.run()
        finally:
            worker.client.close()
        assert client.zrange(REV.key("sid"), 0, -1) == [b"S-live"]
        assert client.exists(REV.key("worker:hk"))
        assert client.get(REV.key("inbound")) is not None  # the inbound lag (oldest.lua)


def test_the_direct_policy_asks_the_cluster_while_stale(redis_cluster_url: str) -> None:
    settings = cluster_settings(redis_cluster_url, max_staleness=1, staleness_policy="direct")
    tokens = Tokens(settings)
    victim, bystander = tokens.access("alice", "S-victim"), tokens.access("bob", "S-other")
    with following(settings) as v:
        assert outcome(v, victim) == "ok"
    try:  # the feed has stopped: what follows never reaches the view
        with cluster_client(redis_cluster_url) as client:
            Applier(client)(Revocation("session", "S-victim", until=time.time() + 600))
        wait_for(lambda: v.health()["stale"], "the view to go stale")
        assert [outcome(v, victim), outcome(v, bystander)] == ["revoked", "ok"]
    finally:
        v.close()


def test_avalidate_asks_the_cluster_while_stale(redis_cluster_url: str) -> None:
    settings = cluster_settings(redis_cluster_url, max_staleness=1, staleness_policy="direct")
    tokens = Tokens(settings)
    victim, bystander = tokens.access("alice", "S-victim"), tokens.access("bob", "S-other")

    async def checked(v: Validator, token: str) -> str:
        try:
            await v.avalidate(token)
        except TokenRejected as exc:
            return exc.reason
        return "ok"

    async def scenario() -> list[str]:
        v = Validator(settings)
        await v.astart()
        try:
            assert v._feed is not None
            await v._feed.close()  # the view ages from here
            with cluster_client(redis_cluster_url) as client:
                Applier(client)(Revocation("session", "S-victim", until=time.time() + 600))
            while not v.health()["stale"]:
                await asyncio.sleep(0.01)
            return [await checked(v, victim), await checked(v, bystander)]
        finally:
            await v.aclose()

    assert asyncio.run(scenario()) == ["revoked", "ok"]


def test_the_workers_logouts_end_real_sessions_on_a_cluster(redis_cluster_url: str) -> None:
    """``session.revoke`` of a session of ours and ``user.revoke`` run the session service's
    single-slot steps: revoked, then ended (the user's behind its fence); a publisher's are
    charged to its budget."""
    settings = cluster_settings(redis_cluster_url, publishers={"idp": ["session.revoke"]})
    sessions = SessionService(settings)
    one, other = sessions.login("alice"), sessions.login("alice")
    bob = [sessions.login("bob") for _ in range(2)]
    with (
        following(settings) as v,
        running_worker(settings) as rw,
        cluster_client(redis_cluster_url) as client,
    ):
        publisher = Publisher(settings, intake="idp")
        try:
            publisher.revoke_session(one.session_id)
        finally:
            publisher.close()
        wait_for(lambda: outcome(v, one.access_token) == "revoked", "the session revocation")
        wait_for(lambda: len(sessions.list_sessions("alice")) == 1, "the session ended")
        assert client.zcard(REV.budget("idp")) == 1
        last = client.xadd(EVENTS, {"type": "user.revoke", "sub": "bob"}).decode()  # type: ignore[union-attr]
        for pair in bob:
            wait_for(lambda p=pair: outcome(v, p.access_token) == "revoked", "the user's")
        wait_for(lambda: all_consumed(client, last), "the entry acknowledged")  # type: ignore[arg-type]
        assert sessions.list_sessions("bob") == []
        assert client.hget(sessions.core.keys.fence_of(user_tag("bob")), "pending") is None
        assert [s.session_id for s in sessions.list_sessions("alice")] == [other.session_id]
        with pytest.raises(TokenRejected):
            sessions.refresh(bob[0].refresh_token)
        assert outcome(v, other.access_token) == "ok" and rw.alive
    sessions.close()


def test_a_publishers_logout_over_its_budget_is_dead_lettered_on_a_cluster(
    redis_cluster_url: str,
) -> None:
    """On a cluster a logout runs as single-slot steps: one its publisher's full budget refuses
    is dead-lettered (``over_capacity``) and its session stays, as on one Redis."""
    settings = cluster_settings(
        redis_cluster_url, max_revocations=1000, publishers={"crm": ["session.revoke"]}
    )
    sessions = SessionService(settings)
    try:
        sid = sessions.login("alice").session_id
        with running_worker(settings), cluster_client(redis_cluster_url) as client:
            client.zadd("ss:{rev}:budget:crm", {f"token:J{i}": 10_000_000_000 for i in range(1000)})
            stream = "{ss:events}:crm"
            entry = client.xadd(stream, {"type": "session.revoke", "sid": sid}).decode()
            letters = wait_for(lambda: dead_letters(client), "the dead letter")  # type: ignore[arg-type]
            assert letters[entry]["dlq:error"] == "over_capacity"
        assert [s.session_id for s in sessions.list_sessions("alice")] == [sid]
    finally:
        sessions.close()
