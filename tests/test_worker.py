"""The revocation worker end to end, with real redis-server processes: a raw redis client (no
sessionsvc code) publishes, the worker applies, a running Validator rejects."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis_server import RedisProcess
from revocation_harness import (
    REV,
    Tokens,
    WorkerProcess,
    all_consumed,
    claims_of,
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
    wait_subscribed,
)

from sessionsvc import SessionNotFound, SessionService, TokenRejected
from sessionsvc.revocation.replies import stream_id
from workers.core import WorkerCore
from workers.health import HealthServer, HealthState
from workers.housekeeping import Housekeeping
from workers.scripts import ScriptRunner
from workers.worker import APPLY_ATTEMPTS, Worker, WorkerOptions

pytestmark = pytest.mark.redis

EVENTS = "ss:events"
DLQ = "{ss:events}:dlq"
FORWARDED = "{ss:events}:pubsub"  # where the trusted channel's messages are forwarded
KINDS = ["session", "user", "user_before", "token", "all", "key"]


def scenario(kind: str, tokens: Tokens, now: float) -> tuple[dict[str, str], str, str]:
    """(event fields, a token it revokes, a token it leaves alone)."""
    if kind == "session":
        fields = {"type": "session.revoke", "sid": "S-1", "reason": "logout"}
        return fields, tokens.access("alice", "S-1"), tokens.access("alice", "S-2")
    if kind == "user":
        fields = {"type": "user.revoke", "sub": "alice", "reason": "password_changed"}
        return fields, tokens.access("alice", "S-1", iat=now - 5), tokens.access("bob", "S-2")
    if kind == "user_before":
        fields = {"type": "user.revoke", "sub": "alice", "before": str(int(now) - 50)}
        old, new = tokens.access("alice", "S-1", iat=now - 100), tokens.access("alice", "S-2")
        return fields, old, new
    if kind == "token":
        victim = tokens.access("alice", "S-1")
        c = claims_of(victim)
        fields = {"type": "token.revoke", "jti": c["jti"], "exp": str(c["exp"])}
        return fields, victim, tokens.access("alice", "S-1")
    if kind == "all":
        fields = {"type": "all.revoke", "before": str(int(now) - 100), "reason": "key_compromise"}
        return fields, tokens.access("alice", "S-1", iat=now - 200), tokens.access("bob", "S-2")
    fields = {"type": "key.revoke", "kid": "k-a", "source": "kms"}
    return fields, tokens.access(kid="k-a"), tokens.access(kid="k-b")


@pytest.mark.parametrize("kind", KINDS)
def test_stream_event_reaches_the_validator(redis_url: str, kind: str) -> None:
    settings = feed_settings(redis_url)
    fields, victim, bystander = scenario(kind, Tokens(settings), time.time())
    with (
        following(settings) as v,
        running_worker(settings) as rw,
        raw_client(redis_url) as client,
    ):
        assert outcome(v, victim) == outcome(v, bystander) == "ok"
        client.xadd(EVENTS, fields)  # type: ignore[arg-type]
        wait_for(lambda: outcome(v, victim) == "revoked", f"{kind} to reach the validator")
        assert outcome(v, bystander) == "ok"
        assert client.xlen("{ss:events}:dlq") == 0 and rw.alive


def test_an_event_applied_inline_is_acknowledged_while_the_worker_waits(redis_url: str) -> None:
    settings = feed_settings(redis_url)
    with running_worker(settings, block=4.0), raw_client(redis_url) as client:
        wait_for(lambda: group_info(client), "the worker's group")
        client.xadd(EVENTS, {"type": "session.revoke", "sid": "S-ack"})
        # the ack rides with the next XREADGROUP, sent at once: not after its 4 s block
        wait_for(
            lambda: group_info(client)["entries-read"] == 1 and group_info(client)["pending"] == 0,
            "the entry to be acknowledged",
            timeout=2.0,
        )
        assert client.zscore(REV.key("sid"), "S-ack") is not None


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_an_entry_that_kills_its_reader_is_dead_lettered_by_its_delivery_count(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that dies on an entry (the kernel's OOM killer raises nothing the process could
    count) and restarts under its name: the entry's deliveries are counted by XPENDING; once
    it was delivered ``max_deliveries`` times it goes to the DLQ unread, and a later event is
    applied meanwhile."""
    settings = feed_settings(redis_url)
    attempts: list[str] = []
    real_run = ScriptRunner.run

    def poisoned(runner: ScriptRunner, calls: Any) -> Any:
        if any("S-poison" in call.args for call in calls):  # the process "dies" here
            attempts.append("S-poison")
            raise SystemExit("killed")
        return real_run(runner, calls)

    monkeypatch.setattr(ScriptRunner, "run", poisoned)  # every worker, from its first read
    opts = {"claim_idle": 600.0, "max_deliveries": 3}
    with raw_client(redis_url) as client:
        client.xadd(EVENTS, {"type": "session.revoke", "sid": "S-poison"})
        for start in range(3):  # three deliveries, each ending the worker's thread
            with running_worker(settings, "w-fixed", **opts) as rw:
                wait_for(lambda n=start: len(attempts) == n + 1 and not rw.alive, "a death")
        with running_worker(settings, "w-fixed", **opts):  # restarted: the entry is hopeless
            client.xadd(EVENTS, {"type": "session.revoke", "sid": "S-after"})
            wait_for(lambda: client.zscore(REV.key("sid"), "S-after"), "a new event")
            wait_for(lambda: client.xlen(DLQ) == 1, "the dead letter")
        assert len(attempts) == 3  # never read a fourth time
        [letter] = dead_letters(client).values()
        assert ("orig:sid", "S-poison") in raw_entries(client, DLQ)[0][1]
        assert (letter["dlq:error"], letter["dlq:deliveries"]) == ("apply_failed", "4")
        assert group_info(client)["pending"] == 0


