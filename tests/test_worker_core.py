"""WorkerCore, the worker's pure decisions: inbound entry → one script call or a dead letter."""

from __future__ import annotations

import math
from typing import Any

import pytest
from conftest import NOW, ManualClock, make_settings

from sessionsvc._redis.bounded import Truncated, resp_digest
from sessionsvc.revocation.events import EventRejected
from sessionsvc.revocation.log import RevKeys
from sessionsvc.sessions.keys import new_session_id
from workers.core import (
    APPLY,
    DLQ_COPY,
    META_FIELDS,
    ORIGINAL,
    DeadLetter,
    Entry,
    SessionSteps,
    WorkerCore,
)

SETTINGS = make_settings(
    redis_url="redis://127.0.0.1:1/0", publishers={"idp": ["session.revoke", "user.revoke"]}
)
LONGEST = max(SETTINGS.access_ttl, SETTINGS.refresh_ttl) + 2 * SETTINGS.leeway
ACCESS = SETTINGS.access_ttl + 2 * SETTINGS.leeway  # what a session revocation must cover
TRUSTED, IDP = "ss:events", "{ss:events}:idp"
KID = "access-EdDSA"  # the kid of make_settings' access ring


def pairs(**fields: str) -> list[tuple[bytes, bytes]]:
    return [(k.encode(), v.encode()) for k, v in fields.items()]


def entry(entry_id: str, fields: list[tuple[bytes, bytes]], stream: str = TRUSTED) -> Entry:
    return Entry(stream, entry_id, [x for pair in fields for x in pair])


@pytest.fixture
def core() -> WorkerCore:
    return WorkerCore(SETTINGS, ManualClock())


def test_plan_splits_good_and_bad(core: WorkerCore) -> None:
    entries = [
        entry("1-0", pairs(type="session.revoke", sid="S1")),
        entry("2-0", pairs(type="nope", sid="S1")),
        entry("3-0", []),  # deleted while pending
        entry("4-0", pairs(type="key.revoke", kid=KID)),
    ]
    planned, dead = core.plan(entries)
    assert [p.entry.id for p in planned] == ["1-0", "4-0"]
    assert [(d.entry.id, d.code) for d in dead] == [("2-0", "unknown_type"), ("3-0", "malformed")]
    assert dead[0].entry is entries[1]  # the original fields travel with the dead letter


def test_foreign_session_id_is_revoked_by_value(core: WorkerCore) -> None:
    call = core.call_for(core_event(sid="not-ours"), "EPOCH")
    assert call.script == APPLY and call.keys == [*RevKeys().all(), RevKeys().budget("idp")]
    kind, value, before, until, epoch, *meta, cap, budget = call.args
    assert (kind, value, before, epoch) == ("session", "not-ours", "0", "EPOCH")
    assert float(until) == NOW + ACCESS  # a foreign sid has no session: access tokens only
    assert meta == ["", "", "session.revoke", ""]  # reason defaults to the event type
    assert (cap, budget) == ("0", "0")  # the operators' intake: no budget


def test_a_publishers_events_are_charged_to_its_budget(core: WorkerCore) -> None:
    idp = core.intakes.publishers["idp"]
    call = core.call_for(core_event(sid="not-ours"), "E", idp)
    assert call.args[-2:] == [str(SETTINGS.max_revocations), "9"]  # KEYS[9]: idp's budget
    assert call.keys[8] == "ss:{rev}:budget:idp"
    logout = core.call_for(core_event(sid=new_session_id("alice")), "E", idp)
    assert logout.script == "logout" and logout.keys[-1] == "ss:{rev}:budget:idp"
    everywhere = core.call_for(parse(type="user.revoke", sub="alice"), "E", idp)
    assert everywhere.script == "logout_all" and everywhere.keys[-1] == "ss:{rev}:budget:idp"
    assert everywhere.args[-2:] == [str(SETTINGS.max_revocations), "1"]  # clamped, charged


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
    planned, dead = core.plan([entry("1-0", pairs(type="user.revoke", sub=sub))])
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
    call = core.call_for(parse(type="key.revoke", kid=KID, id="evt-9", at="12.5"), "E")
    assert call.args[:4] == ["key", KID, "0", "inf"]
    assert call.args[5:] == ["evt-9", "", "key.revoke", "12.500000", "0", "0"]


