"""One dedicated connection for a hot loop: the feed's tail read, the worker's read and apply.

redis-py's client layer (pool checkout and release, the retry wrapper, the event dispatcher and
observability hooks) costs about 100 µs of CPU per blocking command on a small VM: more than
Redis takes to serve it. On a node where a few processes each wake for every revocation, that CPU
is latency. ``HotConnection`` keeps one pooled redis-py ``Connection`` checked out and sends
commands on it directly: the same protocol code, handshake (AUTH, TLS, RESP3, client name) and
socket timeouts as the client it comes from, none of the per-call layers. Replies come raw
(bytes, no response callbacks: a stream entry's fields stay a flat list, duplicates included).

Invariants:

- One thread (or one asyncio task) uses a ``HotConnection``; a command is sent only after the
  previous reply was read.
- A failed send or read, or any exception between them (an interrupt, a cancellation), leaves
  the connection disconnected, so a half-read or unread reply is never taken for the next
  command's; the next command reconnects. An error *reply* raises
  ``ResponseError`` and leaves the connection usable. Retrying is the owner's job.
- On Redis Cluster (``key``: the connection serves that key's slot) a failure that may mean the
  slot moved (a MOVED reply, a connection error: ``slotpool.must_resolve``) gives the
  connection back; the next command takes one to the slot's primary in a re-read slot map.
- On Redis Cluster an ASK reply (the slot is migrating, the key already went) is answered
  once: ``ASKING`` and the command on a connection to the node it names, whose reply is the
  command's; the slot map and the connection to the slot's node stay (a MOVED re-resolves).
  In ``many()`` every command that got an ASK is sent so, in one more write, after the others
  ran on the slot's node.
- On a Sentinel-managed primary a connection error or timeout (redis-py turns a ``READONLY``
  reply into one: a demoted primary) gives the connection back too; the next command takes
  one connected to the primary the sentinels name (``slotpool.must_drop``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.exceptions import AskError, ResponseError

from sessionsvc._redis.clients import AsyncClient, SyncClient
from sessionsvc._redis.slotpool import AsyncSlotPool, SlotPool, asking, is_ask

__all__ = ["AsyncHotConnection", "HotConnection"]


class _Hot:
    """What both share: the one connection, the rule on failure."""

    _conn: Any = None

    @staticmethod
    def _in_step(exc: BaseException) -> bool:
        """After ``exc``, is the connection still in step with its replies? Only after an error
        *reply* (read in full); anything else between send and read (a failure, an interrupt,
        a cancellation) leaves a reply unread: the connection must be dropped."""
        return isinstance(exc, ResponseError)

    @staticmethod
    def _asks(replies: list[Any]) -> list[int]:
        """Where in ``replies`` an ASK stands."""
        return [i for i, reply in enumerate(replies) if is_ask(reply)]


class HotConnection(_Hot):
    """Commands on one connection of ``client``'s pool (on a cluster: of the pool of the node
    serving ``key``'s slot), raw replies, no per-call layers."""

    def __init__(self, client: SyncClient, key: str | None = None) -> None:
        self._pool = SlotPool(client, key)

    def __call__(self, *args: Any) -> Any:
        """Send one command, return its raw reply (``RedisError`` on failure)."""
        conn = self._connection()
        try:
            conn.send_command(*args, check_health=False)
            return conn.read_response(disable_decoding=True)
        except BaseException as exc:
            if not is_ask(exc):
                if not self._in_step(exc):
                    conn.disconnect()
                self._failed(exc)
                raise
            ask = exc  # an error reply, read in full: the connection is in step
        [reply] = self._asked(ask, [args])
        if isinstance(reply, ResponseError):
            self._failed(reply)
            raise reply
        return reply

    def many(self, *commands: Sequence[Any]) -> list[Any]:
        """Send several commands in one write; a raw reply each, an error reply as its
        ``ResponseError`` (a connection failure raises: no reply can be trusted then)."""
        conn = self._connection()
        replies: list[Any] = []
        try:
            conn.send_packed_command(conn.pack_commands(commands), check_health=False)
            replies = _read(conn, len(commands))
        except BaseException as exc:
            conn.disconnect()
            self._failed(exc)
            raise
        if asks := self._asks(replies):
            answers = self._asked(replies[asks[0]], [commands[i] for i in asks])
            for i, answer in zip(asks, answers, strict=True):
                replies[i] = answer
        for reply in replies:
            if isinstance(reply, ResponseError):
                self._failed(reply)  # e.g. MOVED: the next command goes where the slot is
        return replies

    def _asked(self, ask: AskError, commands: list[Sequence[Any]]) -> list[Any]:
        """``commands`` (each met ``ask``) after ``ASKING`` on the node ``ask`` names: a raw
        reply or ``ResponseError`` each (an error reply to ``ASKING`` stands for its command)."""
        try:
            conn = self._pool.asked(ask)
        except BaseException as exc:
            self._failed(exc)
            raise
        try:
            conn.send_packed_command(conn.pack_commands(asking(commands)), check_health=False)
            replies = _read(conn, 2 * len(commands))
        except BaseException as exc:
            conn.disconnect()
            self._pool.put(conn)
            self._failed(exc)
            raise
        self._pool.put(conn)
        return _answers(replies)

    def _connection(self) -> Any:
        if self._conn is None:
            self._conn = self._pool.get()
        return self._conn

    def _failed(self, exc: BaseException) -> None:
        if self._pool.failed(exc):
            self.close()

    def close(self) -> None:
        """Return the connection to the pool (the pool's ``disconnect`` closes it)."""
        if self._conn is not None:
            self._pool.put(self._conn)
            self._conn = None


