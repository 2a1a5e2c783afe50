"""``Housekeeping`` against a real Redis: prune and trim the log, trim acknowledged inbound
entries (also when they are acknowledged while it looks), heartbeat, failover from consumers
without a heartbeat, forgetting them, the inbound lag report."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis
from revocation_harness import (
    REV,
    Applier,
    all_consumed,
    dead_letters,
    feed_settings,
    following,
    raw_client,
    running_worker,
    wait_for,
)

from sessionsvc import Revocation
from workers.reader import IntakeReader
from workers.worker import Worker, WorkerOptions

pytestmark = pytest.mark.redis

EVENTS = "ss:events"


def test_housekeeping_prunes_expired_state_and_trims_the_log(redis_url: str) -> None:
    settings, now = feed_settings(redis_url), time.time()
    with raw_client(redis_url) as client:
        old = {"kind": "session", "value": "S-old", "before": "0", "until": "1"}
        client.xadd(REV.log, old, id="1000-0")  # written long before log_retention
        client.xadd(REV.log, old, id="2000-0")
        apply = Applier(client)
        apply(Revocation("session", "S-expired", until=now - 10))
        apply(Revocation("token", "J-expired", until=now - 10))
        apply(Revocation("user", "u-expired", before=now - 100, until=now - 10))
        apply(Revocation("all", before=now - 100, until=now - 10))
        apply(Revocation("session", "S-live", until=now + 3600))
        apply(Revocation("user", "u-live", before=now - 100, until=now + 3600))
        apply(Revocation("key", "k-old"))
        recent = [i for i, _ in client.xrange(REV.log)][2:]
        client.xgroup_create(EVENTS, "workers", id="0", mkstream=True)
        worker = Worker(settings, WorkerOptions(consumer="hk"))
        try:
            worker.reader.ensure_groups()
            worker.chores.heartbeat()
            worker.chores.run()
        finally:
            worker.client.close()
        assert client.zrange(REV.key("sid"), 0, -1) == [b"S-live"]
        assert client.zcard(REV.key("jti")) == 0
        assert client.hkeys(REV.key("user")) == [b"u-live"]
        assert client.zrange(REV.key("user:until"), 0, -1) == [b"u-live"]
        assert not client.exists(REV.key("all"))
        assert client.smembers(REV.key("kid")) == {b"k-old"}  # keys are never pruned
        assert [i for i, _ in client.xrange(REV.log)] == recent
        assert client.get(REV.trimmed) == b"2000-0"  # a follower behind this re-bootstraps
        assert client.exists(REV.key("worker:hk"))  # heartbeat
        assert worker.metrics.registry.get_sample_value("sessionsvc_worker_pruned_total") == 4


def test_housekeeping_trims_acknowledged_inbound_entries(redis_url: str) -> None:
    settings = feed_settings(redis_url)
    with running_worker(settings, housekeeping=0.05), raw_client(redis_url) as client:
        pipe = client.pipeline(transaction=False)
        for n in range(250):
            pipe.xadd(EVENTS, {"type": "session.revoke", "sid": f"S{n}"})
        last = pipe.execute()[-1].decode()
        wait_for(lambda: all_consumed(client, last), "every entry acknowledged")
        # XTRIM MINID ~: whole stream nodes (100 entries) that every group has acknowledged
        wait_for(lambda: client.xlen(EVENTS) <= 100, "the inbound stream to be trimmed")
        assert client.zcard(REV.key("sid")) == 250


class _AckedMeanwhile:
    """A client on which the pending entries XINFO reported were acknowledged before XPENDING."""

    def __init__(self) -> None:
        self.trimmed: list[str] = []

    def xinfo_groups(self, stream: str) -> list[dict[str, object]]:
        return [{"name": b"workers", "pending": 3, "last-delivered-id": b"9-0", "lag": 0}]

    def xpending(self, stream: str, group: object) -> dict[str, object]:
        return {"pending": 0, "min": None, "max": None, "consumers": []}

    def xtrim(
        self, stream: str, minid: str | None = None, maxlen: int | None = None, **_: object
    ) -> int:
        if minid is not None:
            self.trimmed.append(minid)
        return 0

    def xlen(self, stream: str) -> int:
        return 0


def test_inbound_trim_survives_entries_acknowledged_meanwhile() -> None:
    worker = Worker(feed_settings("redis://127.0.0.1:1/0"), WorkerOptions(consumer="w"))
    worker.client.close()
    fake = _AckedMeanwhile()
    worker.chores.client = fake  # type: ignore[assignment]
    worker.chores.trim_intakes()  # raised AttributeError (stream_id(None)), stopping it
    assert fake.trimmed == ["9-0", "9-0", "9-0"]  # the trusted, the forwarded, the idp intake


def _held_by(client: Any, consumer: str, sid: str) -> str:
    """An event delivered to ``consumer`` and never acknowledged (it died holding it)."""
    entry = client.xadd(EVENTS, {"type": "session.revoke", "sid": sid}).decode()
    client.xreadgroup("workers", consumer, {EVENTS: ">"})
    return str(entry)


def _consumers(client: Any) -> dict[str, int]:
    return {
        c["name"].decode(): int(c["pending"]) for c in client.xinfo_consumers(EVENTS, "workers")
    }


def test_a_consumer_without_a_heartbeat_is_dead_and_its_entries_are_claimed_at_once(
    redis_url: str,
) -> None:
    settings = feed_settings(redis_url)
    with raw_client(redis_url) as client:
        client.xgroup_create(EVENTS, "workers", id="0", mkstream=True)
        _held_by(client, "w-dead", "S-dead")
        client.set(REV.key("worker:w-alive"), "1", px=60_000)  # alive: its heartbeat is fresh
        _held_by(client, "w-alive", "S-alive")
        with running_worker(settings, claim_idle=600.0, heartbeat=0.1, housekeeping=0.2) as rw:
            wait_for(lambda: client.zscore(REV.key("sid"), "S-dead"), "the dead one's entry")
            claimed = rw.worker.metrics.registry.get_sample_value(
                "sessionsvc_worker_claimed_total", {"reason": "dead"}
            )
            assert claimed == 1
            wait_for(lambda: "w-dead" not in _consumers(client), "the dead consumer forgotten")
            assert client.zscore(REV.key("sid"), "S-alive") is None  # never taken from the living
            assert _consumers(client)["w-alive"] == 1


def test_a_worker_beats_before_its_first_read(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = feed_settings(redis_url)
    seen: list[bool] = []
    real_read = IntakeReader.read

    def read(reader: IntakeReader) -> Any:
        if not seen:
            seen.append(bool(reader.client.exists(REV.key("worker:w-new"))))
        return real_read(reader)

    monkeypatch.setattr(IntakeReader, "read", read)
    with running_worker(settings, "w-new"):
        wait_for(lambda: seen, "the first read")
    assert seen == [True]  # so no other worker can take a starting one for dead


def test_the_inbound_lag_reaches_the_metric_and_every_validator(redis_url: str) -> None:
    settings = feed_settings(redis_url)
    with raw_client(redis_url) as client:
        client.xgroup_create(EVENTS, "workers", id="0", mkstream=True)
        client.set(REV.key("worker:w-stuck"), "1", px=60_000)  # alive but not applying
        entry = _held_by(client, "w-stuck", "S-waiting")
        since = int(entry.split("-")[0]) / 1000
        with (
            following(settings) as v,
            running_worker(settings, claim_idle=600.0, housekeeping=0.1) as rw,
        ):
            gauge = "sessionsvc_worker_inbound_lag_seconds"
            wait_for(
                lambda: (rw.worker.metrics.registry.get_sample_value(gauge) or 0) > 0,
                "the lag gauge",
            )

            def waiting() -> list[str]:  # the report (written after the gauge) names it
                raw = client.get(REV.key("inbound"))
                fields = raw.decode().split() if raw else []
                return fields if len(fields) == 2 and fields[1] != "-" else []

            report = wait_for(waiting, "the report")
            assert float(report[1]) == pytest.approx(since, abs=0.002)
            wait_for(lambda: (v.health()["inbound_lag_seconds"] or 0) > 0, "the validator", 15)
            assert v.health()["inbound_report_age_seconds"] is not None
            client.xack(EVENTS, "workers", entry)  # applied after all
            wait_for(lambda: rw.worker.metrics.registry.get_sample_value(gauge) == 0, "no lag")


def test_two_workers_failing_over_one_dead_consumer_take_each_entry_once(redis_url: str) -> None:
    settings = feed_settings(redis_url)
    with raw_client(redis_url) as client:
        client.xgroup_create(EVENTS, "workers", id="0", mkstream=True)
        ids = [client.xadd(EVENTS, {"type": "session.revoke", "sid": f"S-{i}"}) for i in range(3)]
        client.xreadgroup("workers", "dead", {EVENTS: ">"})
        for _ in range(5):  # delivered 6 times: hopeless; idle for a minute
            client.xclaim(EVENTS, "workers", "dead", 0, ids, idle=60_000)
        workers = [Worker(settings, WorkerOptions(consumer=f"w{i}")) for i in (1, 2)]
        try:
            for w in workers:
                w.reader.ensure_groups()
                w.scripts.load_all()
            rows = workers[0].reader.pending(EVENTS, consumer="dead")
            for w in workers:  # both saw the same rows before either claimed
                w.recover(EVENTS, rows, int(w.options.heartbeat_ttl * 1000), "dead")
        finally:
            for w in workers:
                w.reader.close()
                w.client.close()
        assert len(dead_letters(client)) == 3  # once each, not twice


def test_a_dead_consumer_is_forgotten_only_while_it_holds_nothing(redis_url: str) -> None:
    settings = feed_settings(redis_url)
    with raw_client(redis_url) as client:
        client.xgroup_create(EVENTS, "workers", id="0", mkstream=True)
        _held_by(client, "w-gone", "S-1")
        worker = Worker(settings, WorkerOptions(consumer="w-live", claim_idle=600.0))
        try:
            worker.reader.ensure_groups()
            worker.scripts.load_all()
            stale = [(EVENTS, "w-gone")]  # what an XINFO read just before it claimed again
            worker.chores._dead_consumers = lambda holding: [] if holding else stale  # type: ignore[method-assign]
            worker.chores.run()
            assert "w-gone" in _consumers(client)  # it holds an entry: kept, entry not lost
            client.xack(
                EVENTS,
                "workers",
                *[r["message_id"] for r in client.xpending_range(EVENTS, "workers", "-", "+", 10)],
            )
            worker.chores.run()
            assert "w-gone" not in _consumers(client)
        finally:
            worker.reader.close()
            worker.client.close()


def test_a_full_redis_can_still_prune_trim_and_beat(redis_url: str) -> None:
    """Over maxmemory Redis refuses every write that could grow it: housekeeping (which mostly
    deletes) and the heartbeat (an expiry) still run, so a full Redis works its way back."""
    settings = feed_settings(redis_url)
    with raw_client(redis_url) as client:
        pipe = client.pipeline(transaction=False)
        for n in range(5000):  # log entries far older than log_retention
            entry = {"kind": "session", "value": f"S{n}", "before": "0", "until": "1"}
            pipe.xadd(REV.log, entry, id=f"{n + 1}-0")  # type: ignore[arg-type]
        pipe.execute()
        worker = Worker(settings, WorkerOptions(consumer="hk-full"))
        try:
            worker.reader.ensure_groups()
            worker.scripts.load_all()
            worker.chores.heartbeat()
            client.config_set("maxmemory", str(client.info("memory")["used_memory"] // 2))
            with pytest.raises(redis.exceptions.OutOfMemoryError):
                client.set("anything", "x")  # full indeed
            worker.chores.heartbeat()  # an expiry: allowed
            worker.chores.prune_and_trim()
            assert client.xlen(REV.log) == 0
        finally:
            client.config_set("maxmemory", "0")
            worker.reader.close()
            worker.client.close()