def test_a_before_in_the_future_is_a_dead_letter(core: WorkerCore) -> None:
    future = str(NOW + SETTINGS.leeway + 1)
    planned, dead = core.plan([entry("1-0", pairs(type="all.revoke", before=future))])
    assert planned == [] and [d.code for d in dead] == ["bad_field"]
    planned, _ = core.plan([entry("2-0", pairs(type="all.revoke", before=str(NOW + 1)))])
    assert len(planned) == 1  # within the leeway: clock skew, not the future


def test_dead_fields_put_our_metadata_first() -> None:
    original = [(b"type", b"x"), (b"type", b"y")]
    letter = DeadLetter(entry("7-1", original, IDP), "malformed", "d" * 900)
    fields = WorkerCore.dead_fields(letter, 3, "w1", 1234.5)
    meta = dict(zip(fields[:22:2], fields[1:22:2], strict=True))
    assert list(meta) == list(META_FIELDS)
    assert meta == {
        "dlq:error": "malformed",
        "dlq:detail": "d" * 500,
        "dlq:intake": IDP,
        "dlq:entry": "7-1",
        "dlq:deliveries": "3",
        "dlq:consumer": "w1",
        "dlq:at": "1234.500",
        "dlq:size": "10",
        "dlq:fields": "2",
        "dlq:sha256": resp_digest([b"type", b"x", b"type", b"y"]),
        "dlq:truncated": "0",
    }
    assert fields[22:] == [b"orig:type", b"x", b"orig:type", b"y"]  # whole: nothing was cut


def test_an_original_field_cannot_pass_for_one_of_ours() -> None:
    """A publisher that names its fields like ours (``dlq:error apply_failed``) cannot make a
    dead letter look like another, even to a client that folds fields into a dict."""
    forged = [(b"type", b"all.revoke"), (b"dlq:error", b"apply_failed"), (b"dlq:intake", b"x")]
    fields = WorkerCore.dead_fields(
        DeadLetter(entry("1-0", forged, IDP), "unknown_field", ""), 1, "w", 0
    )
    folded = dict(zip(fields[::2], fields[1::2], strict=True))
    assert (folded["dlq:error"], folded["dlq:intake"]) == ("unknown_field", IDP)
    assert folded[b"orig:dlq:error"] == b"apply_failed"


def test_a_dead_letter_keeps_a_bounded_prefix_and_the_digest_of_the_whole() -> None:
    big = [(b"type", b"session.revoke"), (b"sid", b"S"), (b"junk", b"j" * 100_000)]
    letter = DeadLetter(entry("1-0", big), "too_large", "")
    fields = WorkerCore.dead_fields(letter, 1, "w1", 0.0)
    meta = dict(zip(fields[:22:2], fields[1:22:2], strict=True))
    assert meta["dlq:truncated"] == "1"
    assert meta["dlq:size"] == str(sum(len(x) for p in big for x in p))
    assert meta["dlq:sha256"] == resp_digest([x for p in big for x in p])
    copy = fields[22:]
    assert copy[:4] == [b"orig:type", b"session.revoke", b"orig:sid", b"S"]
    assert copy[4] == b"orig:junk"
    assert copy[5] == b"j" * (DLQ_COPY - len(b"typesession.revokesidSjunk"))
    assert sum(len(x) for x in copy) - 3 * len(ORIGINAL) == DLQ_COPY  # the originals' bytes


