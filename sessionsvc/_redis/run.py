"""Pure cores, two runners: the one way sessionsvc talks to Redis.

An operation (``Op``) is a generator that yields effects and receives their replies, no I/O;
``run`` (redis-py) and ``arun`` (``redis.asyncio``) execute them and differ in one ``await``.
Effects: ``Command`` (``hot``: on the owner's ``HotConnection``), ``Transaction`` (MULTI/EXEC,
error replies in place: ``raise_on_error=False``; on Redis Cluster every command of one in one
slot), ``Sleep``, a script ``Call`` of the registry
(``sessionsvc._redis.scripts``: EVALSHA; on NOSCRIPT, SCRIPT LOAD and again: ``_Steps``),
``Replicated`` (a call or command, then more commands, pipelined on one connection: the
``WAIT`` of ``sessionsvc._redis.durability``; its first error reply raised, NOSCRIPT as a call's;
on Redis Cluster that connection is to the primary serving its key's slot, ``_redis.pinned``:
a MOVED or ASK reply is raised, not followed, and the slot map re-read as after any failure).
A failed effect is thrown into the op at its ``yield``: a Redis error as ``StoreUnavailable``
(mapped by ``sessionsvc._boundary``, in ``_Steps.failed`` for both runners), anything else as
itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

from sessionsvc._boundary import map_exceptions
from sessionsvc._redis.clients import REDIS_ERRORS, is_cluster
from sessionsvc._redis.pinned import apinned, pinned
from sessionsvc._redis.scripts import SCRIPTS, Call, is_noscript
from sessionsvc._redis.slotpool import must_resolve

__all__ = ["Call", "Command", "Effect", "Op", "Replicated", "Sleep", "Transaction", "arun", "run"]

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


@dataclass(slots=True)
class Replicated:
    """``effect`` (a script call or a command), then ``tail``, pipelined on one connection
    (not MULTI/EXEC: ``WAIT`` does not block inside one); the replies of all, in order. The
    first error reply is raised (unannotated: a pipeline's annotation quotes the arguments).
    On Redis Cluster the connection is to the primary serving ``key``'s slot (``None``: the
    effect's first key; a keyless command, ``INFO``, names one)."""

    effect: Call | Command
    tail: tuple[tuple[Any, ...], ...]
    key: str | None = None


Effect = Command | Transaction | Sleep | Call | Replicated
Op = Generator[Effect, Any, T]


def run(client: Any, op: Op[T], *, hot: Any = None, wait: Callable[[float], Any] = time.sleep) -> T:
    """Run ``op`` on a ``redis.Redis`` (``hot``: a ``HotConnection``; ``wait``: how to sleep)."""
    steps = _Steps(op)
    effect = steps.send(None)
    while effect is not None:
        try:
            reply = _begin(client, effect, hot, wait)
        except Exception as exc:  # (a cancellation or an interrupt is not the op's)
            with contextlib.suppress(*REDIS_ERRORS):
                _resolve(client, exc)
            effect = steps.failed(exc)
        else:
            effect, reply = steps.send(reply), None  # held by no one while the next one waits
    return steps.value  # type: ignore[no-any-return]


async def arun(client: Any, op: Op[T], *, hot: Any = None) -> T:
    """``run`` on a ``redis.asyncio.Redis`` (``hot``: an ``AsyncHotConnection``)."""
    steps = _Steps(op)
    effect = steps.send(None)
    while effect is not None:
        try:
            reply = await _begin(client, effect, hot, asyncio.sleep)
        except Exception as exc:
            with contextlib.suppress(*REDIS_ERRORS):
                if (resolving := _resolve(client, exc)) is not None:
                    await resolving
            effect = steps.failed(exc)
        else:
            effect, reply = steps.send(reply), None  # held by no one while the next one waits
    return steps.value  # type: ignore[no-any-return]


def _begin(client: Any, effect: Effect, hot: Any, wait: Callable[[float], Any]) -> Any:
    """Execute one effect: the reply from a sync client, an awaitable from an async one."""
    if type(effect) is Call:
        script = SCRIPTS[effect.script]
        return client.execute_command(
            "EVALSHA", script.sha, len(effect.keys), *effect.keys, *effect.args
        )
    if type(effect) is Command:
        return hot(*effect.args) if effect.hot else client.execute_command(*effect.args)
    if type(effect) is Transaction:
        if isinstance(client, AsyncRedisCluster):
            return _cluster_transaction(client, effect)
        return _transaction(client, effect)
    if type(effect) is Sleep:
        return wait(effect.seconds)
    if type(effect) is Replicated:
        return _pipelined(client, effect)
    raise TypeError(f"not an effect: {effect!r}")


def _resolve(client: Any, exc: Exception) -> Any:
    """After a failure that may mean a slot moved (``slotpool.must_resolve``), a cluster client
    re-reads its slot map (an awaitable for an asyncio one). Its transaction pipelines would
    only every ``reinitialize_steps``-th failure of one pipeline: never, for ours, one each."""
    if is_cluster(client) and must_resolve(exc):
        return client.nodes_manager.initialize()
    return None


def _transaction(client: Any, effect: Transaction) -> Any:
    pipe = client.pipeline(transaction=True)
    for args in effect.commands:
        pipe.execute_command(*args)
    return pipe.execute(raise_on_error=False)


async def _cluster_transaction(client: AsyncRedisCluster, effect: Transaction) -> Any:
    """A transaction on a ``redis.asyncio`` cluster client, which must know its slot map first:
    its transaction pipeline queues each command on a thread of its own (``asyncio.run``), and
    a map first read there would leave connections on that thread's closed loop."""
    await client.initialize()
    return await _transaction(client, effect)


def _pipelined(client: Any, effect: Replicated) -> Any:
    """``Replicated`` in one pipeline: its replies (sync), or an awaitable of them (async); on
    a cluster on one connection to the primary of its key's slot (``_redis.pinned``)."""
    first = effect.effect
    if isinstance(first, Call):
        head = SCRIPTS[first.script].evalsha_args(first.keys, first.args)
        key = first.keys[0] if first.keys else ""
    else:
        head, key = first.args, str(first.args[1]) if len(first.args) > 1 else ""
    commands = [head, *effect.tail]
    if is_cluster(client):
        key = effect.key or key
        if isinstance(client, AsyncRedisCluster):
            return _araised(apinned(client, key, commands))
        return _raised(pinned(client, key, commands))
    pipe = client.pipeline(transaction=False)
    for args in commands:
        pipe.execute_command(*args)
    replies = pipe.execute(raise_on_error=False)
    return _raised(replies) if isinstance(replies, list) else _araised(replies)


def _raised(replies: list[Any]) -> list[Any]:
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


async def _araised(replies: Any) -> list[Any]:
    return _raised(await replies)


def _script_call(effect: Effect | None) -> Call | None:
    """The script call an effect runs, if any (the NOSCRIPT rule applies to it)."""
    if type(effect) is Call:
        return effect
    if type(effect) is Replicated and type(effect.effect) is Call:
        return effect.effect
    return None


class _Steps:
    """Drives an op: ``send`` a reply (or ``failed``: throw in a failure) and get its next
    effect, ``None`` once it returned (``value``). A Redis error reaches the op as
    ``StoreUnavailable`` (mapped by the boundary); any other ``Exception`` as itself. The one
    NOSCRIPT rule: a script call that Redis answers NOSCRIPT (a restarted or failed-over Redis,
    SCRIPT FLUSH) is followed, before the op hears anything, by SCRIPT LOAD and the same call
    again, once."""

    __slots__ = ("_last", "_op", "_pending", "value")

    def __init__(self, op: Op[Any]) -> None:
        self._op = op
        self._last: Effect | None = None
        self._pending: list[Effect] | None = None  # SCRIPT LOAD, then the call again
        self.value: Any = None

    def send(self, reply: Any) -> Effect | None:
        """The op's next effect after ``reply`` to its last one."""
        if self._pending:  # the load's reply is dropped; the retried call's goes to the op
            return self._pending.pop(0)
        self._pending = None
        return self._advance(self._op.send, reply)

    def failed(self, exc: Exception) -> Effect | None:
        """The op's next effect after its last one failed with ``exc``."""
        last = self._last
        error: BaseException = exc
        if isinstance(exc, REDIS_ERRORS):
            call = _script_call(last) if self._pending is None else None
            if call is not None and is_noscript(exc):
                self._pending = [last]  # type: ignore[list-item]
                return Command(SCRIPTS[call.script].load_args())
            error = _REDIS.mapped(exc)
        self._pending = None
        return self._advance(self._op.throw, error)

    def _advance(self, step: Callable[[Any], Effect], value: Any) -> Effect | None:
        try:
            effect = step(value)
        except StopIteration as done:
            self.value = done.value
            return None
        self._last = effect
        return effect
