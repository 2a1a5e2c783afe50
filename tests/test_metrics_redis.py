"""``sessionsvc.metrics`` against validators following a real Redis: what the collector reports
from the feed, and validators made stale on purpose — their Redis cut off by a proxy, or the
server's process stopped (SIGSTOP: connected, but no answer) — turning not ready, then ready
again once Redis is back. Nothing here asserts a duration."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from redis_server import RedisProcess
from revocation_harness import (
    REV,
    Applier,
    Proxy,
    Tokens,
    feed_settings,
    following,
    raw_client,
    wait_for,
)

from sessionsvc import Revocation, TokenRejected, Validator
from sessionsvc.metrics import install, ready
from sessionsvc.metrics.families import PREFIX
from sessionsvc.revocation.ticks import tick_commands

pytestmark = pytest.mark.redis


def scraped(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    """One sample of the validator named ``default``, as a scrape would read it now."""
    return registry.get_sample_value(PREFIX + name, {"validator": "default", **labels})


@contextlib.contextmanager
def scraping(validator: Validator) -> Iterator[CollectorRegistry]:
    registry = CollectorRegistry()
    install(validator, registry)
    yield registry


def test_a_following_validator_reports_its_snapshot(redis_url: str) -> None:
    with raw_client(redis_url) as client:
        Applier(client)(Revocation("session", "S-gone", until=time.time() + 600))
    with following(feed_settings(redis_url)) as v, scraping(v) as registry:
        assert scraped(registry, "following") == 1.0
        assert scraped(registry, "stale") == 0.0
        assert scraped(registry, "feed_bootstraps_total") == 1.0
        assert scraped(registry, "view_entries", kind="session") == 1.0


def test_entries_applied_while_tailing_are_counted(redis_url: str) -> None:
    with (
        following(feed_settings(redis_url)) as v,
        scraping(v) as registry,
        raw_client(redis_url) as client,
    ):
        Applier(client)(Revocation("token", "J-1", until=time.time() + 600))
        wait_for(lambda: scraped(registry, "feed_applied_entries_total") == 1.0, "the entry")
        assert scraped(registry, "view_entries", kind="token") == 1.0


def test_a_failing_listener_is_counted(redis_url: str) -> None:
    def broken(rev: Revocation) -> None:
        raise RuntimeError("listener bug")

    with (
        following(feed_settings(redis_url), listener=broken) as v,
        scraping(v) as registry,
        raw_client(redis_url) as client,
    ):
        Applier(client)(Revocation("token", "J-2", until=time.time() + 600))
        wait_for(lambda: scraped(registry, "listener_errors_total") == 1.0, "the listener error")


def test_the_workers_ticks_are_counted(redis_url: str) -> None:
    with (
        following(feed_settings(redis_url)) as v,
        scraping(v) as registry,
        raw_client(redis_url) as client,
    ):
        for command in tick_commands(REV):
            client.execute_command(*command)
        wait_for(lambda: scraped(registry, "feed_ticks_total") == 1.0, "the tick")


def test_the_workers_inbound_report_is_reported(redis_url: str) -> None:
    with raw_client(redis_url) as client:
        client.set(REV.key("inbound"), f"{time.time():.6f} -")  # none waiting
    with following(feed_settings(redis_url)) as v, scraping(v) as registry:
        assert scraped(registry, "inbound_lag_seconds") == 0.0
        assert scraped(registry, "inbound_report_age_seconds") is not None


@contextlib.contextmanager
def behind_a_proxy(server: RedisProcess) -> Iterator[tuple[Proxy, Validator, CollectorRegistry]]:
    """A validator following ``server`` through a proxy that the test can cut (MAX_STALENESS 1 s,
    so that it turns stale soon after)."""
    with Proxy(server.port) as proxy:
        settings = feed_settings(proxy.url, max_staleness=1, redis_connect_timeout=0.5)
        with following(settings) as v, scraping(v) as registry:
            assert ready(v).ok
            yield proxy, v, registry


def test_a_validator_cut_off_from_redis_turns_stale_and_not_ready(
    redis_server: RedisProcess, redis_url: str
) -> None:
    with behind_a_proxy(redis_server) as (proxy, v, registry):
        proxy.partition()
        wait_for(lambda: not ready(v).ok, "the validator to turn not ready")
        assert ready(v).reason.startswith("not ready: stale")
        assert scraped(registry, "stale") == 1.0
        first = scraped(registry, "staleness_seconds")
        assert first is not None and first > 1.0  # past MAX_STALENESS
        wait_for(lambda: (scraped(registry, "staleness_seconds") or 0) > first, "it to grow")
        wait_for(lambda: (scraped(registry, "feed_reconnects_total") or 0) >= 1, "a reconnect")


def test_a_validator_that_gets_redis_back_is_ready_again(
    redis_server: RedisProcess, redis_url: str
) -> None:
    with behind_a_proxy(redis_server) as (proxy, v, registry):
        proxy.partition()
        wait_for(lambda: not ready(v).ok, "the validator to turn not ready")
        proxy.heal()
        wait_for(lambda: ready(v).ok, "the validator to be ready again")
        assert scraped(registry, "stale") == 0.0


def test_a_validator_whose_redis_hangs_is_not_ready_until_it_answers(tmp_path: Path) -> None:
    with RedisProcess(tmp_path) as server:  # its own: this test stops the process
        assert server.process is not None
        settings = feed_settings(server.url, max_staleness=1, redis_socket_timeout=1)
        with following(settings) as v, scraping(v) as registry:
            server.process.send_signal(signal.SIGSTOP)
            try:
                wait_for(lambda: not ready(v).ok, "the validator to turn not ready")
                assert scraped(registry, "stale") == 1.0
            finally:
                server.process.send_signal(signal.SIGCONT)
            wait_for(lambda: ready(v).ok, "the validator to be ready again")
            assert scraped(registry, "stale") == 0.0


def test_a_rejection_by_the_awaited_direct_check_is_counted(redis_url: str) -> None:
    settings = feed_settings(redis_url, max_staleness=1, staleness_policy="direct")
    token = Tokens(settings).access("alice", "S-direct")
    with following(settings) as v:
        pass  # closed: the view ages into staleness
    wait_for(lambda: v.health()["stale"], "the view to go stale")
    with raw_client(redis_url) as client:
        Applier(client)(Revocation("session", "S-direct", until=time.time() + 600))

    async def judged() -> Any:
        try:
            with pytest.raises(TokenRejected) as info:
                await v.avalidate(token)
            return info.value.reason
        finally:
            await v.aclose()

    assert asyncio.run(judged()) == "revoked"
    assert v.rejections["revoked"] == 1
