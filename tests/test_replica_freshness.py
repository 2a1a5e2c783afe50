"""Freshness of a feed that reads a replica (``FeedCore.from_replica``), and tick entries: pure,
no redis-server (snapshots run on an in-process fakeredis, the clock is manual)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest

from sessionsvc import Revocation, RevocationView
from sessionsvc._redis.run import Command, Effect, Transaction
from sessionsvc.errors import StoreUnavailable
from sessionsvc.revocation.feed_core import FeedCore
from sessionsvc.revocation.follow import Follower
from sessionsvc.revocation.log import RevKeys
from sessionsvc.revocation.ticks import entry_time, is_tick, tick_commands

K = RevKeys()
NOW = 1_800_000_000.0
TICK = [(b"kind", b"tick")]


def core(from_replica: bool = True, **kw: Any) -> FeedCore:
    return FeedCore(RevocationView(), K, 15.0, from_replica=from_replica, **kw)


def ms(seconds: float) -> str:
    return f"{int(seconds * 1000)}-0"


def revocation(value: str) -> list[tuple[bytes, bytes]]:
    return [(b"kind", b"session"), (b"value", value.encode()), (b"until", b"inf")]


@pytest.fixture
def state() -> Iterator[fakeredis.FakeRedis]:
    client = fakeredis.FakeRedis()
    yield client
    client.close()


def snapshot(c: FeedCore, state: fakeredis.FakeRedis, sent: float) -> dict[str, Any]:
    pipe = state.pipeline(transaction=True)
    for command in c.snapshot_commands(sent, "E-new"):
        pipe.execute_command(*command)
    return c.bootstrapped(pipe.execute(), sent)


def test_a_tick_is_skipped_not_a_bad_entry() -> None:
    heard: list[Revocation] = []
    c = core(from_replica=False, listeners=[heard.append])
    applied = c.apply_entries([("1-0", TICK), ("2-0", revocation("S1")), ("3-0", TICK)])
    assert applied == heard == [Revocation("session", "S1")]
    assert (c.ticks, c.bad_entries, c.applied, c.last_id) == (2, 0, 1, "3-0")


def test_a_tick_changes_nothing_in_the_view() -> None:
    c = core()
    generation = c.view.generation
    c.apply_entries([("1-0", TICK)])
    assert c.view.generation == generation and len(c.view) == 0


def test_on_a_replica_freshness_is_the_newest_entry_time() -> None:
    c = core()
    assert c.entries_seen(ms(NOW - 3), sent=NOW) == NOW - 3 + 15.0


def test_on_a_replica_freshness_is_never_later_than_the_read() -> None:
    c = core()  # a Redis clock 60 s ahead of ours must not make the view fresher than the read
    assert c.entries_seen(ms(NOW + 60), sent=NOW) == NOW + 15.0


def test_on_a_replica_an_older_entry_does_not_move_freshness_back() -> None:
    c = core()
    c.entries_seen(ms(NOW - 1), sent=NOW)
    assert c.entries_seen(ms(NOW - 9), sent=NOW + 1) == NOW - 1 + 15.0


def test_entry_time_is_the_ids_milliseconds() -> None:
    assert entry_time("1800000000250-7") == 1_800_000_000.25


def test_a_tick_is_recognised_by_its_kind() -> None:
    assert is_tick(TICK) and not is_tick(revocation("tick"))


def test_the_tick_commands_set_the_epoch_only_if_missing_then_append() -> None:
    (set_, epoch, _, nx), add = tick_commands(K)
    assert (set_, epoch, nx) == ("SET", K.epoch, "NX")
    assert add == ("XADD", K.log, "*", "kind", "tick")


def test_a_replicas_snapshot_writes_nothing() -> None:
    assert core().snapshot_commands(NOW, "E")[0] == ("EXISTS", K.epoch)
    assert core(from_replica=False).snapshot_commands(NOW, "E")[0][0] == "SET"


def test_a_replicas_snapshot_without_an_epoch_is_not_ready(state: fakeredis.FakeRedis) -> None:
    with pytest.raises(StoreUnavailable, match="worker"):
        snapshot(core(), state, NOW)


def test_a_replicas_snapshot_is_fresh_as_of_its_newest_entry(state: fakeredis.FakeRedis) -> None:
    state.set(K.epoch, "E1")
    state.xadd(K.log, {"kind": "tick"}, id=ms(NOW - 4))
    c = core()
    snapshot(c, state, NOW)
    assert c.stale_after == NOW - 4 + 15.0 and c.last_id == ms(NOW - 4)


def test_a_replicas_snapshot_of_an_empty_log_proves_nothing(state: fakeredis.FakeRedis) -> None:
    state.set(K.epoch, "E1")
    c = core()
    snapshot(c, state, NOW)
    assert c.stale_after == -math.inf and c.epoch == "E1"


class Driver:
    """The follower on a replica: transactions on fakeredis, each tail read answered here."""

    def __init__(self, state: fakeredis.FakeRedis) -> None:
        self.redis, self.now, self.fresh = state, NOW, list[float]()
        state.set(K.epoch, "E1")
        self.core = core()
        follower = Follower(self.core, lambda: self.now, self.fresh.append, lambda: None)
        self.op = follower.follow()
        self._settle(next(self.op))

    def _settle(self, effect: Effect) -> None:
        while isinstance(effect, Transaction | Command) and not getattr(effect, "hot", False):
            if isinstance(effect, Transaction):
                pipe = self.redis.pipeline(transaction=True)
                for command in effect.commands:
                    pipe.execute_command(*command)
                effect = self.op.send(pipe.execute(raise_on_error=False))
            else:
                effect = self.op.send(self.redis.execute_command(*effect.args))

    def answer(self, entries: list[tuple[str, Any]]) -> None:
        flat = [[i.encode(), [x for pair in fields for x in pair]] for i, fields in entries]
        self._settle(self.op.send({K.log.encode(): flat} if entries else None))


def test_on_a_replica_an_empty_read_proves_nothing(state: fakeredis.FakeRedis) -> None:
    d = Driver(state)
    d.now += 1
    d.answer([])
    assert d.core.stale_after == -math.inf and all(f == -math.inf for f in d.fresh)


def test_on_a_replica_a_tick_read_makes_the_view_fresh(state: fakeredis.FakeRedis) -> None:
    d = Driver(state)
    d.answer([(ms(NOW - 2), TICK)])
    assert d.fresh[-1] == NOW - 2 + 15.0 == d.core.stale_after


def test_on_a_replica_freshness_ages_until_the_next_tick(state: fakeredis.FakeRedis) -> None:
    d = Driver(state)
    d.answer([(ms(NOW - 2), TICK)])
    for _ in range(30):  # empty reads for half a minute: still as old as the tick
        d.now += 1
        d.answer([])
    assert d.core.stale_after == NOW - 2 + 15.0 < d.now
