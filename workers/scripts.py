"""``ScriptRunner``: many script calls in one pipelined round trip, batched where possible.

Every ``APPLY`` call of a batch goes as one ``apply_batch`` script (one script invocation for
hundreds of revocations); the session scripts (logout, logout_all) go beside it. A failing batch is
retried call by call in the same way, so one bad revocation cannot hold back the rest. The
scripts, their EVALSHA commands and the NOSCRIPT rule (Redis restarted, or SCRIPT FLUSH: load,
then send again) are the registry's (``sessionsvc._redis.scripts``); a pipeline that met
NOSCRIPT loads every script once and is sent again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from redis.exceptions import ResponseError

from sessionsvc._redis.bounded import BoundedConnection
from sessionsvc._redis.clients import SyncClient
from sessionsvc._redis.scripts import SCRIPTS, Call, is_noscript, run

from .core import APPLY

__all__ = ["ScriptRunner"]

_BATCH = SCRIPTS["apply_batch"]


class ScriptRunner:
    """Runs ``Call``s by EVALSHA on one client; a single call goes on ``hot`` when given (the
    caller's own connection: the lowest-latency path for one event)."""

    def __init__(self, client: SyncClient, hot: BoundedConnection | None = None) -> None:
        self.client = client
        self._send: Callable[..., Any] = hot or client.execute_command
        self._pooled: Callable[..., Any] = client.execute_command

    def run(self, calls: Sequence[Call]) -> list[Any]:
        """One reply (or the exception) per call, in order."""
        if not calls:
            return []
        if len(calls) == 1:  # the common low-traffic case: no pipeline object, lowest latency
            return [self._one(calls[0])]
        for _attempt in range(2):
            results = self._pipeline(calls, batch=len(calls) > 1)
            if any(isinstance(r, ResponseError) and not is_noscript(r) for r in results):
                results = self._pipeline(calls, batch=False)
            if not any(is_noscript(r) for r in results):
                return results
            self.load_all()
        return results

    def load_all(self) -> None:
        """SCRIPT LOAD every script (at start and after a reconnect: no first-event NOSCRIPT)."""
        for script in SCRIPTS.values():
            self._pooled(*script.load_args())

    def _one(self, call: Call) -> Any:
        try:
            return run(self._send, call)
        except ResponseError as exc:  # a script error is this call's result, as in a pipeline
            return exc

    def _pipeline(self, calls: Sequence[Call], *, batch: bool) -> list[Any]:
        applies = [i for i, c in enumerate(calls) if c.script == APPLY] if batch else []
        batched = set(applies)
        others = [i for i in range(len(calls)) if i not in batched]
        pipe = self.client.pipeline(transaction=False)
        queue: Callable[..., Any] = pipe.execute_command
        if applies:
            one = _BATCH.batch(calls[applies[0]].keys, [calls[i].args for i in applies])
            queue(*_BATCH.evalsha_args(one.keys, one.args))
        for i in others:
            c = calls[i]
            queue(*SCRIPTS[c.script].evalsha_args(c.keys, c.args))
        replies: list[Any] = pipe.execute(raise_on_error=False)
        results: list[Any] = [None] * len(calls)
        if applies:
            batch_reply = replies.pop(0)
            for n, i in enumerate(applies):
                results[i] = batch_reply if isinstance(batch_reply, Exception) else batch_reply[n]
        for i, reply in zip(others, replies, strict=True):
            results[i] = reply
        return results
