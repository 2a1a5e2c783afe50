"""Live sign-out for Starlette and FastAPI: WebSockets and server-sent events end when their
session (or user) is revoked, through the validator's listener.

    live = LiveSignOut(auth.validator)

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        user = await auth.authenticate_websocket(websocket)   # before accept()
        await websocket.accept()
        async with live.websocket(websocket, user):
            async for text in websocket.iter_text(): ...       # closed with 4001 on revocation

    @app.get("/events")
    async def events(user: Annotated[Principal, Depends(auth.require())]) -> Response:
        return live.sse(user, my_events())     # sends ``event: revoked`` and ends

The listener runs on the feed's thread (``start()``) or task (``astart()``); each connection is
closed on its own event loop (``call_soon_threadsafe``). A WebSocket is closed with code 4001
and the reason (``session revoked``, ``user signed out everywhere``, …).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from starlette.responses import StreamingResponse
from starlette.websockets import WebSocket, WebSocketState

from sessionsvc.integrations.async_stream import AsyncEventStreams
from sessionsvc.integrations.web.live import LiveRegistry
from sessionsvc.integrations.web.principal import Principal
from sessionsvc.validator import Validator

__all__ = ["REVOKED_CLOSE_CODE", "LiveSignOut"]

REVOKED_CLOSE_CODE = 4001


class LiveSignOut:
    """Ends the live connections of revoked sessions (one per app, on its validator)."""

    def __init__(self, validator: Validator) -> None:
        self.registry = LiveRegistry(validator.view)
        self._streams = AsyncEventStreams(self.registry)
        validator.add_listener(self.registry.revoked)

    @asynccontextmanager
    async def websocket(self, websocket: WebSocket, principal: Principal) -> AsyncIterator[None]:
        """Watch an accepted WebSocket: closed with 4001 when its session is revoked."""
        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task[None]] = set()

        async def close(reason: str) -> None:
            if websocket.application_state == WebSocketState.CONNECTED:
                with suppress(RuntimeError):  # (the client went away meanwhile)
                    await websocket.close(code=REVOKED_CLOSE_CODE, reason=reason)

        def start_closing(reason: str) -> None:
            task = loop.create_task(close(reason))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        def on_revoked(reason: str) -> None:  # (the feed's thread or task)
            loop.call_soon_threadsafe(start_closing, reason)

        with self.registry.watch(principal.claims, on_revoked):
            yield
        for task in list(tasks):
            await task

    def sse(self, principal: Principal, events: AsyncIterator[Any]) -> StreamingResponse:
        """A ``text/event-stream`` of ``events`` (each a string or JSON-able ``data``) that
        sends ``event: revoked`` and ends when the principal's session is revoked. However the
        stream ends (the client gone included), ``events`` is closed (``aclose()``)."""
        return StreamingResponse(
            self._streams.stream(principal, events),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )
