"""The inbound event contract: every type parses, every kind of bad input gets its code."""

from __future__ import annotations

import json

import pytest

import sessionsvc
from sessionsvc.errors import SessionError
from sessionsvc.revocation.events import (
    REJECT_CODES,
    AllRevoke,
    EventRejected,
    KeyRevoke,
    Lifetimes,
    SessionRevoke,
    TokenRevoke,
    UserRevoke,
    dumps,
    encode_fields,
    parse_fields,
    parse_message,
    to_revocation,
)


def fields(**kw: str) -> list[tuple[bytes, bytes]]:
    return [(k.encode(), v.encode()) for k, v in kw.items()]


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        (fields(type="session.revoke", sid="7Zp", reason="logout"), SessionRevoke),
        (fields(type="user.revoke", sub="user-42", reason="password_changed"), UserRevoke),
        (fields(type="user.revoke", sub="user-42", before="1767225600"), UserRevoke),
        (fields(type="token.revoke", jti="1f0", exp="1767225600"), TokenRevoke),
        (fields(type="all.revoke", before="1767225600", reason="key_compromise"), AllRevoke),
        (fields(type="key.revoke", kid="k-2026"), KeyRevoke),
    ],
)
def test_each_type_parses_from_stream_fields(
    pairs: list[tuple[bytes, bytes]], expected: type
) -> None:
    assert isinstance(parse_fields(pairs), expected)


def test_optional_members_parse() -> None:
    event = parse_fields(fields(type="session.revoke", sid="s", id="e-1", source="admin", at="1.5"))
    assert (event.id, event.source, event.at) == ("e-1", "admin", 1.5)


def test_fractional_seconds() -> None:
    event = parse_fields(fields(type="all.revoke", before="1767225600.25"))
    assert isinstance(event, AllRevoke)
    assert event.before == 1767225600.25


@pytest.mark.parametrize(
    ("pairs", "code"),
    [
        (fields(sid="s"), "unknown_type"),
        (fields(type="session.kill", sid="s"), "unknown_type"),
        (fields(type="session.revoke"), "missing_field"),
        (fields(type="all.revoke"), "missing_field"),
        (fields(type="session.revoke", sid="s", extra="x"), "unknown_field"),
        (fields(type="session.revoke", sid=""), "bad_field"),
        (fields(type="session.revoke", sid="a\nb"), "bad_field"),
        (fields(type="session.revoke", sid="x" * 257), "bad_field"),
        (fields(type="all.revoke", before="nan"), "bad_field"),
        (fields(type="all.revoke", before="inf"), "bad_field"),
        (fields(type="all.revoke", before="-5"), "bad_field"),
        (fields(type="all.revoke", before="1e9"), "bad_field"),
        (fields(type="all.revoke", before="yesterday"), "bad_field"),
        (fields(type="token.revoke", jti="j", exp=" 5"), "bad_field"),
        ([(b"type", b"session.revoke"), (b"sid", b"\xff\xfe")], "malformed"),
        ([(b"type", b"session.revoke"), (b"sid", b"a"), (b"sid", b"b")], "malformed"),
        ([(f"f{i}".encode(), b"v") for i in range(17)], "too_large"),
        (fields(type="session.revoke", sid="s", reason="r" * 600), "bad_field"),
    ],
)
def test_bad_stream_entries_get_a_code(pairs: list[tuple[bytes, bytes]], code: str) -> None:
    with pytest.raises(EventRejected) as info:
        parse_fields(pairs)
    assert info.value.code == code


def test_oversize_entry_is_too_large() -> None:
    pairs = fields(type="session.revoke", sid="s") + [
        (f"x{i}".encode(), b"v" * 500) for i in range(10)
    ]
    with pytest.raises(EventRejected) as info:
        parse_fields(pairs)
    assert info.value.code == "too_large"


def test_pubsub_message_parses() -> None:
    event = parse_message('{"type":"session.revoke","sid":"7Zp","reason":"logout"}')
    assert isinstance(event, SessionRevoke)


