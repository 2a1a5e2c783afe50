"""WorkerCore, the worker's pure decisions: inbound entry → one script call or a dead letter."""

from __future__ import annotations

import math
from typing import Any

import pytest
from conftest import NOW, ManualClock, make_settings

from sessionsvc.events import EventRejected
from sessionsvc.revoker import RevKeys
from sessionsvc.sessionkeys import new_session_id
from workers.core import APPLY, DeadLetter, WorkerCore

SETTINGS = make_settings(redis_url="redis://127.0.0.1:1/0")
LONGEST = max(SETTINGS.access_ttl, SETTINGS.refresh_ttl) + 2 * SETTINGS.leeway
ACCESS = SETTINGS.access_ttl + 2 * SETTINGS.leeway  # what a session revocation must cover


def pairs(**fields: str) -> list[tuple[bytes, bytes]]:
    return [(k.encode(), v.encode()) for k, v in fields.items()]


@pytest.fixture
def core() -> WorkerCore:
    return WorkerCore(SETTINGS, ManualClock())


def test_plan_splits_good_and_bad(core: WorkerCore) -> None:
    entries = [
        ("1-0", pairs(type="session.revoke", sid="S1")),
        ("2-0", pairs(type="nope", sid="S1")),
        ("3-0", []),  # deleted while pending
        ("4-0", pairs(type="key.revoke", kid="k1")),
    ]
    planned, dead = core.plan(entries)
    assert [p.entry_id for p in planned] == ["1-0", "4-0"]
    assert [(d.entry_id, d.code) for d in dead] == [("2-0", "unknown_type"), ("3-0", "malformed")]
    assert dead[0].pairs == entries[1][1]  # the original fields travel with the dead letter


def test_foreign_session_id_is_revoked_by_value(core: WorkerCore) -> None:
    call = core.call_for(core_event(sid="not-ours"), "EPOCH")
    assert call.script == APPLY and call.keys == RevKeys().all()
    kind, value, before, until, epoch, *meta, cap = call.args
    assert (kind, value, before, epoch) == ("session", "not-ours", "0", "EPOCH")
    assert float(until) == NOW + ACCESS  # a foreign sid has no session: access tokens only
    assert meta == ["", "", "session.revoke", ""]  # reason defaults to the event type
    assert cap == str(SETTINGS.max_revocations)  # revocations by value are capped


def test_our_session_id_runs_the_logout_script(core: WorkerCore) -> None:
    sid = new_session_id("alice")
    call = core.call_for(core_event(sid=sid, reason="admin"), "E")
    assert call.script == "logout" and sid in call.args and "admin" in call.args


def test_user_revoke_without_before_logs_the_user_out_everywhere(core: WorkerCore) -> None:
    call = core.call_for(parse(type="user.revoke", sub="alice"), "E")
    assert call.script == "logout_all" and "alice" in call.args


def test_user_revoke_with_before_is_a_plain_revocation(core: WorkerCore) -> None:
    call = core.call_for(parse(type="user.revoke", sub="alice", before=str(NOW - 60)), "E")
    assert call.script == APPLY
    assert call.args[:3] == ["user", "alice", str(NOW - 60)]
    assert float(call.args[3]) == NOW - 60 + LONGEST


@pytest.mark.parametrize("sub", ["x" * 200, "é" * 100, "u" * 256], ids=["ascii", "2-byte", "max"])
def test_user_too_long_for_a_session_key_is_still_revoked(core: WorkerCore, sub: str) -> None:
    """A valid event whose sub cannot have sessions here (over 128 bytes) is revoked by value;
    it must not escape ``plan`` as a ValueError (that stopped the worker)."""
    planned, dead = core.plan([("1-0", pairs(type="user.revoke", sub=sub))])
    assert dead == []
    [item] = planned
    assert item.call.script == APPLY
    assert item.call.args[:3] == ["user", sub, str(NOW)]


def test_token_revocation_is_kept_until_its_exp(core: WorkerCore) -> None:
    call = core.call_for(parse(type="token.revoke", jti="J", exp=str(NOW + 100)), "E")
    assert call.args[:4] == ["token", "J", "0", str(NOW + 100 + SETTINGS.leeway)]


def test_a_planted_token_revocation_is_bounded_by_the_settings(core: WorkerCore) -> None:
    call = core.call_for(parse(type="token.revoke", jti="J", exp="999999999999"), "E")
    assert call.args[:4] == ["token", "J", "0", str(NOW + LONGEST)]


def test_all_and_key(core: WorkerCore) -> None:
    call = core.call_for(parse(type="all.revoke", before=str(NOW - 5), source="ir"), "E")
    assert call.args[:3] == ["all", "", str(NOW - 5)] and call.args[6] == "ir"
    call = core.call_for(parse(type="key.revoke", kid="k1", id="evt-9", at="12.5"), "E")
    assert call.args[:4] == ["key", "k1", "0", "inf"]
    assert call.args[5:] == ["evt-9", "", "key.revoke", "12.500000", "1000000"]


def test_a_before_in_the_future_is_a_dead_letter(core: WorkerCore) -> None:
    future = str(NOW + SETTINGS.leeway + 1)
    planned, dead = core.plan([("1-0", pairs(type="all.revoke", before=future))])
    assert planned == [] and [d.code for d in dead] == ["bad_field"]
    planned, _ = core.plan([("2-0", pairs(type="all.revoke", before=str(NOW + 1)))])
    assert len(planned) == 1  # within the leeway: clock skew, not the future


def test_dead_fields_put_our_metadata_first() -> None:
    letter = DeadLetter("7-1", [(b"type", b"x"), (b"type", b"y")], "malformed", "d" * 900)
    fields = WorkerCore.dead_fields(letter, 3, "w1", 1234.5)
    meta = {k.decode(): v.decode() for k, v in fields[:6]}
    assert meta == {
        "dlq:error": "malformed",
        "dlq:detail": "d" * 500,
        "dlq:entry": "7-1",
        "dlq:deliveries": "3",
        "dlq:consumer": "w1",
        "dlq:at": "1234.500",
    }
    assert fields[6:] == [(b"type", b"x"), (b"type", b"y")]


def core_event(**fields: str) -> Any:
    return parse(type="session.revoke", **fields)


def parse(**fields: str) -> Any:
    from sessionsvc.events import parse_fields

    try:
        return parse_fields(pairs(**fields))
    except EventRejected as exc:  # pragma: no cover - a broken test input
        raise AssertionError(exc) from exc


def test_lifetimes_follow_settings() -> None:
    core = WorkerCore(
        make_settings(redis_url="redis://127.0.0.1:1/0", access_ttl=60, refresh_ttl=120, leeway=0),
        ManualClock(),
    )
    call = core.call_for(core_event(sid="S"), "E")
    assert float(call.args[3]) == NOW + 60
    call = core.call_for(parse(type="token.revoke", jti="J"), "E")
    assert float(call.args[3]) == NOW + 120
    assert not math.isinf(float(call.args[3]))


def test_event_source_and_id_reach_the_session_scripts() -> None:
    core = WorkerCore(SETTINGS)
    sid = new_session_id("alice")
    pairs = [
        (b"type", b"session.revoke"),
        (b"sid", sid.encode()),
        (b"source", b"idp"),
        (b"id", b"evt-1"),
    ]
    planned, dead = core.plan([("1-0", pairs)])
    assert not dead
    assert planned[0].call.script == "logout"
    assert planned[0].call.args[-2:] == ["idp", "evt-1"]
