"""Throttle: a publisher's intake is read at most ``rate`` events/s; operators' never (pure)."""

from __future__ import annotations

from conftest import ManualClock

from workers.throttle import Throttle


def test_an_intake_that_used_its_second_waits_until_it_refills(clock: ManualClock) -> None:
    throttle = Throttle(100, ["p"], clock=clock)
    assert throttle.readable("p")
    throttle.take("p", 150)  # one read may overdraw: the entries are in hand
    assert not throttle.readable("p")
    clock.now += 0.4
    assert not throttle.readable("p")  # -50 + 40
    clock.now += 0.2
    assert throttle.readable("p")  # -50 + 60
    clock.now += 60
    throttle.take("p", 100)
    assert not throttle.readable("p")  # the burst is one second's worth, however long it idled


def test_other_intakes_and_a_rate_of_zero_are_never_held(clock: ManualClock) -> None:
    throttle = Throttle(10, ["p"], clock=clock)
    throttle.take("ss:events", 10_000)
    assert throttle.readable("ss:events")
    unlimited = Throttle(0, ["p"], clock=clock)
    unlimited.take("p", 10_000)
    assert unlimited.readable("p")
