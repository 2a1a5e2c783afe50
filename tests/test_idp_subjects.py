"""sessionsvc.idp.subjects: RFC 9493 subject identifiers (and SSF 1.0's ``jwt_id`` and
``complex``) read into ``Subject``; every other format, and every bad member, refused."""

from __future__ import annotations

from typing import Any

import pytest

from sessionsvc.errors import IdpTokenRejected
from sessionsvc.idp.model import Subject
from sessionsvc.idp.subjects import MAX_EMAIL, MAX_ID, MAX_ISSUER, parse_subject

ISS = "https://idp.example.test/3456789/"


def refused(obj: object) -> tuple[str, str]:
    with pytest.raises(IdpTokenRejected) as info:
        parse_subject(obj)
    return info.value.code, info.value.reason


SIMPLE = [
    (
        {"format": "opaque", "id": "11112222333344445555"},
        Subject("opaque", sub="11112222333344445555"),
    ),
    ({"format": "iss_sub", "iss": ISS, "sub": "jane"}, Subject("iss_sub", iss=ISS, sub="jane")),
    (
        {"format": "email", "email": "jane@example.test"},
        Subject("email", email="jane@example.test"),
    ),
    (
        {"format": "jwt_id", "iss": ISS, "jti": "B70BA622"},
        Subject("jwt_id", iss=ISS, jti="B70BA622"),
    ),
]


@pytest.mark.parametrize(("obj", "subject"), SIMPLE, ids=[s[0]["format"] for s in SIMPLE])
def test_each_simple_format_is_read(obj: dict[str, Any], subject: Subject) -> None:
    assert parse_subject(obj) == subject


COMPLEX = [
    (
        {"user": {"format": "iss_sub", "iss": ISS, "sub": "jane"}},
        Subject("complex", iss=ISS, sub="jane"),
    ),
    ({"user": {"format": "opaque", "id": "u-1"}}, Subject("complex", sub="u-1")),
    ({"user": {"format": "email", "email": "j@x.test"}}, Subject("complex", email="j@x.test")),
    ({"session": {"format": "opaque", "id": "sid-1"}}, Subject("complex", sid="sid-1")),
    (
        {
            "user": {"format": "iss_sub", "iss": ISS, "sub": "jane"},
            "session": {"format": "opaque", "id": "sid-1"},
        },
        Subject("complex", iss=ISS, sub="jane", sid="sid-1"),
    ),
]


@pytest.mark.parametrize(
    ("members", "subject"),
    COMPLEX,
    ids=["iss_sub user", "opaque user", "email user", "session", "user and session"],
)
def test_a_complex_subject_gives_its_user_and_session(
    members: dict[str, Any], subject: Subject
) -> None:
    assert parse_subject({"format": "complex"} | members) == subject


def test_a_complex_subjects_other_members_are_ignored() -> None:
    obj = {
        "format": "complex",
        "user": {"format": "opaque", "id": "u-1"},
        "device": {"format": "iss_sub", "iss": ISS, "sub": "e9297990"},
        "tenant": {"format": "opaque", "id": "123456789"},
        "group": "anything",
    }
    assert parse_subject(obj) == Subject("complex", sub="u-1")


def test_members_a_format_does_not_define_are_ignored() -> None:
    obj = {"format": "opaque", "id": "u-1", "display": ["Jane"]}
    assert parse_subject(obj) == Subject("opaque", sub="u-1")


@pytest.mark.parametrize(
    ("name", "limit"), [("id", MAX_ID), ("email", MAX_EMAIL), ("iss", MAX_ISSUER)]
)
def test_a_member_at_its_length_limit_is_read(name: str, limit: int) -> None:
    obj = {
        "id": {"format": "opaque", "id": "i" * limit},
        "email": {"format": "email", "email": "j@" + "e" * (limit - 2)},
        "iss": {"format": "iss_sub", "iss": "i" * limit, "sub": "s"},
    }[name]
    assert parse_subject(obj).format == obj["format"]


@pytest.mark.parametrize(
    "obj",
    [
        {"format": "phone_number", "phone_number": "+12065550100"},
        {"format": "account", "uri": "acct:jane@example.test"},
        {"format": "did", "url": "did:example:123456789abcdefghi"},
        {"format": "uri", "uri": "https://example.test/users/jane"},
        {"format": "aliases", "identifiers": [{"format": "opaque", "id": "u-1"}]},
        {"format": "saml_assertion_id", "issuer": ISS, "assertion_id": "_8e8dc5f6"},
        {"format": "Opaque", "id": "u-1"},
    ],
    ids=lambda obj: obj["format"],
)
def test_an_unknown_format_is_refused(obj: dict[str, Any]) -> None:
    assert refused(obj) == ("invalid_request", "unknown_subject_format")


@pytest.mark.parametrize(
    "members",
    [
        {"user": {"format": "jwt_id", "iss": ISS, "jti": "j-1"}},
        {"user": {"format": "complex", "session": {"format": "opaque", "id": "s"}}},
        {"user": {"format": "phone_number", "phone_number": "+12065550100"}},
        {"session": {"format": "iss_sub", "iss": ISS, "sub": "s-1"}},
    ],
    ids=["jwt_id user", "complex user", "phone user", "iss_sub session"],
)
def test_a_complex_subjects_user_or_session_in_another_format_is_refused(
    members: dict[str, Any],
) -> None:
    assert refused({"format": "complex"} | members) == ("invalid_request", "unknown_subject_format")


@pytest.mark.parametrize(
    "members",
    [{}, {"tenant": {"format": "opaque", "id": "123456789"}}],
    ids=["nothing", "tenant only"],
)
def test_a_complex_subject_without_user_or_session_is_refused(members: dict[str, Any]) -> None:
    assert refused({"format": "complex"} | members) == ("invalid_request", "no_subject")


BAD = [
    ("not an object", "opaque:u-1"),
    ("null", None),
    ("a list", [{"format": "opaque", "id": "u-1"}]),
    ("no format", {"id": "u-1"}),
    ("format not a string", {"format": ["opaque"], "id": "u-1"}),
    ("member missing", {"format": "iss_sub", "iss": ISS}),
    ("member not a string", {"format": "opaque", "id": 12345}),
    ("member empty", {"format": "opaque", "id": ""}),
    ("member too long", {"format": "opaque", "id": "i" * (MAX_ID + 1)}),
    ("iss too long", {"format": "iss_sub", "iss": "i" * (MAX_ISSUER + 1), "sub": "s"}),
    ("email too long", {"format": "email", "email": "j@" + "e" * (MAX_EMAIL - 1)}),
    ("control character", {"format": "opaque", "id": "u-1\r\nX-Injected: 1"}),
    ("zero-width character", {"format": "opaque", "id": "u-1\u200b"}),
    ("email without @", {"format": "email", "email": "jane.example.test"}),
    ("email only @ at an end", {"format": "email", "email": "jane@"}),
    ("complex user not an object", {"format": "complex", "user": "jane"}),
    ("complex user member bad", {"format": "complex", "user": {"format": "opaque", "id": 1}}),
]


@pytest.mark.parametrize("obj", [b[1] for b in BAD], ids=[b[0] for b in BAD])
def test_a_malformed_subject_is_refused(obj: object) -> None:
    assert refused(obj) == ("invalid_request", "bad_subject")
