"""``Housekeeping`` against a real Redis: prune and trim the log, trim acknowledged inbound
entries (also when they are acknowledged while it looks), heartbeat."""

from __future__ import annotations

import time

import pytest
from revocation_harness import (
    REV,
    Applier,
    all_consumed,
    feed_settings,
    raw_client,
    running_worker,
    wait_for,
)

from sessionsvc import Revocation
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

    def xtrim(self, stream: str, minid: str) -> None:
        self.trimmed.append(minid)

    def xlen(self, stream: str) -> int:
        return 0


def test_inbound_trim_survives_entries_acknowledged_meanwhile() -> None:
    worker = Worker(feed_settings("redis://127.0.0.1:1/0"), WorkerOptions(consumer="w"))
    worker.client.close()
    fake = _AckedMeanwhile()
    worker.chores.client = fake  # type: ignore[assignment]
    worker.chores.trim_intakes()  # raised AttributeError (stream_id(None)), stopping it
    assert fake.trimmed == ["9-0", "9-0"]  # the trusted and the forwarded intake
