"""The validator feed against a real Redis: bootstrap, tail, listeners, health, staleness policies.

The control flow is one op (``test_follow``) and both feeds only run it, so each behaviour is
tested once, with ``start()`` (thread); what is the runner's or the shell's own is tested with
``astart()``/``aclose()`` too (``mode``). The ``direct`` policy: ``test_direct``."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
import redis.asyncio
from redis_server import RedisProcess
from revocation_harness import (
    Applier,
    Tokens,
    feed_settings,
    following,
    outcome,
    raw_client,
    wait_for,
)

from sessionsvc import Revocation, Validator
from sessionsvc.revocation.log import APPLY_REVOCATION, RevKeys, revocation_args

pytestmark = pytest.mark.redis


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    """Both feeds: for what each shell does itself (start, close, its runner)."""
    return str(request.param)


def test_start_bootstraps_existing_state(redis_url: str) -> None:
    settings, now = feed_settings(redis_url), time.time()
    tokens = Tokens(settings)
    with raw_client(redis_url) as client:
        apply = Applier(client)
        apply(Revocation("session", "S-gone", until=now + 3600))
        apply(Revocation("token", "J-gone", until=now + 3600))
        apply(Revocation("user", "mallory", before=now, until=now + 3600))
        apply(Revocation("key", "k-b"))
    revoked = [
        tokens.access("alice", "S-gone"),
        tokens.access("mallory", "S-m", iat=now - 10),
        tokens.access("bob", "S-b", kid="k-b"),
    ]
    fine = [tokens.access("bob", "S-ok"), tokens.access("mallory", "S-m2", iat=now + 1)]
    with following(settings) as v:
        # no waiting: start() returns once the snapshot is in the view
        assert [outcome(v, t) for t in revoked] == ["revoked"] * 3
        assert [outcome(v, t) for t in fine] == ["ok"] * 2
        assert "J-gone" in v.view.tokens
        health = v.health()
        assert (health["bootstraps"], health["view_size"], health["stale"]) == (1, 4, False)


def test_tail_applies_new_revocations_and_calls_listeners(redis_url: str, mode: str) -> None:
    settings, now = feed_settings(redis_url), time.time()
    tokens = Tokens(settings)
    early: list[Revocation] = []
    late: list[Revocation] = []
    victim, bystander = tokens.access("alice", "S1"), tokens.access("alice", "S2")
    with following(settings, mode, listener=early.append) as v, raw_client(redis_url) as client:
        v.add_listener(late.append)  # added while following
        assert outcome(v, victim) == outcome(v, bystander) == "ok"
        Applier(client)(Revocation("session", "S1", until=now + 600), source="test")
        wait_for(lambda: outcome(v, victim) == "revoked", "the revocation to reach the view")
        wait_for(lambda: late, "the listener")
        assert [(r.kind, r.value) for r in early] == [("session", "S1")]
        assert early == late
        assert outcome(v, bystander) == "ok"
        assert v.health()["applied_entries"] == 1


def test_health_reports_the_feed(redis_url: str) -> None:
    settings = feed_settings(redis_url)
    log = RevKeys().log
    with following(settings) as v, raw_client(redis_url) as client:
        client.xadd(log, {"kind": "bogus", "value": "x"})  # a misbehaving writer
        Applier(client)(Revocation("key", "k-x"))
        wait_for(lambda: v.health()["applied_entries"] == 1, "the good entry")
        health = v.health()
        staleness = health.pop("staleness_seconds")
        assert 0 <= staleness < settings.max_staleness
        assert health == {
            "following": True,
            "stale": False,
            "view_size": 1,
            "applied_entries": 1,
            "reconnects": 0,
            "bootstraps": 1,
            "bad_entries": 1,
            "ticks": 0,
            "listener_errors": 0,
            "feed_errors": 0,
            "stale_accepts": 0,
            "cache_size": 0,
            "inbound_lag_seconds": None,  # no worker has reported
            "inbound_report_age_seconds": None,
            "key_reloads": 0,
            "key_reload_failures": 0,
        }


def test_health_of_a_validator_that_does_not_follow(redis_url: str) -> None:
    health = Validator(feed_settings(redis_url)).health()
    assert (health["following"], health["stale"], health["staleness_seconds"]) == (
        False,
        False,
        0.0,
    )


def test_context_managers_follow_and_stop(redis_url: str, mode: str) -> None:
    settings, now = feed_settings(redis_url), time.time()
    token = Tokens(settings).access("alice", "S1")
    rev = Revocation("session", "S1", until=now + 600)
    args = revocation_args(rev, epoch="test")
    if mode == "sync":
        with Validator(settings) as v, raw_client(redis_url) as client:
            assert outcome(v, token) == "ok"
            client.register_script(APPLY_REVOCATION)(keys=RevKeys().all(), args=args)
            wait_for(lambda: outcome(v, token) == "revoked", "the revocation")
        assert not [t for t in threading.enumerate() if t.name == "sessionsvc-feed"]
        return

    async def main() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            async with Validator(settings) as v:
                assert outcome(v, token) == "ok"
                await client.register_script(APPLY_REVOCATION)(keys=RevKeys().all(), args=args)
                for _ in range(4000):
                    if outcome(v, token) == "revoked":
                        break
                    await asyncio.sleep(0.005)
                assert outcome(v, token) == "revoked"
            current = asyncio.current_task()
            assert [t for t in asyncio.all_tasks() if t is not current] == []
        finally:
            await client.aclose()

    asyncio.run(main())


def test_start_without_redis_is_stale_until_redis_appears(tmp_path: Path, mode: str) -> None:
    server = RedisProcess(tmp_path)  # not started yet
    settings = feed_settings(server.url, redis_connect_timeout=0.2)
    token = Tokens(settings).access()
    try:
        with following(settings, mode, wait=0.2) as v:
            assert outcome(v, token) == "stale"  # fail_closed: never synced, never fresh
            assert v.health()["bootstraps"] == 0
            server.start()
            wait_for(lambda: v.health()["bootstraps"] == 1, "the first snapshot")
            assert outcome(v, token) == "ok"
    finally:
        server.stop()


def test_fail_closed_rejects_as_stale_while_redis_is_away(tmp_path: Path) -> None:
    with RedisProcess(tmp_path) as server:
        settings = feed_settings(server.url, max_staleness=1, redis_connect_timeout=0.2)
        token = Tokens(settings).access()
        with following(settings) as v:
            assert outcome(v, token) == "ok"
            server.stop()
            wait_for(lambda: v.health()["stale"], "the view to go stale")
            assert outcome(v, token) == "stale"
            assert v.health()["staleness_seconds"] > settings.max_staleness
            server.start()
            wait_for(lambda: not v.health()["stale"], "the view to be fresh again")
            assert outcome(v, token) == "ok"
            assert v.health()["reconnects"] >= 1


def test_fail_open_accepts_and_counts(redis_url: str) -> None:
    settings = feed_settings(redis_url, max_staleness=1, staleness_policy="fail_open")
    tokens = Tokens(settings)
    token, revoked = tokens.access("alice", "S1"), tokens.access("alice", "S2")
    with following(settings) as v:
        assert outcome(v, token) == "ok"
    wait_for(lambda: v.health()["stale"], "the view to go stale")
    assert [outcome(v, token) for _ in range(3)] == ["ok"] * 3
    assert v.stale_accepts == v.health()["stale_accepts"] == 3
    v.revoke(Revocation("session", "S2"))
    assert outcome(v, revoked) == "revoked"  # what the view holds still rejects


def test_follows_over_resp3(redis_url: str) -> None:
    """With ``?protocol=3`` scores arrive as doubles; one kept forever is ``inf``, not b"inf"."""
    now = time.time()
    with raw_client(redis_url) as client:
        apply = Applier(client)
        apply(Revocation("session", "S-forever"))
        apply(Revocation("token", "J-1", until=now + 600))
        apply(Revocation("user", "mallory", before=now, until=now + 600))
    settings = feed_settings(f"{redis_url}?protocol=3")
    with following(settings) as v, raw_client(redis_url) as client:
        health = v.health()
        assert (health["bootstraps"], health["view_size"], health["stale"]) == (1, 3, False)
        assert "S-forever" in v.view.sessions and "J-1" in v.view.tokens
        Applier(client)(Revocation("session", "S-2", until=now + 600))
        wait_for(lambda: "S-2" in v.view.sessions, "a revocation over RESP3")


def test_aclose_passes_on_its_callers_cancellation(redis_url: str) -> None:
    async def scenario() -> None:
        validator = Validator(feed_settings(redis_url))
        await validator.astart()
        closer = asyncio.create_task(validator.aclose())
        await asyncio.sleep(0)  # the closer is now waiting for the feed task
        closer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await closer

    asyncio.run(scenario())
