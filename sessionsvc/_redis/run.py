"""Pure cores, two runners: the one way sessionsvc talks to Redis.

An operation (``Op``) is a generator that yields effects and receives their replies, no I/O;
``run`` (redis-py) and ``arun`` (``redis.asyncio``) execute them and differ in one ``await``.
Effects: ``Command`` (``hot``: on the owner's ``HotConnection``), ``Transaction`` (MULTI/EXEC,
error replies in place: ``raise_on_error=False``), ``Sleep``, a script ``Call`` of the registry
(``sessionsvc._redis.scripts``: EVALSHA; on NOSCRIPT, SCRIPT LOAD and again: ``_scripts``).
A failed effect is thrown into the op at its ``yield``: a Redis error as ``StoreUnavailable``
(mapped by ``sessionsvc._boundary``, in ``_Steps.__exit__`` for both runners), anything else as
itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar, cast

import redis

from sessionsvc._boundary import map_exceptions
from sessionsvc._redis.scripts import SCRIPTS, Call, is_noscript
from sessionsvc.errors import StoreUnavailable

__all__ = ["Call", "Command", "Effect", "Op", "Sleep", "Transaction", "arun", "run"]

T = TypeVar("T")
_REDIS = map_exceptions()  # redis-py errors → StoreUnavailable (sessionsvc._boundary)


@dataclass(slots=True)  # effects are not frozen: a frozen init costs ~1 µs per tail read
class Command:
    """One command; its reply as the client (or, ``hot``, the hot connection) gives it."""

    args: tuple[Any, ...]
    hot: bool = False


@dataclass(slots=True)
class Transaction:
    """Commands in one MULTI/EXEC; their replies, an error reply as its exception, in place."""

    commands: Sequence[tuple[Any, ...]]


@dataclass(slots=True)
class Sleep:
    """Wait ``seconds`` (the sync owner may wake it early to stop); the reply is ``None``."""

    seconds: float


Effect = Command | Transaction | Sleep | Call
Op = Generator[Effect, Any, T]


def run(client: Any, op: Op[T], *, hot: Any = None, wait: Callable[[float], Any] = time.sleep) -> T:
    """Run ``op`` on a ``redis.Redis`` (``hot``: a ``HotConnection``; ``wait``: how to sleep)."""
    steps = _Steps(op)
    while (effect := steps.next()) is not None:
        with steps:
            steps.reply = _begin(client, effect, hot, wait)
    return steps.value  # type: ignore[no-any-return]


async def arun(client: Any, op: Op[T], *, hot: Any = None) -> T:
    """``run`` on a ``redis.asyncio.Redis`` (``hot``: an ``AsyncHotConnection``)."""
    steps = _Steps(op)
    while (effect := steps.next()) is not None:
        with steps:
            steps.reply = await _begin(client, effect, hot, asyncio.sleep)
    return steps.value  # type: ignore[no-any-return]


def _begin(client: Any, effect: Effect, hot: Any, wait: Callable[[float], Any]) -> Any:
    """Execute a plain effect: the reply from a sync client, an awaitable from an async one."""
    if type(effect) is Command:
        return hot(*effect.args) if effect.hot else client.execute_command(*effect.args)
    if type(effect) is Transaction:
        pipe = client.pipeline(transaction=True)
        for command in effect.commands:
            pipe.execute_command(*command)
        return pipe.execute(raise_on_error=False)
    if type(effect) is Sleep:
        return wait(effect.seconds)
    raise TypeError(f"not an effect: {effect!r}")


class _Steps:
    """Drives an op: the next effect, after sending the last reply or throwing in its failure
    (as the context around executing it, it keeps any ``Exception`` for the op: a Redis error
    as ``StoreUnavailable``, mapped by the boundary)."""

    __slots__ = ("_op", "error", "reply", "value")

    def __init__(self, op: Op[Any]) -> None:
        self._op = _scripts(op)
        self.reply: Any = None
        self.error: Exception | None = None
        self.value: Any = None

    def next(self) -> Effect | None:
        """The next effect, or ``None`` once the op returned (``value``)."""
        error, self.error = self.error, None
        reply, self.reply = self.reply, None  # held by no one while the next effect waits
        try:
            return self._op.send(reply) if error is None else self._op.throw(error)
        except StopIteration as done:
            self.value = done.value
            return None

    def __enter__(self) -> None:
        self.reply = None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if exc is None:
            return False
        if isinstance(exc, redis.RedisError):
            self.error = _REDIS.mapped(exc)  # type: ignore[assignment]
        elif isinstance(exc, Exception):
            self.error = exc
        else:
            return False  # a cancellation, an interrupt: not the op's to handle
        return True


def _scripts(op: Op[T]) -> Op[T]:
    """``op`` with each script run as EVALSHA; on NOSCRIPT (a restarted or failed-over Redis)
    SCRIPT LOAD and EVALSHA again."""
    reply: Any = None
    error: Exception | None = None
    while True:
        try:
            effect = op.send(reply) if error is None else op.throw(error)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        reply, error = None, None  # e.g. a snapshot's million ids: not kept while the tail blocks
        try:
            if type(effect) in (Command, Transaction, Sleep):
                reply = yield effect
            else:
                script_call = cast("Call", effect)
                script = SCRIPTS[script_call.script]
                call = script.evalsha_args(script_call.keys, script_call.args)
                try:
                    reply = yield Command(call)
                except StoreUnavailable as exc:
                    if not is_noscript(exc.redis_error):
                        raise
                    yield Command(script.load_args())
                    reply = yield Command(call)
        except Exception as exc:
            reply, error = None, exc