class AsyncHotConnection(_Hot):
    """``HotConnection`` for ``redis.asyncio``."""

    def __init__(self, client: AsyncClient, key: str | None = None) -> None:
        self._pool = AsyncSlotPool(client, key)

    async def __call__(self, *args: Any) -> Any:
        """Send one command, return its raw reply (``RedisError`` on failure)."""
        conn = await self._connection()
        try:
            await conn.send_command(*args, check_health=False)
            return await conn.read_response(disable_decoding=True)
        except BaseException as exc:  # e.g. cancelled between send and read
            if not is_ask(exc):
                if not self._in_step(exc):
                    await conn.disconnect(nowait=True)
                await self._failed(exc)
                raise
            ask = exc  # an error reply, read in full: the connection is in step
        [reply] = await self._asked(ask, [args])
        if isinstance(reply, ResponseError):
            await self._failed(reply)
            raise reply
        return reply

    async def many(self, *commands: Sequence[Any]) -> list[Any]:
        """``HotConnection.many``: one write, a raw reply (or ``ResponseError``) each."""
        conn = await self._connection()
        replies: list[Any] = []
        try:
            await conn.send_packed_command(conn.pack_commands(commands), check_health=False)
            replies = await _aread(conn, len(commands))
        except BaseException as exc:
            await conn.disconnect(nowait=True)
            await self._failed(exc)
            raise
        if asks := self._asks(replies):
            answers = await self._asked(replies[asks[0]], [commands[i] for i in asks])
            for i, answer in zip(asks, answers, strict=True):
                replies[i] = answer
        for reply in replies:
            if isinstance(reply, ResponseError):
                await self._failed(reply)
        return replies

    async def _asked(self, ask: AskError, commands: list[Sequence[Any]]) -> list[Any]:
        """``HotConnection._asked``: ``commands`` after ``ASKING`` on the node ``ask`` names."""
        try:
            conn = await self._pool.asked(ask)
        except BaseException as exc:
            await self._failed(exc)
            raise
        try:
            packed = conn.pack_commands(asking(commands))
            await conn.send_packed_command(packed, check_health=False)
            replies = await _aread(conn, 2 * len(commands))
        except BaseException as exc:
            await conn.disconnect(nowait=True)
            await self._pool.put(conn)
            await self._failed(exc)
            raise
        await self._pool.put(conn)
        return _answers(replies)

    async def _connection(self) -> Any:
        if self._conn is None:
            self._conn = await self._pool.get()
        return self._conn

    async def _failed(self, exc: BaseException) -> None:
        if self._pool.failed(exc):
            await self.aclose()

    async def aclose(self) -> None:
        """Return the connection to the pool."""
        if self._conn is not None:
            await self._pool.put(self._conn)
            self._conn = None


def _answers(replies: list[Any]) -> list[Any]:
    """The replies of commands sent each after an ``ASKING``: the command's, or ``ASKING``'s
    own error reply when it failed (e.g. a user whose ACL lacks it)."""
    pairs = zip(replies[::2], replies[1::2], strict=True)
    return [ok if isinstance(ok, ResponseError) else reply for ok, reply in pairs]


def _read(conn: Any, count: int) -> list[Any]:
    """``count`` raw replies from ``conn``, an error reply as its ``ResponseError``."""
    replies: list[Any] = []
    for _ in range(count):
        try:
            replies.append(conn.read_response(disable_decoding=True))
        except ResponseError as exc:
            replies.append(exc)
    return replies


async def _aread(conn: Any, count: int) -> list[Any]:
    """``_read`` on an asyncio connection."""
    replies: list[Any] = []
    for _ in range(count):
        try:
            replies.append(await conn.read_response(disable_decoding=True))
        except ResponseError as exc:
            replies.append(exc)
    return replies
