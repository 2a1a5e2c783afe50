"""Faults, each asserting zero lost revocations: a worker SIGKILLed mid-burst, the feed's connection
killed again and again, the log trimmed past a validator, Redis restarted empty."""

from __future__ import annotations

import re
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from redis_server import RedisProcess
from revocation_harness import (
    DEADLINE,
    REV,
    Applier,
    Proxy,
    Tokens,
    WorkerProcess,
    dead_letters,
    feed_settings,
    following,
    group_info,
    http_get,
    outcome,
    raw_client,
    raw_entries,
    running_worker,
    wait_for,
)

from sessionsvc import Revocation
from sessionsvc._redis.scripts import SCRIPTS as REGISTRY
from workers.core import DLQ_COPY, META_FIELDS

HOUSEKEEP = REGISTRY["housekeep"].text

pytestmark = [pytest.mark.redis, pytest.mark.faults]

EVENTS = "ss:events"


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def consumer_pending(client: redis.Redis, consumer: str, *, idle: int | None = None) -> int:
    entries: Any = client.xpending_range(EVENTS, "workers", "-", "+", 10_000, consumer, idle=idle)
    return len(entries)


def publish_burst(url: str, count: int, prefix: str) -> None:
    with raw_client(url) as client:
        for start in range(0, count, 100):
            pipe = client.pipeline(transaction=False)
            for n in range(start, min(start + 100, count)):
                pipe.xadd(EVENTS, {"type": "session.revoke", "sid": f"{prefix}{n}"})
            pipe.execute()


def test_sigkill_a_worker_mid_burst(redis_url: str, tmp_path: Path) -> None:
    settings, count = feed_settings(redis_url), 5000
    doomed = WorkerProcess(settings, tmp_path, "w-doomed", "--batch", "20", "--no-pubsub")
    heir: WorkerProcess | None = None
    burst = threading.Thread(target=publish_burst, args=(redis_url, count, "B"), daemon=True)
    try:
        with following(settings) as v, raw_client(redis_url) as client:
            wait_for(lambda: doomed.running() and group_info(client), "the first worker")
            burst.start()

            def caught_holding_entries() -> bool:  # stopped while entries are delivered to it
                doomed.running()
                if consumer_pending(client, "w-doomed") == 0:
                    return False
                doomed.signal(signal.SIGSTOP)
                if consumer_pending(client, "w-doomed") > 0:
                    return True
                doomed.signal(signal.SIGCONT)
                return False

            wait_for(caught_holding_entries, "the worker to hold unacknowledged entries")
            doomed.signal(signal.SIGKILL)
            doomed.wait()
            orphans = consumer_pending(client, "w-doomed")
            assert orphans > 0
            burst.join()
            # no --claim-idle wait: the dead worker's heartbeat lapses and the heir claims at once
            heir = WorkerProcess(settings, tmp_path, "w-heir", "--no-pubsub")
            wait_for(
                lambda: heir.running() and client.zcard(REV.key("sid")) == count,
                "every revocation in the state",
            )
            wait_for(lambda: len(v.view.sessions) == count, "every revocation in the view")
            wait_for(lambda: int(group_info(client)["pending"]) == 0, "nothing left pending")
            assert consumer_pending(client, "w-doomed") == 0
            # entries the dead worker applied but never acknowledged were applied again (a later
            # ``until`` extends them, so they may be logged twice): every one is in the log
            logged = {f[b"value"] for _, f in client.xrange(REV.log) if f[b"kind"] != b"tick"}
            assert logged == {f"B{n}".encode() for n in range(count)}
            assert client.xlen("{ss:events}:dlq") == 0
    finally:
        doomed.close()
        if heir is not None:
            heir.close()
        burst.join(DEADLINE)


def kill_feed_connections(client: redis.Redis) -> int:
    feeds = [c for c in client.client_list() if c.get("name") == "sessionsvc-feed"]
    for c in feeds:
        client.client_kill_filter(_id=c["id"])
    return len(feeds)


def test_client_kill_of_the_feed_connection(redis_url: str, mode: str) -> None:
    settings, now = feed_settings(redis_url), time.time()
    heard: set[str] = set()
    with (
        following(settings, mode, listener=lambda rev: heard.add(rev.value)) as v,
        raw_client(redis_url) as client,
    ):
        apply = Applier(client)
        kills = 0
        for n in range(1000):
            apply(Revocation("session", f"C{n}", until=now + 600))
            if n % 50 == 25:  # 20 times, each time once the feed is connected again
                kills += wait_for(lambda: kill_feed_connections(client), "a feed connection")
        wait_for(lambda: len(v.view.sessions) == 1000, "all 1,000 revocations in the view")
        assert heard == {f"C{n}" for n in range(1000)}
        health = v.health()
        # a kill that lands while the connection sits idle between two commands is repaired
        # by redis-py's pool without an error, so the feed counts fewer reconnects than kills
        assert kills >= 20 and health["reconnects"] >= 1
        assert health["bootstraps"] == 1  # each time it resumed from its position
        assert not health["stale"]