def test_a_stopping_worker_still_retries_its_batch(redis_url: str) -> None:
    worker = Worker(feed_settings(redis_url), WorkerOptions(consumer="w-stop"))
    with raw_client(redis_url) as client:
        worker.reader.ensure_groups()
        client.xadd(EVENTS, {"type": "session.revoke", "sid": "S-stop"})
        batch = (*worker.core.plan(worker.reader.read()), {})
        real_run, failures = worker.scripts.run, []

        def blip(calls: Any) -> Any:  # Redis away for two attempts (a failover, say)
            if len(failures) < 2:
                failures.append(1)
                raise redis.ConnectionError("connection reset by peer")
            return real_run(calls)

        worker.scripts.run = blip  # type: ignore[method-assign]
        worker.stop()  # SIGTERM arrived meanwhile: the batch in hand is still finished
        worker._apply_retrying(batch)  # type: ignore[arg-type]
        assert client.zscore(REV.key("sid"), "S-stop") is not None
        assert group_info(client)["pending"] == 0
    worker.client.close()


def test_an_apply_that_fails_on_a_redis_error_is_retried_at_once(redis_url: str) -> None:
    settings = feed_settings(redis_url)
    with running_worker(settings, claim_idle=600.0) as rw, raw_client(redis_url) as client:
        wait_for(lambda: group_info(client), "the worker's group")
        real_run, failures = rw.worker._inline.run, []

        def blip(calls: Any) -> Any:  # the connection drops during the first apply
            if not failures:
                failures.append(1)
                raise redis.ConnectionError("connection reset by peer")
            return real_run(calls)

        rw.worker._inline.run = blip  # type: ignore[method-assign]
        client.xadd(EVENTS, {"type": "session.revoke", "sid": "S-blip"})
        wait_for(lambda: client.zscore(REV.key("sid"), "S-blip"), "the retried apply")
        wait_for(lambda: group_info(client)["pending"] == 0, "the entry to be acknowledged")
        assert failures and rw.alive


def test_apply_retries_do_not_count_as_deliveries(redis_url: str) -> None:
    settings = feed_settings(redis_url)
    with running_worker(settings, claim_idle=600.0) as rw, raw_client(redis_url) as client:
        wait_for(lambda: group_info(client), "the worker's group")
        calls: list[int] = []

        def down(batch: Any) -> Any:  # Redis refuses every apply for a while
            calls.append(len(batch))
            raise redis.ConnectionError("connection reset by peer")

        rw.worker._inline.run = rw.worker.scripts.run = down  # type: ignore[method-assign]
        client.xadd(EVENTS, {"type": "session.revoke", "sid": "S-down"})
        wait_for(lambda: len(calls) == 1 + APPLY_ATTEMPTS, "the inline apply and the retries")
        pending: Any = client.xpending_range(EVENTS, "workers", "-", "+", 10)
        assert [p["times_delivered"] for p in pending] == [1]  # not burnt towards the DLQ
        assert client.xlen("{ss:events}:dlq") == 0 and rw.alive


@pytest.mark.parametrize("kind", KINDS)
def test_published_event_reaches_the_validator(redis_url: str, kind: str) -> None:
    settings = feed_settings(redis_url)
    fields, victim, bystander = scenario(kind, Tokens(settings), time.time())
    with (
        following(settings) as v,
        running_worker(settings, pubsub=True) as rw,
        raw_client(redis_url) as client,
    ):
        assert outcome(v, victim) == outcome(v, bystander) == "ok"
        wait_subscribed(client)
        client.publish(EVENTS, json.dumps(fields))
        wait_for(lambda: outcome(v, victim) == "revoked", f"{kind} to reach the validator")
        assert outcome(v, bystander) == "ok"
        assert client.xlen("{ss:events}:dlq") == 0 and rw.alive


