"""Pure cores, two runners: the one way sessionsvc talks to Redis.

An operation is a generator (``Op``) that yields one effect at a time and receives its reply;
it does no I/O itself. ``run`` (redis-py) and ``arun`` (``redis.asyncio``) execute the effects
and send the replies back, so every decision is written once and both shells stay a few lines.

Effects: ``Command`` (one command; ``hot`` ones go on the owner's ``HotConnection``, raw
replies), ``Transaction`` (one MULTI/EXEC, raw replies with error replies in place: redis-py's
``raise_on_error=False``), ``Sleep`` (a wait the owner can cut short) and a ``Script`` (anything
naming a script by ``sha`` and ``source``, e.g. ``sessions.model.Call``: EVALSHA, and on NOSCRIPT
SCRIPT LOAD and once more).

A failed effect is thrown into the op at its ``yield``: a Redis error as ``StoreUnavailable``
(here, once per runner), any other exception as itself. An op that does not catch it ends with it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import redis
from redis.exceptions import NoScriptError

from sessionsvc.errors import StoreUnavailable

__all__ = ["Command", "Effect", "Op", "Script", "Sleep", "Transaction", "arun", "run"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Command:
    """One command; its reply as the client (or, ``hot``, the hot connection) gives it."""

    args: tuple[Any, ...]
    hot: bool = False


@dataclass(frozen=True, slots=True)
class Transaction:
    """Commands in one MULTI/EXEC; their replies, an error reply as its exception, in place."""

    commands: Sequence[tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait ``seconds`` (the sync owner may wake it early to stop); the reply is ``None``."""

    seconds: float


class Script(Protocol):
    """One script invocation: what EVALSHA needs (``sessions.model.Call`` is one)."""

    @property
    def sha(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def keys(self) -> Sequence[str]: ...
    @property
    def args(self) -> Sequence[Any]: ...


Effect = Command | Transaction | Sleep | Script
Op = Generator[Effect, Any, T]


def _unavailable(exc: redis.RedisError) -> StoreUnavailable:
    error = StoreUnavailable(f"redis: {type(exc).__name__}: {exc}")
    error.__cause__ = exc
    return error


def run(client: Any, op: Op[T], *, hot: Any = None, wait: Callable[[float], Any] = time.sleep) -> T:
    """Run ``op`` on a ``redis.Redis`` (``hot``: a ``HotConnection``; ``wait``: how to sleep)."""
    reply: Any = None
    error: BaseException | None = None
    try:
        while True:
            effect = op.send(reply) if error is None else op.throw(error)
            error = None
            try:
                if type(effect) is Command:
                    reply = (
                        hot(*effect.args) if effect.hot else client.execute_command(*effect.args)
                    )
                elif type(effect) is Transaction:
                    pipe = client.pipeline(transaction=True)
                    for command in effect.commands:
                        pipe.execute_command(*command)
                    reply = pipe.execute(raise_on_error=False)
                elif type(effect) is Sleep:
                    reply = wait(effect.seconds)
                else:
                    reply = _evalsha(client, effect)  # type: ignore[arg-type]
            except redis.RedisError as exc:
                error = _unavailable(exc)
            except Exception as exc:
                error = exc
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def arun(client: Any, op: Op[T], *, hot: Any = None) -> T:
    """``run`` on a ``redis.asyncio.Redis`` (``hot``: an ``AsyncHotConnection``)."""
    reply: Any = None
    error: BaseException | None = None
    try:
        while True:
            effect = op.send(reply) if error is None else op.throw(error)
            error = None
            try:
                if type(effect) is Command:
                    call = hot(*effect.args) if effect.hot else client.execute_command(*effect.args)
                    reply = await call
                elif type(effect) is Transaction:
                    pipe = client.pipeline(transaction=True)
                    for command in effect.commands:
                        pipe.execute_command(*command)
                    reply = await pipe.execute(raise_on_error=False)
                elif type(effect) is Sleep:
                    reply = None
                    await asyncio.sleep(effect.seconds)
                else:
                    reply = await _aevalsha(client, effect)  # type: ignore[arg-type]
            except redis.RedisError as exc:
                error = _unavailable(exc)
            except Exception as exc:
                error = exc
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def _evalsha(client: Any, script: Script) -> Any:
    # EVALSHA; on NOSCRIPT (a restarted or failed-over Redis) load the script and retry once
    try:
        return client.evalsha(script.sha, len(script.keys), *script.keys, *script.args)
    except NoScriptError:
        client.script_load(script.source)
        return client.evalsha(script.sha, len(script.keys), *script.keys, *script.args)


async def _aevalsha(client: Any, script: Script) -> Any:
    try:
        return await client.evalsha(script.sha, len(script.keys), *script.keys, *script.args)
    except NoScriptError:
        await client.script_load(script.source)
        return await client.evalsha(script.sha, len(script.keys), *script.keys, *script.args)