def test_pubsub_numbers_are_seconds() -> None:
    event = parse_message(b'{"type":"all.revoke","before":1767225600}')
    assert isinstance(event, AllRevoke)
    assert event.before == 1767225600.0


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("not json", "malformed"),
        ("[1, 2]", "malformed"),
        ('{"type":"session.revoke","sid":"a","sid":"b"}', "malformed"),
        ('{"type":"all.revoke","before":NaN}', "malformed"),
        ('{"type":"all.revoke","before":true}', "bad_field"),
        ('{"type":"all.revoke","before":-1}', "bad_field"),
        ('{"type":"token.revoke","jti":5}', "bad_field"),
        ('{"type":"session.revoke","sid":"s","x":1}', "unknown_field"),
        ('{"type":null,"sid":"s"}', "unknown_type"),
        (b"\xff{}", "malformed"),
        ('{"type":"session.revoke","sid":"' + "s" * 5000 + '"}', "too_large"),
    ],
)
def test_bad_messages_get_a_code(message: str | bytes, code: str) -> None:
    with pytest.raises(EventRejected) as info:
        parse_message(message)
    assert info.value.code == code


def test_encode_round_trips_through_stream_fields() -> None:
    event = parse_fields(fields(type="user.revoke", sub="u", before="1767225600.5", reason="pw"))
    wire = encode_fields(event)
    assert wire == {"type": "user.revoke", "sub": "u", "before": "1767225600.5", "reason": "pw"}
    assert parse_fields(wire.items()) == event


def test_dumps_round_trips_through_pubsub() -> None:
    event = parse_fields(fields(type="all.revoke", before="1767225600"))
    assert parse_message(dumps(event)) == event


LIFETIMES = Lifetimes(access_ttl=900, refresh_ttl=3600, leeway=30)
NOW = 1_800_000_000.0


def test_longest_covers_the_longest_token_and_two_leeways() -> None:
    # a token lives at most its ttl after its iat, which an issuing clock may put up to the
    # leeway ahead, and validators accept it up to the leeway past its exp
    assert (LIFETIMES.longest, LIFETIMES.longest_access) == (3600 + 60, 900 + 60)


def test_session_revocation_covers_the_access_tokens_of_it() -> None:
    rev = to_revocation(parse_fields(fields(type="session.revoke", sid="s")), NOW, LIFETIMES)
    assert (rev.kind, rev.value, rev.until) == ("session", "s", NOW + 960)


def test_token_revocation_kept_until_its_exp() -> None:
    event = parse_fields(fields(type="token.revoke", jti="j", exp=str(int(NOW) + 60)))
    assert to_revocation(event, NOW, LIFETIMES).until == NOW + 90


def test_token_revocation_is_bounded_by_the_settings_not_by_its_exp() -> None:
    for exp in ("999999999999", None):
        event = parse_fields(fields(type="token.revoke", jti="j", **({"exp": exp} if exp else {})))
        assert to_revocation(event, NOW, LIFETIMES).until == NOW + 3660


def test_user_revocation_defaults_to_now() -> None:
    rev = to_revocation(parse_fields(fields(type="user.revoke", sub="u")), NOW, LIFETIMES)
    assert (rev.kind, rev.before, rev.until) == ("user", NOW, NOW + 3660)


def test_user_and_all_revocations_are_kept_the_longest_lifetime_after_before() -> None:
    for event in (
        parse_fields(fields(type="user.revoke", sub="u", before=str(int(NOW) - 100))),
        parse_fields(fields(type="all.revoke", before=str(int(NOW) - 100))),
    ):
        rev = to_revocation(event, NOW, LIFETIMES)
        assert (rev.before, rev.until) == (NOW - 100, NOW - 100 + 3660)


def test_key_revocation_is_forever() -> None:
    rev = to_revocation(parse_fields(fields(type="key.revoke", kid="k")), NOW, LIFETIMES)
    assert rev.until == float("inf")


def test_before_in_the_future_is_refused() -> None:
    event = parse_fields(fields(type="all.revoke", before=str(int(NOW) + 3600)))
    with pytest.raises(EventRejected) as info:
        to_revocation(event, NOW, LIFETIMES)
    assert info.value.code == "bad_field"


@pytest.mark.parametrize(
    ("number", "wire"),
    [(1767225600.0000004, "1767225600"), (1767225600.25, "1767225600.25"), (12.0, "12")],
)
def test_a_json_time_is_written_back_as_the_stream_contract_has_it(
    number: float, wire: str
) -> None:
    event = parse_message(json.dumps({"type": "all.revoke", "before": number}))
    written = encode_fields(event)
    assert written["before"] == wire
    assert parse_fields(written.items()).type == "all.revoke"  # the worker takes it


def test_event_rejected_is_a_session_error_and_still_a_value_error() -> None:
    with pytest.raises(SessionError) as info:
        parse_fields([("type", "nope")])
    assert isinstance(info.value, ValueError)
    assert info.value.code == "unknown_type"
    assert info.value.code in REJECT_CODES
    assert sessionsvc.EventRejected is EventRejected
