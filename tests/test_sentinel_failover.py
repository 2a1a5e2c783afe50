"""Sentinel failovers (one primary, one replica, three sentinels): sessions, the validator feed
and the worker, configured with ``SESSIONSVC_REDIS_SENTINELS``/``SESSIONSVC_REDIS_SERVICE``
only (the URL names no live server), resume on the promoted replica, after the primary dies and
after a ``SENTINEL FAILOVER``; a validator keeps a revocation the promoted replica never
received and still takes later ones. Outcomes only, never timings."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis
from redis_sentinel import SERVICE, SentinelGroup
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

from sessionsvc import AsyncSessionService, Publisher, Revocation, SessionService, Settings
from sessionsvc._redis.bounded import BoundedConnection
from sessionsvc._redis.clients import sync_client
from sessionsvc._redis.hotconn import HotConnection
from sessionsvc.revocation.log import APPLY_REVOCATION, revocation_args

pytestmark = [pytest.mark.redis, pytest.mark.sentinel]

SID_KEY = "ss:{rev}:sid"
NOWHERE = "redis://127.0.0.1:1/0"  # with sentinels, only the URL's user, password, db and TLS count


def sentinel_settings(group: SentinelGroup, **overrides: Any) -> Settings:
    values = {"redis_sentinels": group.addresses, "redis_service": SERVICE, **overrides}
    return feed_settings(NOWHERE, **values)


def unreplicated(script: str) -> str:
    """``script`` with ``redis.set_repl(redis.REPL_NONE)`` first: its writes stay on the server
    that ran it (a write acknowledged by a primary whose replica never received it)."""
    first, _, rest = script.partition("\n")
    if first.startswith("#!"):
        return f"{first}\nredis.set_repl(redis.REPL_NONE)\n{rest}"
    return f"redis.set_repl(redis.REPL_NONE)\n{script}"


def test_sessions_resume_on_the_promoted_replica_after_the_primary_dies(
    redis_sentinel: SentinelGroup,
) -> None:
    group = redis_sentinel
    assert group.replica is not None
    settings = sentinel_settings(group)
    with SessionService(settings) as svc, following(settings) as v:
        first = svc.refresh(svc.login("alice").refresh_token)
        assert svc.logout(first.session_id) is True
        wait_for(lambda: outcome(v, first.access_token) == "revoked", "the logout before")
        group.primary.kill()
        group.wait_promoted(group.replica)
        later = svc.refresh(svc.login("bob").refresh_token)  # the same service, reconnected
        assert svc.logout(later.session_id) is True
        wait_for(lambda: outcome(v, later.access_token) == "revoked", "the logout after")
        assert outcome(v, first.access_token) == "revoked"


def test_async_sessions_and_feed_resume_after_the_primary_dies(
    redis_sentinel: SentinelGroup,
) -> None:
    group, replica = redis_sentinel, redis_sentinel.replica
    assert replica is not None
    settings = sentinel_settings(group)

    async def session(svc: AsyncSessionService, user: str) -> str:
        tokens = await svc.refresh((await svc.login(user)).refresh_token)
        assert await svc.logout(tokens.session_id) is True
        return tokens.access_token

    with following(settings, "async") as v:

        async def scenario() -> tuple[str, str]:
            async with AsyncSessionService(settings) as svc:
                first = await session(svc, "alice")
                await asyncio.to_thread(group.primary.kill)
                await asyncio.to_thread(group.wait_promoted, replica)
                return first, await session(svc, "bob")

        first, later = asyncio.run(scenario())
        wait_for(lambda: outcome(v, later) == "revoked", "the logout after the failover")
        assert outcome(v, first) == "revoked"


def test_the_worker_and_the_feed_follow_a_manual_failover(redis_sentinel: SentinelGroup) -> None:
    """``SENTINEL FAILOVER``: the old primary is demoted (its clients are disconnected, a
    connection made to it answers READONLY); publisher, worker and feed go to the new one."""
    group = redis_sentinel
    assert group.replica is not None
    settings = sentinel_settings(group)
    tokens, publisher = Tokens(settings), Publisher(settings)
    before, after = tokens.access("alice", "S-before"), tokens.access("alice", "S-after")
    try:
        with following(settings) as v, running_worker(settings) as rw:
            publisher.revoke_session("S-before")
            wait_for(lambda: outcome(v, before) == "revoked", "the event before the failover")
            group.failover()
            group.wait_promoted(group.replica)
            group.wait_demoted(group.primary)
            publisher.revoke_session("S-after")
            wait_for(lambda: outcome(v, after) == "revoked", "the event after the failover")
            assert outcome(v, before) == "revoked"
            assert rw.alive
    finally:
        publisher.close()
    with raw_client(group.replica.url) as promoted:
        assert promoted.zscore(SID_KEY, "S-after") is not None  # applied on the new primary


def test_a_validator_keeps_the_revocation_a_promoted_replica_missed(
    redis_sentinel: SentinelGroup,
) -> None:
    """The primary acknowledges a revocation its replica never receives (a script that does
    not replicate: deterministic, unlike racing a crash), then dies. The validator had read it:
    on the promoted replica's log, which lacks its position, it takes a snapshot, keeps the
    missed revocation (union) and follows what comes after."""
    group = redis_sentinel
    assert group.replica is not None
    settings = sentinel_settings(group)
    tokens, until = Tokens(settings), time.time() + 3600
    replicated, missed, later = (tokens.access("alice", s) for s in ("S-1", "S-missed", "S-3"))
    with following(settings) as v, raw_client(group.primary.url) as primary:
        Applier(primary)(Revocation("session", "S-1", until=until))
        with raw_client(group.replica.url) as replica:
            wait_for(lambda: replica.zscore(SID_KEY, "S-1"), "S-1 on the replica")
        script = primary.register_script(unreplicated(APPLY_REVOCATION))
        script(
            keys=REV.all(),
            args=revocation_args(Revocation("session", "S-missed", until=until), epoch="x"),
        )
        wait_for(lambda: outcome(v, missed) == "revoked", "the unreplicated revocation")
        bootstraps = v.health()["bootstraps"]
        group.primary.kill()
        group.wait_promoted(group.replica)
        with raw_client(group.replica.url) as promoted:
            assert promoted.zscore(SID_KEY, "S-missed") is None  # the new primary never had it
        wait_for(lambda: v.health()["bootstraps"] > bootstraps, "a snapshot of the new primary")
        assert outcome(v, missed) == "revoked"
        client = sync_client(settings)
        try:
            Applier(client)(Revocation("session", "S-3", until=until))  # type: ignore[arg-type]
        finally:
            client.close()
        wait_for(lambda: outcome(v, later) == "revoked", "a revocation after the failover")
        assert outcome(v, replicated) == outcome(v, missed) == "revoked"


@pytest.mark.parametrize("kind", [HotConnection, BoundedConnection])
def test_a_hot_connection_to_a_demoted_primary_is_dropped_on_readonly(
    redis_sentinel: SentinelGroup, kind: type[HotConnection] | type[BoundedConnection]
) -> None:
    """Its first connection goes to the demoted primary (as after a sentinel that answered
    before the failover): the write's READONLY drops it, the next one asks the sentinels."""
    group = redis_sentinel
    assert group.replica is not None
    group.failover()
    group.wait_promoted(group.replica)
    group.wait_demoted(group.primary)
    client = sync_client(sentinel_settings(group))
    first_answer_stale(client, group.primary.port)
    conn = kind(client)
    try:
        with pytest.raises(redis.ConnectionError):
            conn("SET", "ss:probe", "1")
        assert conn("SET", "ss:probe", "2") == b"OK"
    finally:
        conn.close()
        client.close()
    with raw_client(group.replica.url) as promoted:
        assert promoted.get("ss:probe") == b"2"


def first_answer_stale(client: Any, port: int) -> None:
    """The client's next question to the sentinels gets ``port`` (an answer from before the
    failover), the later ones the sentinels' own answer."""
    proxy = client.connection_pool.proxy
    ask_sentinels = proxy.get_master_address
    answers = [("127.0.0.1", port)]
    proxy.get_master_address = lambda: answers.pop() if answers else ask_sentinels()


def test_a_call_meeting_readonly_is_retried_on_the_promoted_replica(
    redis_sentinel: SentinelGroup,
) -> None:
    """Through the client layer the call's own retry reconnects, asking the sentinels again
    (redis-py's connection alone would go back to the demoted primary and fail the call)."""
    group = redis_sentinel
    assert group.replica is not None
    group.failover()
    group.wait_promoted(group.replica)
    group.wait_demoted(group.primary)
    client = sync_client(sentinel_settings(group))
    first_answer_stale(client, group.primary.port)
    try:
        assert client.set("ss:probe", "1") is True
    finally:
        client.close()
    with raw_client(group.replica.url) as promoted:
        assert promoted.get("ss:probe") == b"1"
