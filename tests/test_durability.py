"""The durability levels, pure: what each level makes an op yield, how replies are judged, and
the settings' bounds (the servers: ``test_durability_replica``)."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import make_settings

from sessionsvc import ConfigError, RevocationNotDurable, StoreUnavailable
from sessionsvc._redis.durability import Durable, aof_enabled, check_aof
from sessionsvc._redis.run import Call, Command, Replicated
from sessionsvc.config import load_settings
from sessionsvc.revocation.intakes import Intakes
from sessionsvc.revocation.publisher import PublisherCore
from sessionsvc.sessions.core import SessionCore
from workers.core import WorkerCore

INFO_ON_REV = Replicated(Command(("INFO", "persistence")), (), key="ss:{rev}:durable")
"""The aof check: ``INFO persistence`` where ``{rev}`` is (on a cluster: that slot's primary)."""
SID = "c2Vzcw.AAAAAAAAAAAAAAAAAAAAAA"
TAIL = (("SET", "ss:{rev}:durable", "1", "PX", 60_000), ("WAIT", 1, 500))


def cluster_core(**overrides: Any) -> SessionCore:
    return SessionCore(make_settings(redis_cluster=True, **overrides))


def first_effect(op: Any) -> Any:
    effect = next(op)
    op.close()
    return effect


def test_none_is_the_default_and_yields_the_bare_call() -> None:
    settings = make_settings()
    assert settings.durability == "none"
    assert Durable.of(settings) is None
    core = SessionCore(settings)
    assert type(first_effect(core.logout("c2Vzcw.AAAAAAAAAAAAAAAAAAAAAA"))) is Call


def test_replica_sends_the_call_with_a_barrier_and_wait_and_judges_the_acks() -> None:
    core = SessionCore(make_settings(durability="replica", durability_timeout=0.25))
    op = core.logout_all("alice")
    effect = next(op)
    assert type(effect) is Replicated and type(effect.effect) is Call
    assert effect.tail == (("SET", "ss:{rev}:durable", "1", "PX", 60_000), ("WAIT", 1, 250))
    with pytest.raises(RevocationNotDurable) as caught:
        op.send([[2, b"1", b"1-0"], b"OK", 0])
    assert isinstance(caught.value, StoreUnavailable)
    assert (caught.value.acknowledged, caught.value.wanted) == (0, 1)
    op = core.logout_all("alice")
    next(op)
    with pytest.raises(StopIteration) as done:
        op.send([[2, b"1", b"1-0"], b"OK", 1])
    assert done.value.value == 2


def test_aof_checks_the_server_once_before_the_first_write() -> None:
    core = SessionCore(make_settings(durability="aof"))
    op = core.logout("c2Vzcw.AAAAAAAAAAAAAAAAAAAAAA")
    assert next(op) == INFO_ON_REV
    assert type(op.send([{"aof_enabled": 1}])) is Call  # then the call, unchanged
    op.close()
    assert type(first_effect(core.logout("c2Vzcw.AAAAAAAAAAAAAAAAAAAAAA"))) is Call  # checked
    refused = SessionCore(make_settings(durability="aof")).logout("c2Vzcw.AAAAAAAAAAAAAAAAAAAAAA")
    next(refused)
    with pytest.raises(ConfigError, match="SESSIONSVC_DURABILITY=aof"):
        refused.send([{"aof_enabled": 0}])


def test_the_workers_calls_stay_bare_it_confirms_its_batches_itself() -> None:
    core = WorkerCore(make_settings(durability="replica"), kids=frozenset())
    assert core.sessions.redis._durable is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("info", "enabled"),
    [
        ({"aof_enabled": 1}, True),
        ({"aof_enabled": 0}, False),
        ({}, False),
        (b"# Persistence\r\naof_enabled:1\r\n", True),
        ("# Persistence\r\naof_enabled:0\r\naof_rewrite_in_progress:0", False),
    ],
)
def test_aof_enabled_reads_info_persistence(info: Any, enabled: bool) -> None:
    assert aof_enabled(info) is enabled
    if not enabled:
        with pytest.raises(ConfigError):
            check_aof(info)


def test_the_settings_bound_the_level_and_the_timeout(clean_env: None) -> None:
    with pytest.raises(ConfigError, match="SESSIONSVC_DURABILITY"):
        load_settings(issuer="i", audience="a", durability="fsync")
    with pytest.raises(ConfigError, match="SESSIONSVC_DURABILITY_TIMEOUT"):
        load_settings(issuer="i", audience="a", durability_timeout=0)
    with pytest.raises(ConfigError, match="SESSIONSVC_REDIS_SOCKET_TIMEOUT"):
        load_settings(issuer="i", audience="a", durability_timeout=3, redis_socket_timeout=2)
    assert load_settings(issuer="i", audience="a", durability="replica").durability_timeout == 0.5


def test_on_a_cluster_a_logouts_revocation_step_is_replicated_and_the_end_bare() -> None:
    op = cluster_core(durability="replica").logout(SID)
    mark = next(op)
    assert type(mark) is Call and mark.script == "user_mark"  # a {u} step: bare
    effect = op.send(1)
    assert type(effect) is Replicated and effect.tail == TAIL
    assert type(effect.effect) is Call and effect.effect.script == "apply_own"
    assert effect.key is None  # routed by the script's first key: a {rev} one
    end = op.send([b"1-0", True, 1])
    assert type(end) is Call and end.script == "user_end"  # the {u} step: bare
    op.close()


def test_on_a_cluster_an_unconfirmed_revocation_step_ends_no_session() -> None:
    op = cluster_core(durability="replica").logout(SID)
    next(op)
    op.send(1)  # marked ending; then the revocation
    with pytest.raises(RevocationNotDurable):
        op.send([b"1-0", True, 0])  # no replica: the session is left to a retry


def test_on_a_cluster_logout_all_confirms_its_apply_between_the_fence_steps() -> None:
    op = cluster_core(durability="replica").logout_all("alice")
    opened = next(op)
    assert type(opened) is Call and opened.script == "fence_open"
    applied = op.send([b"100", 2])
    assert type(applied) is Replicated and applied.effect.script == "apply_own"  # type: ignore[union-attr]
    closed = op.send([b"1-0", True, 1])
    assert type(closed) is Call and closed.script == "fence_close"
    op.close()


def test_on_a_cluster_the_aof_check_precedes_the_first_revocation_step() -> None:
    op = cluster_core(durability="aof").logout(SID)
    next(op)  # user_mark: a {u} step, not checked
    assert op.send(1) == INFO_ON_REV
    applied = op.send([b"aof_enabled:1\r\n"])
    assert type(applied) is Call and applied.script == "apply_own"
    op.close()


def test_on_a_cluster_the_workers_logout_steps_confirm_themselves() -> None:
    # (not batched by its ScriptRunner: the worker runs them as an op)
    core = SessionCore(make_settings(redis_cluster=True, durability="replica"), plain=True)
    assert type(first_effect(core.logout(SID))) is Call  # user_mark: a {u} step, bare
    op = core.logout(SID)
    next(op)
    assert type(op.send(1)) is Replicated  # its revocation: confirmed
    op.close()


def test_a_publishers_xadd_waits_without_a_barrier_routed_by_its_stream() -> None:
    core = PublisherCore(make_settings(durability="replica"), Intakes.of(make_settings()).trusted)
    effect = first_effect(core.revoke_session("S-1"))
    assert type(effect) is Replicated and effect.tail == TAIL[1:]
    assert type(effect.effect) is Command and effect.effect.args[:2] == ("XADD", "ss:events")