def test_an_entry_the_bounded_reader_cut_is_too_large_without_decoding(core: WorkerCore) -> None:
    cut = Truncated([b"type", b"session.revoke", b"sid", b"\xff" * 10], 6, 60_000_000, "ab" * 32)
    _, dead = core.plan([Entry(TRUSTED, "1-0", cut)])
    assert [(d.code, d.detail) for d in dead] == [
        ("too_large", "event is 60000000 bytes in 3 fields")
    ]
    fields = WorkerCore.dead_fields(dead[0], 1, "w1", 0.0)
    meta = dict(zip(fields[:22:2], fields[1:22:2], strict=True))
    assert (meta["dlq:size"], meta["dlq:sha256"], meta["dlq:truncated"]) == (
        "60000000",
        "ab" * 32,
        "1",
    )


def test_a_publisher_may_send_only_its_configured_types(core: WorkerCore) -> None:
    planned, dead = core.plan(
        [
            entry("1-0", pairs(type="session.revoke", sid="S1"), IDP),
            entry("2-0", pairs(type="all.revoke", before=str(NOW)), IDP),
            entry("3-0", pairs(type="all.revoke", before=str(NOW)), TRUSTED),
        ]
    )
    assert [p.entry.id for p in planned] == ["1-0", "3-0"]
    assert [(d.entry.id, d.code) for d in dead] == [("2-0", "not_allowed")]


def test_a_publishers_events_carry_the_publisher_as_their_source(core: WorkerCore) -> None:
    planned, dead = core.plan(
        [
            entry("1-0", pairs(type="session.revoke", sid="S1"), IDP),
            entry("2-0", pairs(type="session.revoke", sid="S2", source="idp"), IDP),
            entry("3-0", pairs(type="session.revoke", sid="S3", source="admin"), IDP),
            entry("4-0", pairs(type="session.revoke", sid="S4", source="admin"), TRUSTED),
        ]
    )
    assert [(p.entry.id, p.event.source) for p in planned] == [
        ("1-0", "idp"),
        ("2-0", "idp"),
        ("4-0", "admin"),  # the trusted intake's writers name themselves
    ]
    assert [(d.entry.id, d.code) for d in dead] == [("3-0", "bad_field")]
    assert planned[0].call.args[6] == "idp"  # recorded in the revocation log


def test_key_revoke_must_name_a_configured_kid(core: WorkerCore) -> None:
    refresh_kid = "refresh-EdDSA"
    planned, dead = core.plan(
        [
            entry("1-0", pairs(type="key.revoke", kid=KID)),
            entry("2-0", pairs(type="key.revoke", kid=refresh_kid)),
            entry("3-0", pairs(type="key.revoke", kid="made-up-1")),
        ]
    )
    assert [p.entry.id for p in planned] == ["1-0", "2-0"]
    assert [(d.entry.id, d.code) for d in dead] == [("3-0", "unknown_key")]


def core_event(**fields: str) -> Any:
    return parse(type="session.revoke", **fields)


def parse(**fields: str) -> Any:
    from sessionsvc.revocation.events import parse_fields

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
    planned, dead = core.plan([entry("1-0", pairs)])
    assert not dead
    assert planned[0].call.script == "logout"
    assert planned[0].call.args[-3:-1] == ["idp", "evt-1"]


def test_on_a_cluster_our_logouts_are_session_steps_and_the_rest_is_batched() -> None:
    """Redis Cluster: a logout of ours is the session service's single-slot steps, run by
    itself (each attempt a fresh op); a foreign sid or a sub too long for sessions is still an
    ``APPLY`` call of the batch."""
    core = WorkerCore(make_settings(redis_url="redis://127.0.0.1:1/0", redis_cluster=True))
    logout = core.call_for(core_event(sid=new_session_id("alice")), "E")
    everywhere = core.call_for(parse(type="user.revoke", sub="alice"), "E")
    assert isinstance(logout, SessionSteps) and isinstance(everywhere, SessionSteps)
    assert (logout.script, everywhere.script) == ("logout", "logout_all")
    assert next(logout.make()).script == "user_mark"  # marked, then revoked, then ended
    assert next(everywhere.make()).script == "fence_open"  # the fence first
    assert core.call_for(core_event(sid="not-ours"), "E").script == APPLY
    assert core.call_for(parse(type="user.revoke", sub="x" * 200), "E").script == APPLY
