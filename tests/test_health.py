"""HealthState: what the probes answer, from what the worker's parts report (pure)."""

from __future__ import annotations

from conftest import ManualClock

from workers.health import HealthState


def state(clock: ManualClock) -> HealthState:
    health = HealthState(clock=clock, max_silence=30.0)
    health.started = True
    for chore in ("consume", "housekeeping"):
        health.succeeded(chore)
    return health


def test_a_working_worker_is_alive_and_ready(clock: ManualClock) -> None:
    health = state(clock)
    assert health.alive() and health.ready


def test_a_chore_failing_while_redis_answers_fails_liveness_after_max_silence(
    clock: ManualClock,
) -> None:
    health = state(clock)
    health.failed("housekeeping", "MemoryError", redis_down=False)
    assert health.alive() and not health.ready  # degraded at once
    assert health.readiness_problems() == ["housekeeping failing (MemoryError)"]
    clock.now += 31
    health.beat()  # the loop still turns: it is wedged, not hung
    assert health.liveness_problems() == ["housekeeping failing for 31 s (MemoryError)"]


def test_an_unreachable_redis_never_fails_liveness(clock: ManualClock) -> None:
    health = state(clock)
    health.failed("consume", "ConnectionError", redis_down=True)
    clock.now += 600
    health.beat()
    assert health.alive()
    assert "Redis unreachable" in health.readiness_problems()
    health.succeeded("consume")  # back
    assert health.ready


def test_a_silent_loop_fails_liveness(clock: ManualClock) -> None:
    health = state(clock)
    clock.now += 31
    assert health.liveness_problems() == ["loop silent for 31 s"]


def test_an_applier_holding_work_without_progress_fails_liveness(clock: ManualClock) -> None:
    health = state(clock)
    health.succeeded("apply")
    health.busy = lambda: True
    clock.now += 31
    health.beat()
    assert health.liveness_problems() == ["apply stuck for 31 s"]
    health.busy = lambda: False  # idle is fine, however long
    assert health.alive()


def test_not_ready_before_the_groups_exist(clock: ManualClock) -> None:
    health = HealthState(clock=clock)
    assert health.alive() and health.readiness_problems() == ["not connected yet"]
