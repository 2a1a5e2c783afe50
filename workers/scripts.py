"""``ScriptRunner``: many script calls in one pipelined round trip, batched where possible.

Every ``APPLY`` call of a batch goes as one ``apply_batch`` script (one script invocation for
hundreds of revocations); the session scripts (logout, logout_all) go beside it. A failing batch is
retried call by call in the same way, so one bad revocation cannot hold back the rest. The
scripts, their EVALSHA commands and the NOSCRIPT rule (Redis restarted, or SCRIPT FLUSH: load,
then send again) are the registry's (``sessionsvc._redis.scripts``); a pipeline that met
NOSCRIPT loads every script once and is sent again.

At ``SESSIONSVC_DURABILITY=replica`` every run is one pipeline on one pooled connection, the
barrier write and ``WAIT`` last (``sessionsvc._redis.durability``); when no replica confirms it
in time the whole run raises ``NotConfirmed`` (a Redis error to the worker: its entries are not
acknowledged, so they stay pending and are applied again, idempotently, and acknowledged once a
replica confirms).

On Redis Cluster such a run goes on one connection to the primary serving ``{rev}`` (the
barrier's slot, where every revocation of the worker is applied: ``sessionsvc._redis.pinned``),
not through the cluster pipeline, which would send the keyless ``WAIT`` to an arbitrary node; a
MOVED or ASK reply there raises (a Redis error: the worker retries) after the slot map is
re-read. At ``aof``, ``check_aof`` reads ``INFO persistence`` of the server, or on a cluster of
the primaries serving ``{rev}`` and the intakes' slot.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any, Final

import redis
from redis.exceptions import ResponseError

from sessionsvc._redis.bounded import BoundedConnection
from sessionsvc._redis.clients import REDIS_ERRORS, SyncClient, is_cluster
from sessionsvc._redis.durability import INFO_PERSISTENCE, Durable, check_aof
from sessionsvc._redis.pinned import pinned
from sessionsvc._redis.scripts import SCRIPTS, Call, is_noscript, run
from sessionsvc._redis.slotpool import must_resolve
from sessionsvc.errors import RevocationNotDurable

from .core import APPLY

__all__ = ["NotConfirmed", "ScriptRunner"]

_BATCH = SCRIPTS["apply_batch"]


REVOKING: Final = frozenset({APPLY, "apply_batch", "logout", "logout_all"})
"""The scripts that apply revocations: a run holding one is confirmed (housekeeping is not)."""


class NotConfirmed(RevocationNotDurable, redis.RedisError):
    """Applied on the primary, not confirmed by a replica in time: the worker retries it as it
    retries any Redis error, and acknowledges nothing of it meanwhile."""


class ScriptRunner:
    """Runs ``Call``s by EVALSHA on one client; a single call goes on ``hot`` when given (the
    caller's own connection: the lowest-latency path for one event)."""

    def __init__(
        self,
        client: SyncClient,
        hot: BoundedConnection | None = None,
        durable: Durable | None = None,
    ) -> None:
        self.client = client
        self._send: Callable[..., Any] = hot or client.execute_command
        self._pooled: Callable[..., Any] = client.execute_command
        self._level = durable  # (aof: check_aof)
        self._durable = durable if durable is not None and durable.tail else None
        self._tail = self._durable.tail if self._durable is not None else ()
        self._cluster = is_cluster(client)

    def run(self, calls: Sequence[Call]) -> list[Any]:
        """One reply (or the exception) per call, in order; ``NotConfirmed`` when a replica
        had to confirm them and none did in time."""
        if not calls:
            return []
        tail = self._tail if any(c.script in REVOKING for c in calls) else ()
        if len(calls) == 1 and not tail:  # the common case: no pipeline, lowest latency
            return [self._one(calls[0])]
        for _attempt in range(2):
            results, acks = self._pipeline(calls, tail, batch=len(calls) > 1)
            if any(isinstance(r, ResponseError) and not is_noscript(r) for r in results):
                results, acks = self._pipeline(calls, tail, batch=False)
            if not any(is_noscript(r) for r in results):
                break
            self.load_all()
        if tail and self._durable is not None:
            self._confirm(self._durable, len(calls), acks)
        return results

    @staticmethod
    def _confirm(durable: Durable, count: int, acks: Any) -> None:
        """``NotConfirmed`` unless ``acks`` (the ``WAIT`` reply) counts a replica."""
        try:
            durable.confirmed([None, acks if not isinstance(acks, Exception) else 0])
        except RevocationNotDurable as exc:
            what = f"a batch of {count} revocation event(s)"
            raise NotConfirmed(what, exc.acknowledged, exc.wanted, durable.timeout) from None

    def check_aof(self, *keys: str) -> None:
        """At ``aof``: ``ConfigError`` unless ``INFO persistence`` says AOF is on, on the
        server, or on a cluster on the primaries serving ``{rev}`` and each of ``keys``' slots
        (the intakes'); at the other levels nothing."""
        if self._level is None or self._level.level != "aof":
            return
        if not self._cluster:
            check_aof(self.client.info("persistence"))
            return
        for key in (self._level.barrier, *keys):
            [info] = self._pinned(key, [INFO_PERSISTENCE])
            if isinstance(info, Exception):
                raise info
            check_aof(info)

    def load_all(self) -> None:
        """SCRIPT LOAD every script (at start and after a reconnect: no first-event NOSCRIPT)."""
        for script in SCRIPTS.values():
            self._pooled(*script.load_args())

    def _one(self, call: Call) -> Any:
        try:
            return run(self._send, call)
        except ResponseError as exc:  # a script error is this call's result, as in a pipeline
            return exc

    def _pipeline(
        self, calls: Sequence[Call], tail: Sequence[tuple[Any, ...]], *, batch: bool
    ) -> tuple[list[Any], Any]:
        """The replies of ``calls``, and of the last of ``tail`` (``WAIT``; ``None``: none)."""
        applies = [i for i, c in enumerate(calls) if c.script == APPLY] if batch else []
        batched = set(applies)
        others = [i for i in range(len(calls)) if i not in batched]
        commands: list[tuple[Any, ...]] = []

        def queue(*args: Any) -> None:
            commands.append(args)

        if applies:
            one = _BATCH.batch(calls[applies[0]].keys, [calls[i].args for i in applies])
            queue(*_BATCH.evalsha_args(one.keys, one.args))
        for i in others:
            c = calls[i]
            queue(*SCRIPTS[c.script].evalsha_args(c.keys, c.args))
        for args in tail:  # the barrier, then WAIT: on this pipeline's one connection
            queue(*args)
        replies = self._send_all(commands, pin=tail[0][1] if tail else None)
        acks = replies[-1] if tail else None
        if tail:
            del replies[-len(tail) :]
        results: list[Any] = [None] * len(calls)
        if applies:
            batch_reply = replies.pop(0)
            for n, i in enumerate(applies):
                results[i] = batch_reply if isinstance(batch_reply, Exception) else batch_reply[n]
        for i, reply in zip(others, replies, strict=True):
            results[i] = reply
        return results, acks

    def _send_all(self, commands: list[tuple[Any, ...]], pin: str | None) -> list[Any]:
        """``commands`` in one pipeline, error replies in place; with ``pin`` (a run to be
        confirmed) on a cluster on one connection to the primary serving ``pin``'s slot."""
        if pin is not None and self._cluster:
            return self._pinned(pin, commands)
        pipe = self.client.pipeline(transaction=False)
        for args in commands:
            pipe.execute_command(*args)
        replies: list[Any] = pipe.execute(raise_on_error=False)
        return replies

    def _pinned(self, key: str, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """``pinned``; a reply saying the slot moved (MOVED, ASK, CLUSTERDOWN…) raises, and
        after it or any failure that may mean so the slot map is read again."""
        try:
            replies = pinned(self.client, key, commands)
            for reply in replies:
                if isinstance(reply, Exception) and must_resolve(reply):
                    raise reply
        except REDIS_ERRORS as exc:
            if must_resolve(exc):
                with contextlib.suppress(*REDIS_ERRORS):
                    self.client.nodes_manager.initialize()  # type: ignore[union-attr]
            raise
        return replies