def trim_everything(client: redis.Redis) -> None:
    """What housekeeping does once ``log_retention`` has passed: trim the whole log."""
    newest: Any = client.xrevrange(REV.log, count=1)
    ms = int(newest[0][0].decode().split("-")[0])
    keys = [*REV.all(), REV.trimmed, REV.key("housekeeping")]
    client.register_script(HOUSEKEEP)(keys=keys, args=[f"{time.time():.6f}", f"{ms + 1}-0", 1])
    assert client.xlen(REV.log) == 0


def test_log_trimmed_past_a_partitioned_validator(
    redis_server: Any, redis_url: str, mode: str
) -> None:
    now = time.time()
    with Proxy(redis_server.port) as proxy:
        settings = feed_settings(proxy.url, redis_connect_timeout=0.5)
        with following(settings, mode) as v, raw_client(redis_url) as client:
            apply = Applier(client)
            apply(Revocation("session", "P0", until=now + 600))
            wait_for(lambda: "P0" in v.view.sessions, "the first revocation")
            proxy.partition()
            wait_for(lambda: v.health()["reconnects"] >= 1, "the feed to lose Redis")
            for n in range(1, 51):
                apply(Revocation("session", f"P{n}", until=now + 600))
            trim_everything(client)  # the validator's position is now older than the log
            apply(Revocation("session", "P51", until=now + 600))
            proxy.heal()
            wait_for(lambda: "P51" in v.view.sessions, "the feed to resume")
            missing = [n for n in range(52) if f"P{n}" not in v.view.sessions]
            assert missing == []
            assert v.health()["bootstraps"] == 2


def test_log_trimmed_while_a_connected_validator_stalls(redis_url: str, mode: str) -> None:
    """A follower that stays connected but stops reading (a blocked listener, a paused process)
    for longer than log_retention must notice the trim too, not resume after the gap."""
    now = time.time()
    gate = threading.Event()
    skew = [0.0]  # the stall lasts an hour by the validator's clock

    def slow_listener(rev: Revocation) -> None:
        if rev.value == "STALL":
            gate.wait(DEADLINE)
            skew[0] = 3600.0

    settings = feed_settings(redis_url)
    try:
        with (
            following(
                settings, mode, listener=slow_listener, clock=lambda: time.time() + skew[0]
            ) as v,
            raw_client(redis_url) as client,
        ):
            apply = Applier(client)
            apply(Revocation("session", "STALL", until=now + 600))
            wait_for(lambda: "STALL" in v.view.sessions, "the feed to reach the slow listener")
            for n in range(10):
                apply(Revocation("session", f"G{n}", until=now + 600))
            trim_everything(client)  # housekeeping, an hour later
            apply(Revocation("session", "G10", until=now + 600))
            gate.set()
            wait_for(lambda: "G10" in v.view.sessions, "the feed to resume")
            missing = [n for n in range(11) if f"G{n}" not in v.view.sessions]
            assert missing == []
            assert v.health()["bootstraps"] == 2 and v.health()["reconnects"] == 0
    finally:
        gate.set()


def test_redis_restarted_empty(tmp_path: Path, mode: str) -> None:
    with RedisProcess(tmp_path) as server:
        settings = feed_settings(server.url, max_staleness=1, redis_connect_timeout=0.2)
        tokens = Tokens(settings)
        victims = [tokens.access("alice", f"R{n}") for n in range(20)]
        fine, later = tokens.access("bob", "R-fine"), tokens.access("carol", "R-later")
        with following(settings, mode) as v, running_worker(settings) as rw:
            with raw_client(server.url) as client:
                for n in range(20):
                    client.xadd(EVENTS, {"type": "session.revoke", "sid": f"R{n}"})
                wait_for(lambda: len(v.view) == 20, "the revocations in the view")
                epoch = client.get(REV.epoch)
            server.kill()  # a crash: Redis comes back with nothing
            wait_for(lambda: v.health()["stale"], "the view to go stale")
            assert outcome(v, fine) == "stale"
            server.start()
            wait_for(lambda: v.health()["bootstraps"] == 2, "a new snapshot")
            wait_for(lambda: not v.health()["stale"], "the view to be fresh")
            assert len(v.view) == 20  # it kept what it had
            assert {outcome(v, t) for t in victims} == {"revoked"}
            assert outcome(v, fine) == "ok"
            with raw_client(server.url) as client:
                assert client.get(REV.epoch) not in (None, epoch)
                client.xadd(EVENTS, {"type": "session.revoke", "sid": "R-later"})
                wait_for(lambda: outcome(v, later) == "revoked", "a new revocation to flow")
            assert rw.alive and len(v.view) == 21


