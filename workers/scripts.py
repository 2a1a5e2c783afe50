"""``ScriptRunner``: many script calls in one pipelined round trip, batched where possible.

Every ``APPLY`` call of a batch goes as one ``apply_batch`` script (one script invocation for
hundreds of revocations); the session scripts (logout, logout_all) go beside it. A failing batch is
retried call by call in the same way, so one bad revocation cannot hold back the rest; NOSCRIPT
(Redis restarted, or SCRIPT FLUSH) loads every script once and retries.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import redis
from redis.exceptions import NoScriptError, ResponseError

from sessionsvc._redis.bounded import BoundedConnection
from sessionsvc._redis.lua import source
from sessionsvc.revocation.log import APPLY_REVOCATION
from sessionsvc.sessions.core import SCRIPTS, Call

from .core import APPLY

__all__ = ["ALL_SCRIPTS", "ScriptRunner"]

HOUSEKEEP = "#!lua flags=allow-oom\n" + source("apply", "housekeep")
"""Runs even when Redis is over ``maxmemory`` (it mostly deletes: a full Redis must be able to
prune and trim its way back)."""
APPLY_BATCH = source("apply", "apply_batch")
OLDEST = source("oldest")
FORGET = source("forget")
ALL_SCRIPTS = {
    **SCRIPTS,
    APPLY: APPLY_REVOCATION,
    "housekeep": HOUSEKEEP,
    "batch": APPLY_BATCH,
    "oldest": OLDEST,
    "forget": FORGET,
}


class ScriptRunner:
    """Runs ``Call``s by EVALSHA on one client; a single call goes on ``hot`` when given (the
    caller's own connection: the lowest-latency path for one event)."""

    def __init__(self, client: redis.Redis, hot: BoundedConnection | None = None) -> None:
        self.client = client
        self._send: Callable[..., Any] = hot or client.execute_command
        self._sha = {n: hashlib.sha1(s.encode()).hexdigest() for n, s in ALL_SCRIPTS.items()}  # noqa: S324

    def run(self, calls: Sequence[Call]) -> list[Any]:
        """One reply (or the exception) per call, in order."""
        if not calls:
            return []
        if len(calls) == 1:  # the common low-traffic case: no pipeline object, lowest latency
            return [self._one(calls[0])]
        for _attempt in range(2):
            results = self._pipeline(calls, batch=len(calls) > 1)
            if any(
                isinstance(r, ResponseError) and not isinstance(r, NoScriptError) for r in results
            ):
                results = self._pipeline(calls, batch=False)
            if not any(isinstance(r, NoScriptError) for r in results):
                return results
            self.load_all()
        return results

    def load_all(self) -> None:
        """SCRIPT LOAD every script (at start and after a reconnect: no first-event NOSCRIPT)."""
        for text in ALL_SCRIPTS.values():
            self.client.script_load(text)

    def _one(self, call: Call) -> Any:
        args = ("EVALSHA", self._sha[call.script], len(call.keys), *call.keys, *call.args)
        try:
            try:
                return self._send(*args)
            except NoScriptError:
                self.client.script_load(ALL_SCRIPTS[call.script])
                return self._send(*args)
        except ResponseError as exc:  # a script error is this call's result, as in a pipeline
            return exc

    def _pipeline(self, calls: Sequence[Call], *, batch: bool) -> list[Any]:
        applies = [i for i, c in enumerate(calls) if c.script == APPLY] if batch else []
        batched = set(applies)
        others = [i for i in range(len(calls)) if i not in batched]
        pipe = self.client.pipeline(transaction=False)
        if applies:
            args = [str(len(applies))] + [a for i in applies for a in calls[i].args]
            keys = calls[applies[0]].keys
            pipe.evalsha(self._sha["batch"], len(keys), *keys, *args)
        for i in others:
            c = calls[i]
            pipe.evalsha(self._sha[c.script], len(c.keys), *c.keys, *c.args)
        replies: list[Any] = pipe.execute(raise_on_error=False)
        results: list[Any] = [None] * len(calls)
        if applies:
            batch_reply = replies.pop(0)
            for n, i in enumerate(applies):
                results[i] = batch_reply if isinstance(batch_reply, Exception) else batch_reply[n]
        for i, reply in zip(others, replies, strict=True):
            results[i] = reply
        return results
