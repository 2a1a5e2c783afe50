"""The web core's body parsing and the app's own origin (pure): what both adapters use."""

from __future__ import annotations

import pytest

from sessionsvc.integrations.web.body import MAX_BODY, body_fields, declared_size
from sessionsvc.integrations.web.http import Problem, own_origin


def status(call: object, *args: object) -> int:
    with pytest.raises(Problem) as caught:
        call(*args)  # type: ignore[operator]
    return caught.value.status


def test_json_objects_and_forms_are_fields() -> None:
    assert body_fields("application/json; charset=utf-8", b'{"a": 1}') == {"a": 1}
    assert body_fields("Application/X-WWW-Form-Urlencoded", b"a=1&b=") == {"a": "1", "b": ""}
    assert body_fields(None, b"") == {}  # (an empty body, whatever its type)


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("application/json", b"[1]", 400),
        ("application/json", b"{", 400),
        ("application/json", b"[" * 15000, 400),
        ("application/x-www-form-urlencoded", b"\xff=1", 400),
        ("application/x-www-form-urlencoded", b"&".join([b"a=1"] * 33), 400),
        ("text/plain", b"a=1", 415),
        (None, b"a=1", 415),
        ("application/json", b" " * (MAX_BODY + 1), 413),
    ],
)
def test_bad_bodies_are_refused(content_type: str | None, body: bytes, expected: int) -> None:
    assert status(body_fields, content_type, body) == expected


@pytest.mark.parametrize("value", [str(MAX_BODY + 1), "-1", "1e3", "١٢", " 12"])
def test_a_declared_size_over_the_limit_or_not_a_number_is_413(value: str) -> None:
    assert status(declared_size, value) == 413


def test_a_declared_size_within_the_limit_passes() -> None:
    declared_size(None)
    declared_size(str(MAX_BODY))


@pytest.mark.parametrize(
    ("scheme", "host", "port", "origin"),
    [
        ("https", "app.example", None, "https://app.example"),
        ("https", "app.example", 443, "https://app.example"),
        ("http", "app.example", 8080, "http://app.example:8080"),
        ("wss", "app.example", 443, "https://app.example"),
        ("ws", "app.example", 8000, "http://app.example:8000"),
        ("HTTP", "::1", 5000, "http://[::1]:5000"),
        ("https", "[::1]", None, "https://[::1]"),
    ],
)
def test_own_origin(scheme: str, host: str, port: int | None, origin: str) -> None:
    assert own_origin(scheme, host, port) == origin
