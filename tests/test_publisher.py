"""Publisher / AsyncPublisher and ``sessionsvc revoke``: the stream entries they write, and bad
input refused before any I/O."""

from __future__ import annotations

import asyncio
import inspect
import json
import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from conftest import AUDIENCE, ISSUER, make_settings
from redis_server import free_port
from revocation_harness import raw_client, raw_entries
from sessions_harness import CountingRedis

from sessionsvc import AsyncPublisher, EventRejected, Publisher, StoreUnavailable
from sessionsvc.cli.main import main

pytestmark = pytest.mark.redis

EVENTS = "ss:events"
T = 1767225600

# (method, args, kwargs, the stream fields in wire order)
CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any], list[tuple[str, str]]]] = [
    (
        "revoke_session",
        ("7Zp",),
        {"reason": "logout"},
        [("type", "session.revoke"), ("sid", "7Zp"), ("reason", "logout")],
    ),
    (
        "revoke_session",
        ("S",),
        {"id": "evt-1", "source": "billing", "reason": "r", "at": T + 0.25},
        [
            ("type", "session.revoke"),
            ("sid", "S"),
            ("id", "evt-1"),
            ("source", "billing"),
            ("reason", "r"),
            ("at", f"{T}.25"),
        ],
    ),
    (
        "revoke_user",
        ("user-42",),
        {"reason": "password_changed"},
        [("type", "user.revoke"), ("sub", "user-42"), ("reason", "password_changed")],
    ),
    (
        "revoke_user",
        ("user-42",),
        {"before": T + 0.5},
        [("type", "user.revoke"), ("sub", "user-42"), ("before", f"{T}.5")],
    ),
    (
        "revoke_token",
        ("1f0",),
        {"exp": T},
        [("type", "token.revoke"), ("jti", "1f0"), ("exp", str(T))],
    ),
    ("revoke_token", ("1f0",), {}, [("type", "token.revoke"), ("jti", "1f0")]),
    (
        "revoke_all",
        (),
        {"before": T, "reason": "key_compromise"},
        [("type", "all.revoke"), ("before", str(T)), ("reason", "key_compromise")],
    ),
    (
        "revoke_key",
        ("k-2025",),
        {"source": "kms"},
        [("type", "key.revoke"), ("kid", "k-2025"), ("source", "kms")],
    ),
]
IDS = [f"{c[0]}-{n}" for n, c in enumerate(CALLS)]

# (method, args, kwargs, the code): every one refused before a byte goes to Redis
INVALID: list[tuple[str, tuple[Any, ...], dict[str, Any], str]] = [
    ("revoke_session", ("",), {}, "bad_field"),
    ("revoke_session", ("a\nb",), {}, "bad_field"),
    ("revoke_session", ("s" * 257,), {}, "bad_field"),
    ("revoke_session", ("S",), {"reason": ""}, "bad_field"),
    ("revoke_session", ("S",), {"colour": "red"}, "unknown_field"),
    ("revoke_user", ("u",), {"before": -1.0}, "bad_field"),
    ("revoke_user", ("u",), {"before": True}, "bad_field"),
    ("revoke_token", ("J",), {"exp": -5.0}, "bad_field"),
    ("revoke_token", ("J",), {"exp": math.nan}, "bad_field"),
    ("revoke_token", ("J",), {"exp": 1e13}, "bad_field"),
    ("revoke_all", (), {"before": math.inf}, "bad_field"),
    ("revoke_key", ("k",), {"at": "yesterday"}, "bad_field"),
    ("revoke_key", ("k",), {"reason": "r" * 5000}, "too_large"),
    ("revoke_all", (), {"before": 4e9}, "bad_field"),  # in the future: the worker would refuse
    ("revoke_user", ("u",), {"before": 4e9}, "bad_field"),
]
INVALID_IDS = [f"{c[0]}-{n}" for n, c in enumerate(INVALID)]


@pytest.fixture
def publisher(redis_url: str) -> Iterator[Publisher]:
    pub = Publisher(make_settings(redis_url=redis_url))
    yield pub
    pub.close()


def run_async(
    url: str, call: Callable[[AsyncPublisher], Any], client: redis.asyncio.Redis | None = None
) -> Any:
    async def body() -> Any:
        pub = AsyncPublisher(make_settings(redis_url=url), client=client)
        try:
            return await call(pub)
        finally:
            await pub.aclose()

    return asyncio.run(body())


@pytest.mark.parametrize(("method", "args", "kwargs", "fields"), CALLS, ids=IDS)
def test_each_method_writes_the_documented_fields(
    publisher: Publisher,
    redis_url: str,
    method: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    fields: list[tuple[str, str]],
) -> None:
    entry_id = getattr(publisher, method)(*args, **kwargs)
    with raw_client(redis_url) as client:
        assert raw_entries(client, EVENTS) == [(entry_id, fields)]