@contextlib.contextmanager
def two_forwarders(redis_url: str) -> Iterator[redis.Redis]:
    """Two workers subscribed to the trusted channel, and a raw client once both listen."""
    settings = feed_settings(redis_url)
    with (
        running_worker(settings, "w1", pubsub=True),
        running_worker(settings, "w2", pubsub=True),
        raw_client(redis_url) as client,
    ):
        wait_for(lambda: client.pubsub_numsub(EVENTS)[0][1] == 2, "both forwarders")
        yield client


def test_a_message_heard_by_two_workers_is_forwarded_once(redis_url: str) -> None:
    with two_forwarders(redis_url) as client:
        client.publish(EVENTS, '{"type":"session.revoke","sid":"S-once"}')
        wait_for(lambda: client.zscore(REV.key("sid"), "S-once") is not None, "the revocation")
        wait_for(
            lambda: all_consumed(
                client, client.xinfo_stream(FORWARDED)["last-generated-id"].decode(), FORWARDED
            ),
            "the stream to be consumed",
        )
        assert client.xinfo_stream(FORWARDED)["entries-added"] == 1
        assert len([e for e in client.xrange(REV.log) if e[1][b"kind"] != b"tick"]) == 1


def test_bad_pubsub_messages_are_dead_lettered(redis_url: str) -> None:
    settings = feed_settings(redis_url)
    with running_worker(settings, pubsub=True), raw_client(redis_url) as client:
        wait_subscribed(client)
        client.publish(EVENTS, b"\xff\xfe not json")
        client.publish(EVENTS, '{"type":"session.revoke"}')
        client.publish(EVENTS, '{"type":"session.revoke","sid":"S-ok"}')  # still listening
        wait_for(lambda: client.zscore(REV.key("sid"), "S-ok") is not None, "the good message")
        wait_for(lambda: client.xlen("{ss:events}:dlq") == 2, "two dead letters")
        letters = [dict(pairs) for _, pairs in raw_entries(client, "{ss:events}:dlq")]
        assert [(d["dlq:error"], d["dlq:source"]) for d in letters] == [
            ("malformed", "pubsub"),
            ("missing_field", "pubsub"),
        ]
        assert letters[1]["message"] == '{"type":"session.revoke"}'


def test_event_for_our_session_ends_it(redis_url: str) -> None:
    settings = feed_settings(redis_url)
    with (
        SessionService(settings) as svc,
        following(settings) as v,
        running_worker(settings),
        raw_client(redis_url) as client,
    ):
        gone, kept = svc.login("alice"), svc.login("alice")
        client.xadd(EVENTS, {"type": "session.revoke", "sid": gone.session_id})
        wait_for(lambda: outcome(v, gone.access_token) == "revoked", "the revocation")
        with pytest.raises(SessionNotFound):
            svc.get_session(gone.session_id)  # the session hash went too
        with pytest.raises(TokenRejected):
            svc.refresh(gone.refresh_token)
        assert svc.get_session(kept.session_id).session_id == kept.session_id
        assert outcome(v, kept.access_token) == "ok"


def test_user_event_ends_every_session_of_the_user(redis_url: str) -> None:
    settings = feed_settings(redis_url)
    with (
        SessionService(settings) as svc,
        following(settings) as v,
        running_worker(settings),
        raw_client(redis_url) as client,
    ):
        pairs = [svc.login("alice"), svc.login("alice")]
        bob = svc.login("bob")
        client.xadd(EVENTS, {"type": "user.revoke", "sub": "alice"})
        for pair in pairs:
            wait_for(lambda p=pair: outcome(v, p.access_token) == "revoked", "the revocation")  # type: ignore[misc]
        assert svc.list_sessions("alice") == []
        assert [s.session_id for s in svc.list_sessions("bob")] == [bob.session_id]
        assert outcome(v, bob.access_token) == "ok"


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_in_app_logout_reaches_validators_without_a_worker(redis_url: str, mode: str) -> None:
    settings = feed_settings(redis_url)
    with SessionService(settings) as svc, following(settings, mode) as v:
        a, b, bob = svc.login("alice"), svc.login("alice"), svc.login("bob")
        assert {outcome(v, p.access_token) for p in (a, b, bob)} == {"ok"}
        svc.logout(a.session_id)
        wait_for(lambda: outcome(v, a.access_token) == "revoked", "the logout")
        assert outcome(v, b.access_token) == "ok"
        svc.logout_all("alice")
        wait_for(lambda: outcome(v, b.access_token) == "revoked", "the logout everywhere")
        assert outcome(v, bob.access_token) == "ok"
        with raw_client(redis_url) as client:
            assert not client.exists(EVENTS)  # the direct path: no inbound event at all


