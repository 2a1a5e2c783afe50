"""The ``direct`` staleness policy: the check's reads and verdict (pure), the blocking check under
``start()``, and under ``astart()`` the awaited one (``avalidate``) while ``validate`` never blocks
the loop."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import structlog
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

from sessionsvc import Revocation, TokenRejected, Validator
from sessionsvc.revocation.direct import check_commands, check_verdict
from sessionsvc.revocation.log import RevKeys


def test_the_direct_check_decides_like_the_view() -> None:
    keys = RevKeys()
    assert [c[0] for c in check_commands(keys, ("S", "J", "u", 100, "k"))] == [
        "ZSCORE",
        "ZSCORE",
        "HGET",
        "HGET",
        "SISMEMBER",
    ]
    assert check_verdict([None, None, None, None, 0], 100, 50.0) is None
    assert check_verdict([60.0, None, None, None, 0], 100, 50.0) == "session"
    assert check_verdict([40.0, None, None, None, 0], 100, 50.0) is None  # expired
    assert check_verdict([None, float("inf"), None, None, 0], 100, 50.0) == "token"
    assert check_verdict([None, None, b"100.5", None, 0], 100, 50.0) == "user"
    assert check_verdict([None, None, b"100", b"101", 0], 100, 50.0) == "all"
    assert check_verdict([None, None, None, None, 1], 100, 50.0) == "key"


@pytest.mark.redis
def test_direct_policy_asks_redis_while_stale(redis_url: str) -> None:
    settings, now = (
        feed_settings(redis_url, max_staleness=1, staleness_policy="direct"),
        time.time(),
    )
    tokens = Tokens(settings)
    victim, bystander = tokens.access("alice", "S-victim"), tokens.access("bob", "S-other")
    with following(settings) as v:
        assert outcome(v, victim) == outcome(v, bystander) == "ok"  # cached
    # the feed has stopped: what follows never reaches the view
    try:
        with raw_client(redis_url) as client:
            Applier(client)(Revocation("session", "S-victim", until=now + 600))
        wait_for(lambda: v.health()["stale"], "the view to go stale")
        assert outcome(v, victim) == "revoked"  # Redis answered, per request
        assert outcome(v, bystander) == "ok"
        assert "S-victim" not in v.view.sessions
    finally:
        v.close()  # the direct-check client


@pytest.mark.redis
def test_direct_policy_is_stale_when_redis_is_unreachable(tmp_path: Path) -> None:
    with RedisProcess(tmp_path) as server:
        settings = feed_settings(
            server.url, max_staleness=1, staleness_policy="direct", redis_connect_timeout=0.2
        )
        token = Tokens(settings).access()
        with following(settings) as v:
            assert outcome(v, token) == "ok"
            server.stop()
            wait_for(lambda: v.health()["stale"], "the view to go stale")
            assert outcome(v, token) == "stale"


async def aoutcome(validator: Validator, token: str) -> str:
    try:
        await validator.avalidate(token)
    except TokenRejected as exc:
        return exc.reason
    return "ok"


@pytest.mark.redis
def test_under_astart_avalidate_awaits_redis_and_validate_never_blocks(redis_url: str) -> None:
    settings = feed_settings(redis_url, max_staleness=1, staleness_policy="direct")
    tokens = Tokens(settings)
    victim, bystander = tokens.access("alice", "S-victim"), tokens.access("bob", "S-other")

    async def scenario() -> None:
        v = Validator(settings)
        await v.astart()
        try:
            assert await aoutcome(v, victim) == await aoutcome(v, bystander) == "ok"  # fresh
            assert v._feed is not None
            await v._feed.close()  # the feed stops: the view ages, what follows misses it
            with raw_client(redis_url) as client:
                Applier(client)(Revocation("session", "S-victim", until=time.time() + 600))
            while not v.health()["stale"]:
                await asyncio.sleep(0.01)
            assert await aoutcome(v, victim) == "revoked"  # Redis answered, awaited
            assert await aoutcome(v, bystander) == "ok"
            with structlog.testing.capture_logs() as logs:
                assert [outcome(v, bystander) for _ in range(3)] == ["stale"] * 3
            assert [e["event"] for e in logs] == ["validator_direct_needs_avalidate"]  # once
            assert v._direct is None  # no blocking client was ever made
        finally:
            await v.aclose()

    asyncio.run(scenario())
