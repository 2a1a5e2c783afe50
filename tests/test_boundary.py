"""``sessionsvc._boundary``: every table maps what it names to its declared ``SessionError``
subclass, most specific first, without secrets in the message."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Sequence

import jwt
import pydantic
import pydantic_settings
import pytest
import redis

from sessionsvc._boundary import RULES, Rule, map_exceptions, redis_text
from sessionsvc.config import settings as config
from sessionsvc.errors import ConfigError, SessionError, StoreUnavailable
from sessionsvc.revocation import events
from sessionsvc.tokens import keys

TABLES = {
    "default": RULES,
    "settings": config._SETTINGS_BOUNDARY.rules,
    "key material": keys._KEY_MATERIAL,
    "event models": events._MODELS.rules,
}


def shadowed(rules: Sequence[Rule]) -> list[str]:
    """Rules that can never match: a source listed after one of its bases (or itself)."""
    return [
        f"{later.source.__name__} after {earlier.source.__name__}"
        for i, earlier in enumerate(rules)
        for later in rules[i + 1 :]
        if issubclass(later.source, earlier.source)
    ]


def instance(source: type[Exception]) -> Exception:
    if issubclass(source, pydantic.ValidationError):
        try:
            pydantic.TypeAdapter(int).validate_python("hunter2")
        except pydantic.ValidationError as exc:
            return exc
    return source("boom")


@pytest.mark.parametrize("name", TABLES)
def test_every_table_is_most_specific_first(name: str) -> None:
    assert shadowed(TABLES[name]) == []


def test_the_order_check_catches_a_subclass_after_its_base() -> None:
    bad = (RULES[-1], Rule(redis.ConnectionError, StoreUnavailable, RULES[-1].build, True))
    assert shadowed(bad) == ["ConnectionError after RedisError"]


@pytest.mark.parametrize(
    ("table", "rule"), [(name, rule) for name, rules in TABLES.items() for rule in rules]
)
def test_each_source_maps_to_its_declared_target(table: str, rule: Rule) -> None:
    original = instance(rule.source)
    with pytest.raises(SessionError) as info, map_exceptions("doing it", TABLES[table]):
        raise original
    assert type(info.value) is rule.target
    if rule.chain:
        assert info.value.__cause__ is original
    else:  # its text may hold input or key material: not chained, not shown
        assert info.value.__cause__ is None
        assert info.value.__suppress_context__
    assert "hunter2" not in str(info.value)


def test_the_default_targets() -> None:
    assert {rule.source: rule.target for rule in RULES} == {
        pydantic_settings.SettingsError: ConfigError,
        pydantic.ValidationError: ConfigError,
        jwt.exceptions.PyJWKError: ConfigError,
        jwt.PyJWTError: ConfigError,
        redis.exceptions.RedisClusterException: StoreUnavailable,
        redis.RedisError: StoreUnavailable,
    }


def test_other_exceptions_and_session_errors_pass_through_unchanged() -> None:
    boundary = map_exceptions()
    with pytest.raises(KeyError), boundary:
        raise KeyError("x")
    mine = ConfigError("mine")
    with pytest.raises(ConfigError) as info, map_exceptions(rules=keys._KEY_MATERIAL):
        raise mine
    assert info.value is mine
    with boundary:  # reusable, and silent without an exception
        pass


def test_it_works_around_awaited_calls() -> None:
    async def fails() -> None:
        raise redis.TimeoutError("Timeout reading from h:6379")

    async def call() -> None:
        with map_exceptions("could not publish"):
            await fails()

    with pytest.raises(StoreUnavailable, match=r"^could not publish: TimeoutError: Timeout"):
        asyncio.run(call())


def test_a_redis_message_keeps_its_type_and_text_without_secrets() -> None:
    with pytest.raises(StoreUnavailable) as info, map_exceptions():
        raise redis.ConnectionError("Error 111 connecting to h:6379. Connection refused.")
    assert (
        str(info.value)
        == "redis: ConnectionError: Error 111 connecting to h:6379. Connection refused."
    )
    echoed = redis.ResponseError("ERR unknown command 'x', with args beginning with: 'hunter2' ")
    assert redis_text(echoed) == "ResponseError: ERR unknown command 'x'"
    assert "hunter2" not in redis_text(redis.RedisError("bad url redis://u:hunter2@h:6379/0"))
    assert redis_text(redis.RedisError()) == "RedisError"
    assert len(redis_text(redis.RedisError("x" * 1000))) == 200


@pytest.mark.parametrize(
    "text",
    [
        "Missing key. Command: ('EVALSHA', 'abc', 1, 'sid-secret')",
        "Invalid args in command: ('SET', 'sid-secret')",
    ],
)
def test_a_cluster_client_error_never_prints_the_command_it_echoes(text: str) -> None:
    shown = redis_text(redis.exceptions.RedisClusterException(text))
    assert "sid-secret" not in shown and shown.startswith("RedisClusterException: ")


def test_no_traceback_of_a_store_error_prints_what_redis_echoed() -> None:
    echoed = redis.ResponseError("unknown command 'FOO', with args beginning with: 'sid-secret' ")
    with pytest.raises(StoreUnavailable) as info, map_exceptions():
        raise echoed
    printed = "".join(traceback.format_exception(info.value))
    assert "sid-secret" not in printed
    assert info.value.redis_error is echoed  # for callers that must tell errors apart