def test_dead_letters_carry_the_original_fields(redis_url: str) -> None:
    settings = feed_settings(redis_url)
    with running_worker(settings) as rw, raw_client(redis_url) as client:
        twice = client.execute_command(
            "XADD", EVENTS, "*", "type", "session.revoke", "sid", "a", "sid", "b"
        ).decode()
        unknown = client.xadd(EVENTS, {"type": "session.explode", "sid": "S"}).decode()
        good = client.xadd(EVENTS, {"type": "session.revoke", "sid": "S-ok"}).decode()
        wait_for(lambda: all_consumed(client, good), "every entry to be acknowledged")
        letters = {meta["dlq:entry"]: (meta, pairs) for meta, pairs in _dlq(client)}
        assert set(letters) == {twice, unknown}
        meta, original = letters[twice]
        assert original == [("type", "session.revoke"), ("sid", "a"), ("sid", "b")]
        assert (meta["dlq:error"], meta["dlq:deliveries"], meta["dlq:consumer"]) == (
            "malformed",
            "1",
            "w1",
        )
        assert "sid" in meta["dlq:detail"] and float(meta["dlq:at"]) > 0
        meta, original = letters[unknown]
        assert meta["dlq:error"] == "unknown_type"
        assert original == [("type", "session.explode"), ("sid", "S")]
        assert client.zscore(REV.key("sid"), "S-ok") is not None and rw.alive


def test_a_dead_letter_the_dlq_refused_is_not_acknowledged(redis_url: str) -> None:
    worker = Worker(feed_settings(redis_url), WorkerOptions(consumer="w-oom"))
    with raw_client(redis_url) as client:
        worker.reader.ensure_groups()
        bad = client.xadd(EVENTS, {"type": "session.explode"}).decode()
        entries = worker.reader.read()
        client.config_set("maxmemory", "1")  # noeviction: Redis refuses every write that grows
        try:
            with pytest.raises(redis.ResponseError):
                worker.process(entries)
        finally:
            client.config_set("maxmemory", "0")
        assert group_info(client)["pending"] == 1 and not _dlq(client)  # kept, not lost
        worker.process(entries)  # Redis takes it now
        assert group_info(client)["pending"] == 0
        assert [meta["dlq:entry"] for meta, _ in _dlq(client)] == [bad]
    worker.client.close()


