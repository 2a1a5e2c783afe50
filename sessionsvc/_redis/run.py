"""Pure cores, two runners: the one way sessionsvc talks to Redis.

An operation (``Op``) is a generator that yields effects and receives their replies, no I/O;
``run`` (redis-py) and ``arun`` (``redis.asyncio``) execute them and differ in one ``await``.
Effects: ``Command`` (``hot``: on the owner's ``HotConnection``), ``Transaction`` (MULTI/EXEC,
error replies in place: ``raise_on_error=False``), ``Sleep``, a script ``Call`` of the registry
(``sessionsvc._redis.scripts``: EVALSHA; on NOSCRIPT, SCRIPT LOAD and again: ``_Steps``).
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
    """Execute one effect: the reply from a sync client, an awaitable from an async one."""
    kind = type(effect)
    if kind is Call:
        call = cast("Call", effect)
        return client.execute_command(*SCRIPTS[call.script].evalsha_args(call.keys, call.args))
    if kind is Command:
        command = cast("Command", effect)
        return hot(*command.args) if command.hot else client.execute_command(*command.args)
    if kind is Transaction:
        pipe = client.pipeline(transaction=True)
        for args in cast("Transaction", effect).commands:
            pipe.execute_command(*args)
        return pipe.execute(raise_on_error=False)
    if kind is Sleep:
        return wait(cast("Sleep", effect).seconds)
    raise TypeError(f"not an effect: {effect!r}")


class _Steps:
    """Drives an op: the next effect, after sending the last reply or throwing in its failure
    (as the context around executing it, it keeps any ``Exception`` for the op: a Redis error
    as ``StoreUnavailable``, mapped by the boundary). The one NOSCRIPT rule: a script call that
    Redis answers NOSCRIPT (a restarted or failed-over Redis, SCRIPT FLUSH) is followed, before
    the op hears anything, by SCRIPT LOAD and the same call again, once."""

    __slots__ = ("_last", "_op", "_pending", "_retried", "error", "reply", "value")

    def __init__(self, op: Op[Any]) -> None:
        self._op = op
        self._last: Effect | None = None
        self._pending: list[Effect] = []  # SCRIPT LOAD, then the call again (after NOSCRIPT)
        self._retried = False
        self.reply: Any = None
        self.error: Exception | None = None
        self.value: Any = None

    def next(self) -> Effect | None:
        """The next effect, or ``None`` once the op returned (``value``)."""
        error, self.error = self.error, None
        reply, self.reply = self.reply, None  # held by no one while the next effect waits
        if self._pending:
            if error is None:  # the load's reply is dropped; the retried call's goes to the op
                return self._pending.pop(0)
            self._pending.clear()  # the load failed: the op hears that
        self._retried = False
        try:
            effect = self._op.send(reply) if error is None else self._op.throw(error)
        except StopIteration as done:
            self.value = done.value
            return None
        self._last = effect
        return effect

    def __enter__(self) -> None:
        self.reply = None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if exc is None:
            return False
        if isinstance(exc, redis.RedisError):
            last = self._last
            if type(last) is Call and is_noscript(exc) and not self._retried:
                self._retried = True
                self._pending = [Command(SCRIPTS[last.script].load_args()), last]
                return True
            self.error = _REDIS.mapped(exc)  # type: ignore[assignment]
        elif isinstance(exc, Exception):
            self.error = exc
        else:
            return False  # a cancellation, an interrupt: not the op's to handle
        return True
