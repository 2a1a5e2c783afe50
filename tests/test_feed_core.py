"""FeedCore, the validator feed's pure state machine: snapshot union, re-bootstrap decisions, bad
log entries, listeners, freshness, stall detection. No redis-server: snapshots are the replies of
the core's own ``snapshot_commands`` run against an in-process fakeredis."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
import redis

from sessionsvc import Revocation, RevocationView
from sessionsvc.revocation.feed_core import STALL, FeedCore
from sessionsvc.revocation.log import RevKeys
from sessionsvc.revocation.replies import stream_id

NOW = 1_800_000_000.0
K = RevKeys()


@pytest.fixture
def state() -> Iterator[fakeredis.FakeRedis]:
    """What Redis holds: write it with plain commands, then ``load`` it."""
    client = fakeredis.FakeRedis()
    yield client
    client.close()


def core(view: RevocationView | None = None, **kw: Any) -> FeedCore:
    return FeedCore(view if view is not None else RevocationView(), K, 15.0, **kw)


def load(c: FeedCore, state: fakeredis.FakeRedis, now: float = NOW) -> int:
    """One bootstrap: the snapshot transaction and ``load_snapshot`` of its replies."""
    pipe = state.pipeline(transaction=True)
    for command in c.snapshot_commands(now, "E-new"):
        pipe.execute_command(*command)
    return c.load_snapshot(pipe.execute(), now)


def fill(state: fakeredis.FakeRedis) -> None:
    state.set(K.epoch, "E1")
    state.zadd(K.key("sid"), {"S1": NOW + 600, "S-forever": math.inf})
    state.zadd(K.key("jti"), {"J1": NOW + 8 * 86400})  # beyond the horizon: read with its score
    state.hset(K.key("user"), "alice", "1000.5")
    state.zadd(K.key("user:until"), {"alice": NOW + 600})
    state.hset(K.key("all"), mapping={"before": "900", "until": str(NOW + 600)})
    state.sadd(K.key("kid"), "k1")
    state.xadd(K.log, {"kind": "key", "value": "k1"}, id="5-0")


def test_snapshot_loads_every_kind(state: fakeredis.FakeRedis) -> None:
    fill(state)
    c = core()
    assert load(c, state) == 6  # new entries: 2 sessions, a token, a user, all, a key
    view = c.view
    assert "S1" in view.sessions and "S-forever" in view.sessions
    assert "J1" in view.tokens and "k1" in view.keys
    assert view.users["alice"] == (1000.5, NOW + 600)
    assert view.global_before == (900.0, NOW + 600)
    assert view.check("S1", "j", "u", 2000, "k") == "session"
    assert view.check("s", "J1", "u", 2000, "k") == "token"
    assert view.check("s", "j", "alice", 1000, "k") == "user"
    assert view.check("s", "j", "alice", 1001, "k") is None
    assert view.check("s", "j", "bob", 899, "k") == "all"
    assert view.check("s", "j", "bob", 2000, "k1") == "key"
    assert (c.epoch, c.last_id, c.bootstraps) == ("E1", "5-0", 1)


def test_ids_are_kept_at_least_until_their_until(state: fakeredis.FakeRedis) -> None:
    fill(state)
    c = core()
    load(c, state)
    c.view.prune(NOW + 599)
    assert "S1" in c.view.sessions and "S-forever" in c.view.sessions
    c.view.prune(NOW + 9 * 86400)
    assert "S1" not in c.view.sessions and "J1" not in c.view.tokens
    assert "S-forever" in c.view.sessions  # until = inf


def test_first_snapshot_sets_the_epoch(state: fakeredis.FakeRedis) -> None:
    c = core()
    assert load(c, state) == 0
    assert (c.epoch, c.last_id) == ("E-new", "0-0")
    assert state.get(K.epoch) == b"E-new"  # SET NX inside the snapshot transaction


def test_user_without_until_is_kept_forever(state: fakeredis.FakeRedis) -> None:
    state.hset(K.key("user"), "bob", "10")
    c = core()
    load(c, state)
    assert c.view.users["bob"] == (10.0, math.inf)


def test_snapshot_is_a_union_and_never_forgets(state: fakeredis.FakeRedis) -> None:
    view = RevocationView()
    view.apply(Revocation("session", "old", until=NOW + 5000))
    view.apply(Revocation("user", "u", before=50.0))
    view.apply(Revocation("key", "k-old"))
    heard: list[Revocation] = []
    c = core(view, listeners=[heard.append])
    # Redis lost its data: it now holds a new entry, a shorter "old" and an older "u"
    state.zadd(K.key("sid"), {"old": NOW + 10, "new": NOW + 7000})
    state.hset(K.key("user"), "u", "20")
    assert load(c, state) == 1
    assert [(r.kind, r.value) for r in heard] == [("session", "new")]
    assert "old" in view.sessions and "new" in view.sessions
    view.prune(NOW + 4000)
    assert "old" in view.sessions  # still kept until NOW + 5000, not NOW + 10
    assert view.users["u"][0] == 50.0 and "k-old" in view.keys


def test_reloading_the_same_snapshot_changes_nothing(state: fakeredis.FakeRedis) -> None:
    fill(state)
    c = core()
    load(c, state)
    generation = c.view.generation
    assert load(c, state) == 0
    assert c.view.generation == generation and c.bootstraps == 2


def test_a_log_trimmed_empty_resumes_after_the_trim(state: fakeredis.FakeRedis) -> None:
    state.set(K.epoch, "E1")
    state.set(K.trimmed, "9-3")
    c = core()
    load(c, state)
    assert c.last_id == "9-3"
    assert not c.needs_bootstrap([b"E1", b"9-3", b"9-3"])


def test_first_position_always_bootstraps() -> None:
    assert core().needs_bootstrap([b"E1", b"5-0", b"0-0"])


@pytest.mark.parametrize(
    ("position", "expected"),
    [
        ([b"E1", b"5-0", b"0-0"], False),  # nothing changed
        ([b"E1", b"9-3", b"0-0"], False),  # new entries after ours: just tail
        ([b"E1", b"9-3", b"5-0"], False),  # trimmed up to exactly what we have seen
        ([b"E1", b"9-3", b"4-9"], False),
        ([b"E2", b"5-0", b"0-0"], True),  # another epoch: Redis lost data or failed over
        ([None, b"5-0", b"0-0"], True),  # no epoch at all: Redis restarted empty
        ([None, b"0-0", b"0-0"], True),
        ([b"E1", b"9-3", b"5-1"], True),  # trimmed past our position
        ([b"E1", b"4-0", b"0-0"], True),  # Redis is behind us: it lost entries we saw
        ([b"E1", b"5-0", b"10-0"], True),  # ids compare as numbers: 10-0 > 5-0
    ],
)
def test_needs_bootstrap(position: list[Any], expected: bool) -> None:
    c = core()
    c.epoch, c.last_id = "E1", "5-0"
    assert c.needs_bootstrap(position) is expected


def test_ids_compare_numerically() -> None:
    c = core()
    c.epoch, c.last_id = "E1", "9-5"
    assert c.needs_bootstrap([b"E1", b"20-0", b"10-0"])  # "10-0" < "9-5" as text, not as ids
    assert not c.needs_bootstrap([b"E1", b"20-0", b"9-4"])
    assert c.needs_bootstrap([b"E1", b"9-4", b"0-0"])  # behind us by one sequence number
    assert stream_id("1700000000000-12") == (1700000000000, 12)
    assert stream_id(b"7") == (7, 0)


def entry(kind: str, value: str, **extra: str) -> list[tuple[bytes, bytes]]:
    fields = {"kind": kind, "value": value, "before": "0", "until": "inf", **extra}
    return [(k.encode(), v.encode()) for k, v in fields.items()]


def test_tailed_entries_apply_in_order_and_advance_the_position() -> None:
    c = core()
    applied = c.apply_entries([("1-0", entry("session", "S1")), ("2-0", entry("key", "k1"))])
    assert applied == [Revocation("session", "S1"), Revocation("key", "k1")]
    assert (c.last_id, c.applied, c.bad_entries) == ("2-0", 2, 0)
    assert c.view.check("S1", "j", "u", 0, "k") == "session"


def test_bad_log_entries_are_counted_not_fatal() -> None:
    heard: list[Revocation] = []
    c = core(listeners=[heard.append])
    entries = [
        ("1-0", entry("session", "S1")),
        ("2-0", [(b"kind", b"bogus"), (b"value", b"x")]),
        ("3-0", entry("session", "S2", until="soon")),
        ("4-0", []),
        ("5-0", entry("all", "not-empty")),
        ("6-0", entry("token", "J1")),
    ]
    applied = c.apply_entries(entries)
    assert applied == [Revocation("session", "S1"), Revocation("token", "J1")] == heard
    assert (c.bad_entries, c.applied, c.last_id) == (4, 2, "6-0")  # skipped, never re-read


def test_listener_errors_are_counted_and_the_others_still_run(
    state: fakeredis.FakeRedis,
) -> None:
    heard: list[Revocation] = []

    def broken(rev: Revocation) -> None:
        raise RuntimeError("listener bug")

    c = core(listeners=[broken, heard.append])
    c.apply_entries([("1-0", entry("session", "S1")), ("2-0", entry("session", "S2"))])
    assert len(heard) == 2 and c.listener_errors == 2
    assert "S1" in c.view.sessions and "S2" in c.view.sessions  # applied whatever listeners do
    state.zadd(K.key("sid"), {"S3": NOW + 60})
    load(c, state)
    assert c.listener_errors == 3 and [(r.kind, r.value) for r in heard[2:]] == [("session", "S3")]


def test_freshness_only_moves_forward() -> None:
    c = core()
    assert c.fresh_at == -math.inf and c.stale_after == -math.inf
    assert c.mark_fresh(100.0) == 115.0
    assert c.mark_fresh(90.0) == 115.0  # a read sent earlier proves nothing newer
    assert c.mark_fresh(101.5) == 116.5 and c.fresh_at == 101.5


def test_no_trim_check_while_reads_follow_each_other() -> None:
    c = core(block=1.0)
    assert c.gap_possible(100.0, 100.2, False)  # the first read: nothing known before it
    t = 100.2
    for _ in range(5):  # blocking reads, each sent right after the previous one returned
        assert not c.gap_possible(t + 0.01, t + 1.0, False)
        t += 1.0


@pytest.mark.parametrize(
    ("previous", "this", "expected"),
    [
        ((100.0, 100.5, False), (100.6, 101.0, False), False),
        ((100.0, 100.5, False), (100.5 + STALL + 1, 106.9, False), True),  # stalled between
        ((100.0, 100.5, False), (100.6, 100.6 + 1.0 + STALL + 1, False), True),  # slow read
        ((100.0, 100.0 + 1.0 + STALL + 1, False), (107.1, 107.2, False), True),  # slow before
        ((100.0, 100.1, True), (100.1, 100.2, False), True),  # the previous batch was full
    ],
)
def test_trim_check_after_a_stall_or_a_full_batch(
    previous: tuple[float, float, bool], this: tuple[float, float, bool], expected: bool
) -> None:
    c = core(block=1.0)
    c.gap_possible(99.0, 99.5, False)
    c.gap_possible(*previous)
    assert c.gap_possible(*this) is expected


def test_trimmed_past() -> None:
    assert not FeedCore.trimmed_past("5-0", None)
    assert not FeedCore.trimmed_past("5-0", b"5-0")
    assert not FeedCore.trimmed_past("5-0", b"4-99")
    assert FeedCore.trimmed_past("5-0", b"5-1")
    assert FeedCore.trimmed_past("9-9", b"10-0")


def test_the_position_is_read_with_plain_commands() -> None:
    assert core().position_commands() == [
        ("GET", "ss:{rev}:epoch"),
        ("XINFO", "STREAM", "ss:{rev}:log"),
        ("GET", "ss:{rev}:trimmed"),
        ("GET", "ss:{rev}:inbound"),
        ("XREVRANGE", "ss:{rev}:log", "0-0", "0-0", "COUNT", 1),  # the entry at our position
    ]
    info = [b"length", 3, b"last-generated-id", b"9-1", b"entries-added", 3]
    assert FeedCore.position([b"E", info, None, None]) == [b"E", b"9-1", "0-0", None]
    assert FeedCore.position([b"E", {b"last-generated-id": b"9-1"}, b"2-0", b"r"])[1] == b"9-1"
    no_log = redis.ResponseError("no such key")
    assert FeedCore.position([None, no_log, None, None]) == [None, "0-0", "0-0", None]
    with pytest.raises(redis.ResponseError):
        FeedCore.position([b"E", redis.ResponseError("NOPERM"), None, None])


def positioned(last_id: str) -> FeedCore:
    c = core()
    c.epoch, c.last_id = "E", last_id
    return c


def test_a_log_without_the_entry_we_read_last_is_not_ours() -> None:
    """A failover to a replica that missed our last entry, which has appended newer ones since
    (ids of another clock, past ours): no other check sees it; a snapshot must be read."""
    assert positioned("7-0").needs_bootstrap([b"E", b"9-0", b"0-0", None, False])


def test_a_log_holding_the_entry_we_read_last_needs_no_snapshot() -> None:
    assert not positioned("7-0").needs_bootstrap([b"E", b"9-0", b"0-0", None, True])


def test_an_entry_gone_by_trimming_is_not_a_lost_position() -> None:
    """The snapshot of a log trimmed empty resumes at the trim marker, which is no entry."""
    assert not positioned("7-0").needs_bootstrap([b"E", b"7-0", b"7-0", None, False])
    assert not positioned("0-0").needs_bootstrap([b"E", b"0-0", b"0-0", None, False])


def test_the_position_says_whether_the_log_holds_our_entry() -> None:
    info = {b"last-generated-id": b"9-1"}
    assert FeedCore.position([b"E", info, None, None, []])[4] is False
    assert FeedCore.position([b"E", info, None, None, [[b"7-0", []]]])[4] is True


def test_a_failover_to_a_lagging_replica_keeps_what_only_we_saw(
    state: fakeredis.FakeRedis,
) -> None:
    """Union-merge: the promoted replica lacks our last revocation; the snapshot we take of it
    adds what it holds and drops nothing."""
    state.set(K.epoch, "E1")
    state.zadd(K.key("sid"), {"S-replicated": NOW + 600})
    state.xadd(K.log, {"kind": "session", "value": "S-replicated"}, id="5-0")
    c = core()
    load(c, state)
    missed = [(b"kind", b"session"), (b"value", b"S-missed"), (b"until", b"inf")]
    c.apply_entries([("6-0", missed)])
    state.xadd(K.log, {"kind": "session", "value": "S-later"}, id="7-0")  # on the new primary
    state.zadd(K.key("sid"), {"S-later": NOW + 600})
    pipe = state.pipeline(transaction=True)
    for command in c.position_commands():
        pipe.execute_command(*command)
    assert c.needs_bootstrap(c.position(pipe.execute(raise_on_error=False)))
    load(c, state)
    assert all(sid in c.view.sessions for sid in ("S-replicated", "S-missed", "S-later"))


def test_inbound_lag_comes_from_the_workers_report() -> None:
    c = core()
    assert c.inbound_lag(100.0) == (None, None)  # no worker has reported
    c.needs_bootstrap([b"e", b"1-0", b"0-0", b"90.000 -"])
    assert c.inbound_lag(100.0) == (0.0, 10.0)  # nothing waiting, as of 10 s ago
    c.needs_bootstrap([b"e", b"1-0", b"0-0", b"95.000 80.500"])
    assert c.inbound_lag(100.0) == (19.5, 5.0)  # an event waiting since 80.5
    c.needs_bootstrap([b"e", b"1-0", b"0-0", b"garbage"])
    assert c.inbound_lag(100.0) == (None, None)


def test_the_snapshot_horizon_is_the_longest_revocation() -> None:
    from conftest import make_settings

    from sessionsvc.revocation.events import Lifetimes
    from sessionsvc.revocation.feed_core import make_core

    settings = make_settings(access_ttl=600, refresh_ttl=3600, leeway=20)
    assert make_core(RevocationView(), settings).horizon == Lifetimes.of(settings).longest == 3640
