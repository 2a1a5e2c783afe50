"""The identity providers' HTTP listener: ``ReceiverCore`` on a socket, bounded everywhere.

A listener of its own (never the health port: IdPs reach this one, the probes must not be). One
asyncio loop on a daemon thread reads every connection (so slow clients cost no thread): the
request head at most 8 KiB, the body at most ``max_body`` bytes and only with a
``Content-Length``, the whole request within ``read_timeout`` seconds or the connection is cut
(slowloris). Complete requests go to a fixed pool of ``workers`` threads, where the core calls the
intake (which may wait for Redis). Beyond ``max_connections`` open connections a new one is
answered 503 at once, unread; the rest wait in the listen backlog. One request per connection
(``Connection: close``): IdPs push one token per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus

import structlog

from .receiver import ReceiverCore, Response

__all__ = ["MAX_HEAD", "ReceiverServer"]

MAX_HEAD = 8192
_LINGER = 1.0
"""Seconds (and 64 KiB at most) spent draining an unread body before closing, so the client
reads the answer instead of a reset."""
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
log = structlog.get_logger("workers.receiver")


class ReceiverServer:
    """Serves ``core`` on ``host:port`` (port 0: any free port) until ``close()``."""

    def __init__(
        self,
        core: ReceiverCore,
        host: str,
        port: int,
        *,
        workers: int = 16,
        max_connections: int = 1024,
        read_timeout: float = 5.0,
    ) -> None:
        self.core, self.max_connections, self.read_timeout = core, max_connections, read_timeout
        self._sock = socket.create_server((host, port), backlog=max_connections)
        self.port: int = self._sock.getsockname()[1]
        self.connections = 0
        """Connections open now (read by tests and metrics)."""
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="receiver")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="receiver", daemon=True)
        self._started = threading.Event()
        self._server: asyncio.Server | None = None
        self._closing = False

    def start(self) -> ReceiverServer:
        """Serve in the background (returns once listening)."""
        self._thread.start()
        self._started.wait()
        if self._server is None:
            raise RuntimeError("the receiver could not start")
        return self

    def close(self) -> None:
        """Stop serving: open connections are cut, the port released, the pool shut down."""
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result()
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        if not self._loop.is_closed():
            self._loop.close()
        self._sock.close()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            start = asyncio.start_server(
                self._connection, sock=self._sock, limit=MAX_HEAD, backlog=self.max_connections
            )
            self._server = self._loop.run_until_complete(start)
        finally:
            self._started.set()
        self._loop.run_forever()

    async def _shutdown(self) -> None:
        self._closing = True
        if self._server is not None:
            self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self._serve(reader, writer)
        except asyncio.CancelledError:  # shutting down: the connection is cut. (Returning,
            pass  # not raising: asyncio 3.11's stream callback would log a cancelled task.)
        finally:
            self.connections -= 1
            writer.close()
            if self._closing:
                writer.transport.abort()
            else:
                try:
                    async with asyncio.timeout(self.read_timeout):
                        await writer.wait_closed()
                except (TimeoutError, ConnectionError):
                    writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.connections > self.max_connections:
            await self._answer(reader, writer, self.core.busy(), read_all=False)
            return
        try:
            async with asyncio.timeout(self.read_timeout):
                request = await self._read(reader, writer)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            return  # cut (slowloris), or the client went away
        except asyncio.LimitOverrunError:
            request = 431  # the head is over MAX_HEAD
        except ValueError:
            request = 400  # not an HTTP/1.x request line
        if isinstance(request, int):
            await self._answer(reader, writer, _bare(request), read_all=False)
            return
        method, path, headers, body, read_all = request
        loop = asyncio.get_running_loop()
        try:
            response = await loop.run_in_executor(
                self._pool, self.core.handle, method, path, headers, body
            )
        except Exception as exc:  # a bug of the intake: answered, logged without its text
            log.error("receiver_failed", error=type(exc).__name__)
            response = _bare(500)
        await self._answer(reader, writer, response, read_all=read_all)

    async def _read(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[str, str, dict[str, str], bytes, bool] | int:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        line, *fields = head[:-4].split("\r\n")
        method, path, version = line.split(" ")
        if version not in ("HTTP/1.0", "HTTP/1.1") or not _TOKEN.fullmatch(method):
            return 400
        headers: dict[str, str] = {}
        for item in fields:
            name, sep, value = item.partition(":")
            if not sep or not _TOKEN.fullmatch(name):
                return 400  # no colon, obs-fold, or whitespace before the colon
            key = name.lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
        length = self.core.body_length(headers)
        if length is None:
            return method, path, headers, b"", False
        if headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return method, path, headers, await reader.readexactly(length), True

    async def _answer(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        response: Response,
        *,
        read_all: bool,
    ) -> None:
        status = HTTPStatus(response.status)
        lines = [f"HTTP/1.1 {status.value} {status.phrase}"]
        lines += [f"{k}: {v}" for k, v in response.headers.items()]
        lines += [f"Content-Length: {len(response.body)}", "Connection: close", "", ""]
        writer.write("\r\n".join(lines).encode("latin-1") + response.body)
        with contextlib.suppress(TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            async with asyncio.timeout(self.read_timeout):
                await writer.drain()
            if not read_all and writer.can_write_eof():
                writer.write_eof()  # lingering close: drain what the client still sends
                async with asyncio.timeout(_LINGER):
                    drained = 0
                    while drained < 65536 and (chunk := await reader.read(65536)):
                        drained += len(chunk)


def _bare(status: int) -> Response:
    return Response(status, {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})