def test_a_dead_letter_retried_after_a_failed_round_trip_is_written_once(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = Worker(feed_settings(redis_url), WorkerOptions(consumer="w-dup"))
    with raw_client(redis_url) as client:
        worker.reader.ensure_groups()
        client.xadd(EVENTS, {"type": "session.explode"})
        batch = (*worker.core.plan(worker.reader.read()), {})
        real_execute, lost = redis.client.Pipeline.execute, []

        def reply_lost(pipe: Any, *args: Any, **kwargs: Any) -> Any:
            if not lost:  # the first round trip: Redis never sees it, the reply never comes
                lost.append(1)
                pipe.reset()
                raise redis.ConnectionError("connection reset by peer")
            return real_execute(pipe, *args, **kwargs)

        monkeypatch.setattr(redis.client.Pipeline, "execute", reply_lost)
        worker._apply_retrying(batch)  # type: ignore[arg-type]
        assert lost and len(_dlq(client)) == 1 and group_info(client)["pending"] == 0
    worker.client.close()


def _dlq(client: redis.Redis) -> list[tuple[dict[str, str], list[tuple[str, str]]]]:
    out = []
    for _id, pairs in raw_entries(client, "{ss:events}:dlq"):
        meta = {k: v for k, v in pairs if k.startswith("dlq:")}
        out.append(
            (meta, [(k.removeprefix("orig:"), v) for k, v in pairs if k.startswith("orig:")])
        )
    return out


def test_an_entry_that_keeps_failing_goes_to_the_dlq(redis_url: str) -> None:
    settings = feed_settings(redis_url)
    with raw_client(redis_url) as client:
        client.set(REV.key("jti"), "not a sorted set")  # every token revocation now fails
        with running_worker(settings, claim_idle=0.05, housekeeping=0.05, max_deliveries=2) as rw:
            failing = client.xadd(EVENTS, {"type": "token.revoke", "jti": "J1"}).decode()
            fine = client.xadd(EVENTS, {"type": "session.revoke", "sid": "S1"}).decode()
            wait_for(lambda: failing in dead_letters(client), "the failing entry in the DLQ")
            meta = dead_letters(client)[failing]
            assert (meta["dlq:error"], meta["dlq:deliveries"]) == ("apply_failed", "3")
            wait_for(lambda: all_consumed(client, fine), "every entry to be acknowledged")
            assert client.zscore(REV.key("sid"), "S1") is not None
            assert rw.alive


def test_a_publisher_over_its_budget_is_dead_lettered_and_starves_no_one(redis_url: str) -> None:
    """A publisher whose revocations in force reach ``max_revocations`` gets the next one
    refused (``over_capacity``, dead-lettered, counted), logouts included; what it planted
    still applies again; the operators' intake and another publisher are not affected."""
    settings = feed_settings(
        redis_url,
        max_revocations=1000,
        publishers={"flood": ["token.revoke", "session.revoke"], "idp": ["token.revoke"]},
    )
    flood, idp = "{ss:events}:flood", "{ss:events}:idp"
    with raw_client(redis_url) as client, SessionService(settings) as svc:
        sid = svc.login("alice").session_id
        with running_worker(settings) as rw:
            pipe = client.pipeline(transaction=False)
            for i in range(1000):
                pipe.xadd(flood, {"type": "token.revoke", "jti": f"J{i}"})
            last = pipe.execute()[-1].decode()
            wait_for(lambda: all_consumed(client, last, flood), "the flood applied")
            over = client.xadd(flood, {"type": "token.revoke", "jti": "J-new"}).decode()
            again = client.xadd(flood, {"type": "token.revoke", "jti": "J7"}).decode()
            logout = client.xadd(flood, {"type": "session.revoke", "sid": sid}).decode()
            operator = client.xadd(EVENTS, {"type": "token.revoke", "jti": "J-op"}).decode()
            other = client.xadd(idp, {"type": "token.revoke", "jti": "J-idp"}).decode()
            wait_for(lambda: all_consumed(client, logout, flood), "the publisher's events")
            wait_for(lambda: all_consumed(client, operator), "the operator's event")
            wait_for(lambda: all_consumed(client, other, idp), "the other publisher's event")
            letters = dead_letters(client)
            assert set(letters) == {over, logout}
            assert {m["dlq:error"] for m in letters.values()} == {"over_capacity"}
            assert "1000" in letters[over]["dlq:detail"]
            assert client.zscore(REV.key("jti"), "J-new") is None and again not in letters
            assert client.zscore(REV.key("jti"), "J-op") is not None  # operators: never capped
            assert client.zscore(REV.key("jti"), "J-idp") is not None  # another budget
            assert [s.session_id for s in svc.list_sessions("alice")] == [sid]  # refused whole
            value = rw.worker.metrics.registry.get_sample_value
            labels = {"type": "token.revoke", "result": "over_capacity"}
            assert value("sessionsvc_worker_events_total", labels) == 1
            assert value("sessionsvc_worker_dead_letters_total", {"code": "over_capacity"}) == 2
            assert rw.alive


def test_sigterm_finishes_the_batch_acks_and_exits_0(redis_url: str, tmp_path: Path) -> None:
    settings = feed_settings(redis_url)
    proc = WorkerProcess(settings, tmp_path, "w-term", "--batch", "50")
    stop = threading.Event()
    sent: list[tuple[str, str]] = []

    def produce() -> None:  # keeps publishing until the worker is gone: SIGTERM mid-stream
        with raw_client(redis_url) as c:
            while not stop.is_set():
                pipe = c.pipeline(transaction=False)
                sids = [f"T{len(sent) + n}" for n in range(20)]
                for sid in sids:
                    pipe.xadd(EVENTS, {"type": "session.revoke", "sid": sid})
                sent.extend(zip([i.decode() for i in pipe.execute()], sids, strict=True))

    producer = threading.Thread(target=produce, daemon=True)
    try:
        with raw_client(redis_url) as client:
            wait_for(lambda: proc.running() and group_info(client), "the worker's group")
            producer.start()
            wait_for(
                lambda: proc.running() and client.zcard(REV.key("sid")) >= 500,
                "the worker to be busy",
            )
            proc.signal(signal.SIGTERM)
            assert proc.wait() == 0, proc.stderr[-2000:]
            stop.set()
            producer.join()
            group = group_info(client)
            assert int(group["pending"]) == 0  # every entry delivered to it was acknowledged
            last = stream_id(group["last-delivered-id"])
            delivered = [sid for entry_id, sid in sent if stream_id(entry_id) <= last]
            pipe = client.pipeline(transaction=False)
            for sid in delivered:
                pipe.zscore(REV.key("sid"), sid)
            assert None not in pipe.execute()  # ... and applied
            assert len(delivered) < len(sent)  # it stopped mid-stream
            assert "worker_stopped" in proc.stderr
    finally:
        stop.set()
        if producer.is_alive():
            producer.join()
        proc.close()


def test_health_and_metrics_endpoints(redis_url: str, tmp_path: Path) -> None:
    settings = feed_settings(redis_url)
    proc = WorkerProcess(settings, tmp_path, "w-http", "--metrics-port", "0")
    try:
        base = f"http://127.0.0.1:{proc.metrics_port()}"
        wait_for(lambda: http_get(f"{base}/readyz") == (200, "ready\n"), "/readyz")
        assert http_get(f"{base}/healthz") == (200, "ok\n")
        assert http_get(f"{base}/nope")[0] == 404
        with raw_client(redis_url) as client:
            client.xadd(EVENTS, {"type": "session.revoke", "sid": "S1"})
            client.xadd(EVENTS, {"type": "session.revoke"})
        applied = 'sessionsvc_worker_events_total{result="applied",type="session.revoke"} 1.0'
        dead = 'sessionsvc_worker_events_total{result="dead_letter",type="invalid"} 1.0'
        # the two entries may come in one batch or two: wait for both counters
        wait_for(lambda: applied in http_get(f"{base}/metrics")[1], "the applied counter")
        wait_for(lambda: dead in http_get(f"{base}/metrics")[1], "the dead-letter counter")
        status, text = http_get(f"{base}/metrics")
        assert status == 200
        for name in ("apply_seconds_bucket", "pending", "lag", "dlq_size", "redis_errors_total"):
            assert f"sessionsvc_worker_{name}" in text
        proc.signal(signal.SIGTERM)
        assert proc.wait() == 0
    finally:
        proc.close()


def test_worker_started_before_redis_applies_once_it_is_up(tmp_path: Path) -> None:
    server = RedisProcess(tmp_path)  # not started yet
    settings = feed_settings(server.url, redis_connect_timeout=0.2)
    try:
        with running_worker(settings) as rw:
            registry = rw.worker.metrics.registry
            wait_for(
                lambda: (
                    (registry.get_sample_value("sessionsvc_worker_redis_errors_total") or 0) >= 2
                ),
                "the worker to retry",
            )
            assert not rw.worker.health.ready
            server.start()
            with raw_client(server.url) as client:
                client.xadd(EVENTS, {"type": "session.revoke", "sid": "S-early"})
                wait_for(lambda: client.zscore(REV.key("sid"), "S-early"), "the revocation")
            # every chore that failed while Redis was away (housekeeping, ticks) must run once
            wait_for(lambda: rw.worker.health.ready, "ready again")
            assert rw.alive
    finally:
        server.stop()


def test_liveness_holds_while_redis_is_away(tmp_path: Path) -> None:
    """/healthz is about the loop, /readyz about Redis: an outage must not fail liveness (a
    liveness failure restarts the worker, which cannot help)."""
    server = RedisProcess(tmp_path)  # never started
    settings = feed_settings(server.url, redis_connect_timeout=0.2)
    health = HealthState(max_silence=0.2)
    with running_worker(settings, health=health) as rw:
        registry = rw.worker.metrics.registry
        wait_for(  # 50+100+200+400 ms of backoff: longer than max_silence
            lambda: (registry.get_sample_value("sessionsvc_worker_redis_errors_total") or 0) >= 5,
            "the worker to retry",
        )
        assert health.alive() and not health.ready


def test_the_probes_tell_a_wedged_chore_from_an_outage(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Housekeeping that fails while Redis answers is a wedge: /readyz at once, /healthz after
    ``max_silence`` (a restart is the remedy), both saying why; it recovers when the chore
    does. (An outage fails readiness only: test_liveness_holds_while_redis_is_away.)"""
    settings = feed_settings(redis_url)
    broken = [True]
    real_run = Housekeeping.run

    def run(chores: Housekeeping) -> None:
        if broken[0]:
            raise redis.ResponseError("ERR wedged")  # e.g. a reply it cannot take, every time
        real_run(chores)

    monkeypatch.setattr(Housekeeping, "run", run)
    health = HealthState(max_silence=0.5)
    with running_worker(settings, health=health, housekeeping=0.05, heartbeat=0.05) as rw:
        server = HealthServer(health, rw.worker.metrics.registry, "127.0.0.1", 0).start()
        try:
            base = f"http://127.0.0.1:{server.port}"
            wait_for(lambda: http_get(f"{base}/healthz")[0] == 503, "liveness to fail")
            body = http_get(f"{base}/healthz")[1]
            assert body.startswith("stalled: housekeeping failing for") and "ResponseError" in body
            assert http_get(f"{base}/readyz")[0] == 503
            up = http_get(f"{base}/metrics")[1]
            assert 'sessionsvc_worker_up{probe="live"} 0.0' in up
            broken[0] = False
            wait_for(lambda: http_get(f"{base}/readyz") == (200, "ready\n"), "the recovery")
            assert http_get(f"{base}/healthz") == (200, "ok\n")
        finally:
            server.close()


def test_a_reconnect_does_not_claim_the_entries_in_hand_again(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a Redis error the worker redoes its set-up (groups, scripts, heartbeat) but not the
    claim of its own pending entries, which only a restart does: each claim is a delivery, and a
    Redis that flaps must not push valid revocations into the DLQ."""
    settings = feed_settings(redis_url)
    real_run = ScriptRunner.run

    def poisoned(runner: ScriptRunner, calls: Any) -> Any:
        if any("S-held" in call.args for call in calls):  # stays pending, on this worker
            return [redis.ResponseError("ERR poisoned")] * len(calls)
        return real_run(runner, calls)

    monkeypatch.setattr(ScriptRunner, "run", poisoned)
    with running_worker(settings, "w-flap", claim_idle=600.0) as rw, raw_client(redis_url) as c:
        held = c.xadd(EVENTS, {"type": "session.revoke", "sid": "S-held"})
        wait_for(lambda: group_info(c) and int(group_info(c)["pending"]) == 1, "the held entry")
        errors = "sessionsvc_worker_redis_errors_total"
        for _ in range(3):  # three connection losses of the reading connection
            before = rw.worker.metrics.registry.get_sample_value(errors)

            def lost(b: Any = before) -> bool:  # kill until the reader noticed one
                for client in c.client_list():
                    if client["name"] == "sessionsvc-worker:w-flap":
                        c.client_kill_filter(_id=client["id"])
                return rw.worker.metrics.registry.get_sample_value(errors) != b

            wait_for(lost, "the error")
            wait_for(lambda: rw.worker.health.started, "the set-up done again")
        c.xadd(EVENTS, {"type": "session.revoke", "sid": "S-after"})
        wait_for(lambda: c.zscore(REV.key("sid"), "S-after"), "the worker reading again")
        rows: Any = c.xpending_range(EVENTS, "workers", held, held, 1)
        assert [r["times_delivered"] for r in rows] == [1]  # not claimed again


class _Killed(BaseException):
    """What an OOM kill is to the process: nothing it could catch and count."""


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_an_entry_that_kills_its_reader_takes_no_other_entry_with_it(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entries redelivered after a death are claimed and applied one at a time: the good ones
    delivered in the same batch as the killer are applied, only the killer is dead-lettered."""
    settings = feed_settings(redis_url)
    real_judge = WorkerCore.judge

    def judge(core: WorkerCore, entry: Any) -> Any:
        event = real_judge(core, entry)
        if getattr(event, "jti", None) == "POISON":
            raise _Killed
        return event

    monkeypatch.setattr(WorkerCore, "judge", judge)
    with raw_client(redis_url) as client:
        client.xgroup_create(EVENTS, "workers", id="0", mkstream=True)
        for i in range(5):
            client.xadd(EVENTS, {"type": "token.revoke", "jti": f"good-{i}"})
        client.xadd(EVENTS, {"type": "token.revoke", "jti": "POISON"})
        for n in range(8):  # each worker dies, the next takes over once its heartbeat lapsed
            with running_worker(settings, f"w{n}", heartbeat=0.2) as rw:
                wait_for(lambda w=rw: not w.alive or client.xlen(DLQ) == 1, "a death or the DLQ")
                if rw.alive:
                    break
            wait_for(lambda m=n: not client.exists(REV.key(f"worker:w{m}")), "the heartbeat gone")
        assert all(client.zscore(REV.key("jti"), f"good-{i}") for i in range(5))
        [letter] = dead_letters(client).values()
        assert letter["dlq:error"] == "apply_failed"
        assert ("orig:jti", "POISON") in raw_entries(client, DLQ)[0][1]


def test_applies_that_all_fail_make_the_worker_unready(redis_url: str) -> None:
    """Every apply failing (here the log's ids are exhausted, which a compromised app node can
    do) while Redis answers: not ready at once, not alive after max_silence."""
    settings = feed_settings(redis_url)
    health = HealthState(max_silence=0.5)
    with raw_client(redis_url) as client, running_worker(settings, health=health) as rw:
        wait_for(lambda: health.ready, "the worker ready")
        client.execute_command(
            "XADD", REV.log, "18446744073709551615-18446744073709551615", "x", "y"
        )
        client.xadd(EVENTS, {"type": "token.revoke", "jti": "J"})
        wait_for(lambda: not health.ready, "readiness to fail")
        assert any("apply failing" in p for p in health.readiness_problems())
        wait_for(lambda: not health.alive(), "liveness to fail")
        assert rw.alive


def test_a_busy_worker_keeps_its_heartbeat(redis_url: str) -> None:
    """A reader thread busy for longer than a heartbeat's lifetime (a slow apply, a stall) is
    not taken for dead: the heartbeat has a thread of its own."""
    settings = feed_settings(redis_url)
    with (
        raw_client(redis_url) as client,
        running_worker(settings, "w-slow", heartbeat=0.1) as slow,
    ):
        real_run = slow.worker._inline.run

        def crawl(calls: Any) -> Any:
            time.sleep(1.5)  # five heartbeat lifetimes
            return real_run(calls)

        slow.worker._inline.run = crawl  # type: ignore[method-assign]
        wait_for(lambda: group_info(client), "the group")
        with running_worker(settings, "w-peer", heartbeat=0.1) as peer:
            client.xadd(EVENTS, {"type": "token.revoke", "jti": "J-slow"})
            wait_for(lambda: client.zscore(REV.key("jti"), "J-slow"), "the slow apply")
            claimed = peer.worker.metrics.registry.get_sample_value(
                "sessionsvc_worker_claimed_total", {"reason": "dead"}
            )
            assert not claimed


def test_a_bad_message_heard_by_two_workers_is_dead_lettered_once(redis_url: str) -> None:
    with two_forwarders(redis_url) as client:
        client.publish(EVENTS, "not json")
        wait_for(lambda: client.xlen(DLQ) == 1, "the dead letter")
        time.sleep(0.3)  # the other worker has heard it by now
        assert client.xlen(DLQ) == 1


def test_a_huge_message_on_one_channel_costs_only_that_channel(redis_url: str) -> None:
    """Redis drops a subscriber whose output buffer overflows (here a 40 MB PUBLISH): every
    channel has a subscription of its own, so the others go on forwarding."""
    settings = feed_settings(redis_url, publishers={"noisy": ["session.revoke"]})
    with running_worker(settings, pubsub=True), raw_client(redis_url) as client:
        noisy = "{ss:events}:noisy"
        wait_for(lambda: client.pubsub_numsub(noisy)[0][1] == 1, "subscribed")
        wait_for(lambda: client.pubsub_numsub(EVENTS)[0][1] == 1, "subscribed")
        for n in range(5):
            client.publish(noisy, "x" * (40 << 20))
            client.publish(EVENTS, json.dumps({"type": "session.revoke", "sid": f"S-{n}"}))
        for n in range(5):
            wait_for(lambda m=n: client.zscore(REV.key("sid"), f"S-{m}"), "the other channel")


def test_the_dlq_keeps_its_newest_letters(redis_url: str) -> None:
    settings = feed_settings(redis_url)
    with (
        running_worker(settings, housekeeping=0.05, dlq_max_len=10) as rw,
        raw_client(redis_url) as client,
    ):
        pipe = client.pipeline(transaction=False)
        for n in range(30):
            pipe.xadd(EVENTS, {"type": "nonsense", "n": str(n)})
        last = pipe.execute()[-1].decode()
        wait_for(lambda: all_consumed(client, last), "every entry consumed")
        wait_for(lambda: client.xlen(DLQ) == 10, "the DLQ trimmed")
        newest = raw_entries(client, DLQ)[-1][1]
        assert ("orig:n", "29") in newest
        trimmed = rw.worker.metrics.registry.get_sample_value("sessionsvc_worker_dlq_trimmed_total")
        assert trimmed and trimmed <= 20  # what housekeeping trimmed (XADD trims whole nodes too)


def test_a_revocation_expired_before_it_is_applied_writes_nothing(redis_url: str) -> None:
    """``token.revoke exp=1`` can reject no valid token: acknowledged, counted, and neither the
    state, nor the log, nor any validator gets an entry."""
    settings = feed_settings(redis_url)
    with running_worker(settings) as rw, raw_client(redis_url) as client:
        last = client.xadd(EVENTS, {"type": "token.revoke", "jti": "J-old", "exp": "1"}).decode()
        wait_for(lambda: all_consumed(client, last), "the entry acknowledged")
        assert not client.exists(REV.log) and client.zscore(REV.key("jti"), "J-old") is None
        assert client.xlen(DLQ) == 0
        labels = {"type": "token.revoke", "result": "expired"}
        assert (
            rw.worker.metrics.registry.get_sample_value("sessionsvc_worker_events_total", labels)
            == 1
        )


def test_a_publisher_is_read_at_its_rate_and_holds_back_no_one(redis_url: str) -> None:
    settings = feed_settings(redis_url, publishers={"flood": ["session.revoke"]})
    with running_worker(settings, publisher_rate=50) as rw, raw_client(redis_url) as client:
        wait_for(lambda: group_info(client), "the group")
        pipe = client.pipeline(transaction=False)
        for n in range(2000):
            pipe.xadd("{ss:events}:flood", {"type": "session.revoke", "sid": f"F{n}"})
        started = time.monotonic()
        pipe.execute()
        client.xadd(EVENTS, {"type": "session.revoke", "sid": "S-op"})
        wait_for(lambda: client.zscore(REV.key("sid"), "S-op"), "the operator's event")
        applied = sum(client.zscore(REV.key("sid"), f"F{n}") is not None for n in range(2000))
        # one read's worth (--batch 500) plus what the rate refilled meanwhile; the rest waits
        # in its own stream
        assert applied <= 500 + 50 * (time.monotonic() - started) + 1
        assert rw.alive
