"""Server-sent events on asyncio that end on sign-out, for any framework that streams an async
iterator of strings (Starlette's ``StreamingResponse``, Django's ``StreamingHttpResponse`` under
ASGI).

Invariants:

- The revocation comes from another thread (the feed's) or this node's own sign-out; it is
  handed to the stream's loop with ``call_soon_threadsafe`` and wins over a pending item.
- However the stream ends (revoked, the events' end, the client gone: cancelled, or closed by
  the server), the app's events are closed too: a pending ``anext`` is cancelled and the
  generator's ``aclose()`` runs its ``finally`` blocks, in a task of its own, since an await in
  the stream's ``finally`` may be cancelled again (anyio re-delivers the cancellation of a
  disconnected response on every await).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Coroutine
from contextlib import suppress
from typing import Any

import structlog

from sessionsvc.integrations.web.live import LiveRegistry, sse_event
from sessionsvc.integrations.web.principal import Principal

__all__ = ["AsyncEventStreams"]

log = structlog.get_logger("sessionsvc.web")


class AsyncEventStreams:
    """The event streams of one app on ``registry`` (which the validator's listener feeds),
    and the tasks that close the app's events of streams that ended."""

    def __init__(self, registry: LiveRegistry) -> None:
        self.registry = registry
        self._tasks: set[asyncio.Task[None]] = set()

    async def stream(self, principal: Principal, events: AsyncIterable[Any]) -> AsyncIterator[str]:
        """The server-sent events of ``events`` (each a string or JSON-able ``data``) until the
        principal's session is revoked (``event: revoked``, then the end)."""
        loop = asyncio.get_running_loop()
        revoked: asyncio.Future[str] = loop.create_future()

        def settle(reason: str) -> None:
            if not revoked.done():
                revoked.set_result(reason)

        def on_revoked(reason: str) -> None:
            loop.call_soon_threadsafe(settle, reason)

        source = aiter(events)
        nxt: asyncio.Future[Any] | None = None
        try:
            with self.registry.watch(principal.claims, on_revoked):
                while True:
                    nxt = asyncio.ensure_future(anext(source))
                    done, _ = await asyncio.wait(
                        {nxt, revoked}, return_when=asyncio.FIRST_COMPLETED
                    )
                    if revoked in done:
                        nxt.cancel()  # (awaited in the finally block's task)
                        yield sse_event("revoked", {"reason": revoked.result()})
                        return
                    try:
                        item = nxt.result()
                    except StopAsyncIteration:
                        return
                    nxt = None
                    yield sse_event(None, item)
        finally:
            self._closing(_close_events(nxt, source))

    def _closing(self, coro: Coroutine[Any, Any, None]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # (finalized outside any loop: nothing left to close it on)
            coro.close()
            return
        task = loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def _close_events(pending: asyncio.Future[Any] | None, source: AsyncIterator[Any]) -> None:
    if pending is not None and not pending.done():
        pending.cancel()
        with suppress(asyncio.CancelledError, StopAsyncIteration, Exception):
            await pending
    aclose = getattr(source, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:
            log.exception("live_events_close_failed")