def junk(n: int) -> dict[str, str]:
    """One of a few kinds of bad input (each a different dead-letter code)."""
    kinds: list[dict[str, str]] = [
        {"type": "session.nuke", "sid": f"J{n}"},
        {"type": "session.revoke"},
        {"type": "session.revoke", "sid": f"J{n}", "colour": "red"},
        {"type": "key.revoke", "kid": f"made-up-{n}"},
        {"type": "all.revoke", "before": "soon"},
    ]
    return kinds[n % len(kinds)]


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM), in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status)[1]) / 1024  # type: ignore[index]


def test_two_workers_one_killed_mid_burst_with_an_oversized_event_and_junk(
    redis_url: str, tmp_path: Path
) -> None:
    """5,000 revocations, 1,000 junk events and one 50 MB event; one of two workers is
    SIGKILLed while it holds entries. The survivor applies every revocation (a running
    validator enforces them all), dead-letters the junk and a bounded copy of the giant, stays
    under 200 MB of peak RSS, and its probes answer 200 at the end."""
    settings, count = feed_settings(redis_url), 5000
    args = ("--batch", "50", "--no-pubsub", "--metrics-port", "0")
    doomed = WorkerProcess(settings, tmp_path, "w-doomed", *args)
    survivor = WorkerProcess(settings, tmp_path, "w-survivor", *args)
    giant = {"type": "session.revoke", "sid": "S-giant", "pad": "x" * (50 << 20)}

    def burst() -> None:
        with raw_client(redis_url) as c:
            for start in range(0, count, 100):
                pipe = c.pipeline(transaction=False)
                for n in range(start, start + 100):
                    pipe.xadd(EVENTS, {"type": "session.revoke", "sid": f"B{n}"})
                    if n % 5 == 0:
                        pipe.xadd(EVENTS, junk(n // 5))  # type: ignore[arg-type]
                if start == count // 2:
                    pipe.xadd(EVENTS, giant)
                pipe.execute()

    publisher = threading.Thread(target=burst, daemon=True)
    try:
        with following(settings) as v, raw_client(redis_url) as client:
            port = survivor.metrics_port()
            beats = [REV.key("worker:w-doomed"), REV.key("worker:w-survivor")]
            wait_for(lambda: doomed.running() and client.exists(*beats) == 2, "both workers")
            publisher.start()
            wait_for(
                lambda: doomed.running() and consumer_pending(client, "w-doomed") > 0,
                "the doomed worker to hold entries",
            )
            doomed.signal(signal.SIGKILL)
            doomed.wait()
            publisher.join()
            sids = [f"B{n}" for n in range(count)]
            wait_for(
                lambda: survivor.running() and all(s in v.view.sessions for s in sids),
                "every revocation enforced by the running validator",
                timeout=60,
            )
            wait_for(lambda: client.xlen("{ss:events}:dlq") == 1001, "1,001 dead letters", 60)
            wait_for(lambda: int(group_info(client)["pending"]) == 0, "nothing left pending")
            letters = dead_letters(client)
            codes = sorted({m["dlq:error"] for m in letters.values()})
            assert codes == [
                "bad_field",
                "missing_field",
                "too_large",
                "unknown_field",
                "unknown_key",
                "unknown_type",
            ]
            [big] = [m for m in letters.values() if m["dlq:error"] == "too_large"]
            assert int(big["dlq:size"]) > 50 << 20 and big["dlq:truncated"] == "1"
            for _id, fields in raw_entries(client, "{ss:events}:dlq"):
                copied = fields[len(META_FIELDS) :]
                assert all(k.startswith("orig:") for k, _ in copied)
                assert sum(len(k) - 5 + len(val) for k, val in copied) <= DLQ_COPY
            assert peak_rss_mb(survivor.process.pid) < 200
            base = f"http://127.0.0.1:{port}"
            assert http_get(f"{base}/healthz")[0] == http_get(f"{base}/readyz")[0] == 200
    finally:
        doomed.close()
        survivor.close()
        publisher.join(DEADLINE)
