"""``Follower.follow()``, the feed's control flow, driven by a scripted fake driver: transactions
and plain reads run on an in-process fakeredis, the test answers (or fails) each tail read
itself, the clock is manual and no sleep is real."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
import structlog

from sessionsvc import RevocationView
from sessionsvc._redis.run import Command, Effect, Sleep, Transaction
from sessionsvc.errors import StoreUnavailable
from sessionsvc.revocation.feed_core import FeedCore
from sessionsvc.revocation.follow import BATCH, CHECK_EVERY, Follower
from sessionsvc.revocation.log import RevKeys

K = RevKeys()


class Driver:
    """Steps the op: ``Transaction``s and non-hot ``Command``s run on fakeredis by themselves;
    the op stops at each tail read (or ``Sleep``) for the test to answer."""

    def __init__(self) -> None:
        self.redis = fakeredis.FakeRedis()
        self.now = 1000.0
        self.fresh: list[float] = []
        self.synced = 0
        self.core = FeedCore(RevocationView(), K, 15.0)
        self.follower = Follower(self.core, lambda: self.now, self.fresh.append, self._synced)
        self.op = self.follower.follow()
        self.ran: list[str] = []  # what the driver ran on its own, in order
        self.effect = self._settle(next(self.op))

    def _synced(self) -> None:
        self.synced += 1

    def _settle(self, effect: Effect) -> Effect:
        while isinstance(effect, Transaction | Command) and not getattr(effect, "hot", False):
            if isinstance(effect, Transaction):
                self.ran.append("snapshot" if effect.commands[0][0] == "SET" else "position")
                pipe = self.redis.pipeline(transaction=True)
                for command in effect.commands:
                    pipe.execute_command(*command)
                effect = self.op.send(pipe.execute(raise_on_error=False))
            else:
                self.ran.append(str(effect.args[0]))
                effect = self.op.send(self.redis.execute_command(*effect.args))
        return effect

    def answer(self, reply: Any) -> Effect:
        self.effect = self._settle(self.op.send(reply))
        return self.effect

    def fail(self, exc: BaseException) -> Effect:
        self.effect = self._settle(self.op.throw(exc))
        return self.effect

    @property
    def reading_from(self) -> str:
        assert isinstance(self.effect, Command) and self.effect.hot
        assert self.effect.args[:5] == ("XREAD", "COUNT", BATCH, "BLOCK", 1000)
        return str(self.effect.args[-1])


def entries(first: int, n: int) -> dict[bytes, list[Any]]:
    fields = [b"kind", b"session", b"value", b"S", b"before", b"0", b"until", b"inf"]
    return {K.log.encode(): [[f"{first + i}-0".encode(), fields] for i in range(n)]}


def unavailable(cause: Exception) -> StoreUnavailable:
    exc = StoreUnavailable("redis: down")
    exc.redis_error = cause
    return exc


@pytest.fixture
def d() -> Iterator[Driver]:
    driver = Driver()
    yield driver
    driver.redis.close()


def test_the_first_round_bootstraps_then_tails_from_the_snapshot(d: Driver) -> None:
    assert d.ran == ["position", "snapshot"] and d.synced == 1
    assert d.reading_from == "0-0" and d.fresh == [d.core.stale_after]
    d.now += 0.5
    d.answer(entries(7, 2))
    assert d.reading_from == "8-0" and "S" in d.core.view.sessions
    assert d.fresh[-1] == 1000.0 + 15.0  # fresh as of when the read was sent
    # the first read checks the trim marker (nothing is known before it); no position check
    # before CHECK_EVERY
    assert d.ran == ["position", "snapshot", "GET"]


def test_the_position_is_checked_every_few_seconds_and_resyncs_only_on_change(d: Driver) -> None:
    d.answer(None)  # an empty read at its timeout
    d.now += CHECK_EVERY
    d.answer(None)
    assert d.ran[3:] == ["position"] and d.synced == 2 and d.reading_from == "0-0"
    d.redis.set(K.epoch, "another")  # Redis lost its data: a new epoch
    d.now += CHECK_EVERY
    d.answer(None)
    assert d.ran[4:] == ["position", "snapshot"] and d.core.bootstraps == 2


def test_failures_back_off_doubling_to_two_seconds_then_check_the_position(d: Driver) -> None:
    with structlog.testing.capture_logs() as logs:
        waits = []
        for _ in range(7):
            effect = d.fail(unavailable(ConnectionError("gone")))
            assert isinstance(effect, Sleep)
            waits.append(effect.seconds)
            effect = d.answer(None)  # slept: the next round starts with a position check
            assert d.ran[-1] == "position"
    assert waits == [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0]
    assert (d.core.reconnects, d.core.errors) == (7, 0)
    assert logs[0] == {
        "event": "feed_error",
        "error": "ConnectionError",
        "retry_in": 0.05,
        "exc_info": False,
        "log_level": "warning",
    }
    d.answer(None)  # a read that worked resets the backoff
    effect = d.fail(unavailable(ConnectionError("gone")))
    assert isinstance(effect, Sleep) and effect.seconds == 0.05


def test_a_bug_is_counted_as_an_error_with_its_traceback(d: Driver) -> None:
    with structlog.testing.capture_logs() as logs:
        effect = d.answer(42)  # not a stream reply: the parser fails
    assert isinstance(effect, Sleep)
    assert (d.core.reconnects, d.core.errors) == (0, 1)
    assert logs[0]["error"] == "TypeError" and logs[0]["exc_info"] is True


def test_a_full_batch_is_not_proof_of_freshness_and_checks_the_trim(d: Driver) -> None:
    d.answer(None)  # the first read (and its trim check)
    fresh, ran = len(d.fresh), len(d.ran)
    d.answer(entries(1, BATCH))  # more may be waiting
    assert len(d.fresh) == fresh and len(d.ran) == ran and d.reading_from == f"{BATCH}-0"
    d.answer(entries(BATCH + 1, 3))  # caught up: fresh, and the trim is checked after the batch
    assert len(d.fresh) == fresh + 1 and d.ran[ran:] == ["GET"]


def test_trimmed_past_our_position_forces_a_snapshot(d: Driver) -> None:
    d.answer(entries(1, 2))
    d.redis.set(K.trimmed, f"{BATCH + 50}-0")  # entries we never read were trimmed
    with structlog.testing.capture_logs() as logs:
        d.answer(entries(3, BATCH))  # a full batch: a gap is possible after the next read
        d.answer(None)
    assert d.ran[-2:] == ["GET", "snapshot"]  # forced: no position check first
    assert logs[0]["event"] == "feed_trimmed_past" and logs[0]["position"] == f"{BATCH + 2}-0"
    assert d.reading_from == f"{BATCH + 50}-0" and d.core.bootstraps == 2


def test_stopping_ends_the_op_after_the_current_effect(d: Driver) -> None:
    d.follower.stopping = True
    with pytest.raises(StopIteration):
        d.answer(None)  # the round ends (its trim check included), then the loop
    assert d.ran == ["position", "snapshot", "GET"]
