"""The two runners of ``sessionsvc._redis.run``, each against a real Redis: every effect, the
NOSCRIPT rule, errors thrown into the op (a Redis error as ``StoreUnavailable``)."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Callable
from typing import Any

import pytest
import redis
import redis.asyncio
from redis_server import free_port

from sessionsvc._redis.hotconn import AsyncHotConnection, HotConnection
from sessionsvc._redis.run import Command, Op, Sleep, Transaction, arun, run
from sessionsvc._redis.scripts import SCRIPTS
from sessionsvc.errors import StoreUnavailable

pytestmark = pytest.mark.redis

Runner = Callable[[str, Op[Any]], Any]


def sync_runner(url: str, op: Op[Any]) -> Any:
    client = redis.Redis.from_url(url)
    hot = HotConnection(client)
    slept: list[float] = []
    try:
        return run(client, op, hot=hot, wait=slept.append), slept
    finally:
        hot.close()
        client.close()


def async_runner(url: str, op: Op[Any]) -> Any:
    async def body() -> Any:
        client = redis.asyncio.Redis.from_url(url)
        hot = AsyncHotConnection(client)
        try:
            return await arun(client, op, hot=hot), None
        finally:
            await hot.aclose()
            await client.aclose()

    return asyncio.run(body())


@pytest.fixture(params=[sync_runner, async_runner], ids=["run", "arun"])
def runner(request: pytest.FixtureRequest) -> Runner:
    return request.param  # type: ignore[no-any-return]


def test_every_effect_and_its_reply(runner: Runner, redis_url: str) -> None:
    def op() -> Op[list[Any]]:
        seen = [(yield Command(("SET", "run:k", "v")))]
        seen.append((yield Command(("GET", "run:k"), hot=True)))  # raw, on the hot connection
        seen.append(
            (yield Transaction([("INCR", "run:n"), ("HGET", "run:k", "f"), ("GET", "run:k")]))
        )
        seen.append((yield Sleep(0.001)))
        return seen

    (set_, get, (incr, wrongtype, value), slept), _ = runner(redis_url, op())
    assert (set_, get, incr, value, slept) == (True, b"v", 1, b"v", None)
    assert isinstance(wrongtype, redis.ResponseError)  # in place, the others still answered


def test_a_script_is_loaded_on_noscript_and_run_again(runner: Runner, redis_url: str) -> None:
    with redis.Redis.from_url(redis_url) as client:
        client.script_flush()

    def op() -> Op[Any]:
        return (yield SCRIPTS["list"].call({"idx": "ss:{u:YQ}:idx"}, {"now": "1"}))

    assert runner(redis_url, op())[0] == []
    with redis.Redis.from_url(redis_url) as client:
        assert client.script_exists(SCRIPTS["list"].sha) == [True]
    assert runner(redis_url, op())[0] == []  # now cached: EVALSHA only


def test_a_redis_error_is_thrown_into_the_op_as_store_unavailable(runner: Runner) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens

    def op() -> Op[str]:
        try:
            yield Command(("GET", "k"))
        except StoreUnavailable as exc:
            assert isinstance(exc.redis_error, redis.ConnectionError)
            return "caught"
        return "unreached"

    assert runner(url, op())[0] == "caught"

    def uncaught() -> Op[None]:
        yield Command(("GET", "k"))

    with pytest.raises(StoreUnavailable, match="redis: ConnectionError"):
        runner(url, uncaught())


def test_an_error_reply_and_other_failures_reach_the_op_as_themselves(
    runner: Runner, redis_url: str
) -> None:
    def op() -> Op[list[str]]:
        caught = []
        broken = Transaction(None)  # type: ignore[arg-type]  # fails in the runner, not Redis
        for effect in (Command(("NOSUCHCOMMAND",)), broken):
            try:
                yield effect
            except StoreUnavailable as exc:
                caught.append(type(exc.redis_error).__name__)
            except Exception as exc:
                caught.append(type(exc).__name__)
        return caught

    assert runner(redis_url, op())[0] == ["ResponseError", "TypeError"]


def test_the_sync_runner_sleeps_with_its_owners_wait(redis_url: str) -> None:
    def op() -> Op[None]:
        yield Sleep(0.25)
        yield Sleep(2.0)

    assert sync_runner(redis_url, op())[1] == [0.25, 2.0]  # no real sleep: the owner's wait


def test_no_reply_is_held_while_the_next_effect_waits() -> None:
    """A snapshot's reply (a million ids) must not stay alive while the tail read blocks."""

    class Reply:
        pass

    seen: list[bool] = []

    class Client:
        def execute_command(self, *args: Any) -> Any:
            if args[0] == "SNAPSHOT":
                reply = Reply()
                held.append(weakref.ref(reply))
                return reply
            gc.collect()
            seen.append(held[0]() is None)  # the tail "blocks" here
            return None

    held: list[weakref.ref[Reply]] = []

    def op() -> Op[None]:
        assert isinstance((yield Command(("SNAPSHOT",))), Reply)  # used, then dropped
        yield Command(("XREAD",))

    run(Client(), op())
    assert seen == [True]