def test_the_async_publisher_writes_the_same_entries(redis_url: str) -> None:
    """Both publishers run the same ops (``PublisherCore``): one call each shows the runner."""
    method, args, kwargs, fields = CALLS[1]
    entry_id = run_async(redis_url, lambda pub: getattr(pub, method)(*args, **kwargs))
    with raw_client(redis_url) as client:
        assert raw_entries(client, EVENTS) == [(entry_id, fields)]


def test_both_publishers_document_the_same_methods() -> None:
    for name in ("revoke_session", "revoke_user", "revoke_token", "revoke_all", "revoke_key"):
        sync, coro = getattr(Publisher, name), getattr(AsyncPublisher, name)
        assert sync.__doc__ == coro.__doc__ and sync.__doc__
        assert inspect.signature(sync) == inspect.signature(coro)
        assert inspect.iscoroutinefunction(coro) and not inspect.iscoroutinefunction(sync)


@pytest.mark.parametrize(("method", "args", "kwargs", "code"), INVALID, ids=INVALID_IDS)
def test_invalid_input_is_refused_before_any_io(
    redis_url: str, method: str, args: tuple[Any, ...], kwargs: dict[str, Any], code: str
) -> None:
    client = CountingRedis.from_url(redis_url)
    client.commands = []
    pub = Publisher(make_settings(redis_url=redis_url), client=client)
    try:
        with pytest.raises(EventRejected) as info:
            getattr(pub, method)(*args, **kwargs)
        assert info.value.code == code
        assert client.commands == []
    finally:
        pub.close()


def test_redis_down_is_store_unavailable() -> None:
    settings = make_settings(
        redis_url=f"redis://127.0.0.1:{free_port()}/0", redis_connect_timeout=0.2
    )
    pub = Publisher(settings)
    try:
        with pytest.raises(StoreUnavailable):
            pub.revoke_session("S")
    finally:
        pub.close()


# -- the CLI ---------------------------------------------------------------------------------


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, redis_url: str, tmp_path: Any) -> str:
    monkeypatch.chdir(tmp_path)  # no .env file
    for name in ("ACCESS_JWKS", "REFRESH_JWKS"):
        monkeypatch.delenv(f"SESSIONSVC_{name}", raising=False)
    monkeypatch.setenv("SESSIONSVC_REDIS_URL", redis_url)
    monkeypatch.setenv("SESSIONSVC_ISSUER", ISSUER)
    monkeypatch.setenv("SESSIONSVC_AUDIENCE", AUDIENCE)
    monkeypatch.setenv("SESSIONSVC_ENV", "development")
    return redis_url


@pytest.mark.parametrize(
    ("argv", "fields"),
    [
        (
            ["session", "7Zp", "--reason", "logout"],
            [("type", "session.revoke"), ("sid", "7Zp"), ("source", "cli"), ("reason", "logout")],
        ),
        (
            ["user", "user-42", "--before", str(T)],
            [("type", "user.revoke"), ("sub", "user-42"), ("before", str(T)), ("source", "cli")],
        ),
        (
            ["token", "1f0", "--exp", str(T), "--id", "evt-7"],
            [
                ("type", "token.revoke"),
                ("jti", "1f0"),
                ("exp", str(T)),
                ("id", "evt-7"),
                ("source", "cli"),
            ],
        ),
        (
            ["all", "--before", str(T), "--source", "oncall"],
            [("type", "all.revoke"), ("before", str(T)), ("source", "oncall")],
        ),
        (
            ["key", "k-2025", "--reason", "compromised"],
            [
                ("type", "key.revoke"),
                ("kid", "k-2025"),
                ("source", "cli"),
                ("reason", "compromised"),
            ],
        ),
    ],
    ids=["session", "user", "token", "all", "key"],
)
def test_cli_revoke_writes_an_entry(
    env: str, capsys: pytest.CaptureFixture[str], argv: list[str], fields: list[tuple[str, str]]
) -> None:
    assert main(["revoke", *argv]) == 0
    out = json.loads(capsys.readouterr().out)
    with raw_client(env) as client:
        assert raw_entries(client, EVENTS) == [(out["stream_id"], fields)]


def test_cli_revoke_all_defaults_to_now(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["revoke", "all"]) == 0
    capsys.readouterr()
    with raw_client(env) as client:
        [(_, fields)] = raw_entries(client, EVENTS)
    assert dict(fields)["type"] == "all.revoke" and float(dict(fields)["before"]) > T


@pytest.mark.parametrize(
    "argv",
    [
        ["session", ""],
        ["session", "a\tb"],
        ["token", "J", "--exp", "-1"],
        ["token", "J", "--exp", "nan"],
        ["user", "u", "--before", "1e13"],
        ["key", "k", "--reason", ""],
    ],
    ids=["empty", "control", "negative", "nan", "too-big", "empty-reason"],
)
def test_cli_revoke_exits_2_on_invalid_input(
    env: str, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    assert main(["revoke", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "error" in captured.err
    with raw_client(env) as client:
        assert not client.exists(EVENTS)
