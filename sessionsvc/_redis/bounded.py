"""``BoundedConnection``: ``HotConnection`` with replies read under memory bounds.

redis-py and hiredis buffer a whole reply before returning it, so one stream entry with a 50 MB
field costs hundreds of MB. ``BoundedConnection`` sends commands on one redis-py ``Connection``
(its connect and handshake: AUTH/ACL user, TLS, RESP3 ``HELLO``, client name) but reads every
reply itself from the connection's socket:

- **fast path**: received chunks go to a ``hiredis.Reader`` and are kept in a buffer; a reply
  hiredis completes within ``fast_limit`` received bytes is hiredis's result (no ``Oversized``
  or ``Truncated`` there: memory is bounded by ``fast_limit``);
- **slow path**: once more than ``fast_limit`` bytes of an unfinished reply arrived, hiredis is
  dropped and ``resp.ReplyParser`` parses the reply again from its first byte, then from the
  socket, under the bounds (``max_bulk``, ``max_array_bytes``, ``max_array_items``): a huge bulk
  string comes back as an ``Oversized`` prefix with its length and SHA-256, its array as a
  ``Truncated`` (``sessionsvc._redis.resp`` has the exact rules and digest).

Reply boundaries are exact. hiredis cannot say how many bytes it consumed, so it only ever sees
the bytes of the last reply of a ``__call__`` or ``many()``, where nothing else follows; in
``many()`` the replies before it go through ``ReplyParser``, which hands the bytes it read past
them to the last reply's reader. Should hiredis finish a reply with bytes left over (a RESP3
push after it, an attribute hiredis misreads), the reply is parsed again with ``ReplyParser``
and the rest is kept for the next read. Top-level pushes are skipped, like redis-py's
``read_response`` does (so no pub/sub on this connection).

Invariants (those of ``HotConnection``):

- One thread uses a ``BoundedConnection``; a command is sent after the previous reply was read.
- Any exception between sending and the end of the read (a timeout, a reset, a protocol error,
  an interrupt) disconnects, so a half-read reply is never taken for the next command's; the
  next command reconnects. An error reply (``ResponseError``, the subclass redis-py picks) is
  read in full and leaves the connection usable; one that redis-py treats as a connection error
  (``AuthenticationError``…) disconnects, as in redis-py.
- Replies are bytes, never decoded, whatever the client's ``decode_responses``.
- On Redis Cluster the connection serves ``key``'s slot and is given back after a failure that
  may mean the slot moved (``HotConnection``'s rule: ``sessionsvc._redis.slotpool``); an ASK
  reply is answered once, as there: ``ASKING`` and the command on a connection to the node it
  names, the replies read with ``ReplyParser`` under the same bounds.
- On a Sentinel-managed primary a ``READONLY`` reply (the primary was demoted) drops the
  connection and raises ``ConnectionError``, as redis-py's ``SentinelManagedConnection`` does
  for the replies it reads: the next command connects to the primary the sentinels name.
"""

from __future__ import annotations

import select
import socket
from collections.abc import Callable, Sequence
from typing import Any

import hiredis
from redis.exceptions import AskError, InvalidResponse, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from sessionsvc._redis.clients import SyncClient
from sessionsvc._redis.resp import NEED_DATA, Oversized, ReplyParser, Truncated, resp_digest
from sessionsvc._redis.slotpool import SlotPool, asking, is_ask, must_drop

__all__ = ["BoundedConnection", "Oversized", "Truncated", "resp_digest"]

_NOT_ENOUGH = object()
_READ_SIZE = 1 << 16


# redis-py internals: the only two private attributes used, tested in tests/test_bounded.py.
def _socket(conn: Any) -> socket.socket:
    """The connected socket of a redis-py ``Connection`` (after ``send_command``)."""
    sock: socket.socket | None = conn._sock
    if sock is None:
        raise RedisConnectionError("Connection closed.")
    return sock


def _error_factory(conn: Any) -> Callable[[str], Exception]:
    """What the connection's own parser makes of an error reply (``BaseParser.parse_error``)."""
    factory: Callable[[str], Exception] = conn._parser.parse_error
    return factory


class BoundedConnection:
    """Commands on one connection of ``client``'s pool, raw replies read under bounds."""

    def __init__(
        self,
        client: SyncClient,
        *,
        key: str | None = None,
        max_bulk: int = 4096,
        max_array_bytes: int = 8192,
        max_array_items: int = 64,
        fast_limit: int = 1 << 20,
    ) -> None:
        """Bounds as in ``sessionsvc._redis.resp``; ``fast_limit``: received bytes of one reply
        up to which hiredis parses it whole."""
        self._pool = SlotPool(client, key)  # on a cluster: the node serving key's slot
        self._conn: Any = None
        self._bounds = {
            "max_bulk": max_bulk,
            "max_array_bytes": max_array_bytes,
            "max_array_items": max_array_items,
        }
        self._fast_limit = fast_limit
        self._chunk = bytearray(_READ_SIZE)
        self._pending = b""  # bytes received past the last reply read
        self._reader: Any = None  # hiredis, empty between replies
        self._errors: Callable[[str], Exception] = ResponseError  # the connection's, once made

    def __call__(self, *args: Any) -> Any:
        """Send one command, return its reply (``RedisError`` on failure)."""
        conn = self._connection()
        try:
            conn.send_command(*args, check_health=False)
            reply = self._read_last(_socket(conn))
            if isinstance(reply, RedisConnectionError):
                raise reply
        except BaseException as exc:
            self._disconnect(conn)
            self._failed(exc)
            raise
        if is_ask(reply):
            [reply] = self._asked(reply, [args])
        if isinstance(reply, ResponseError):
            raise self._failed_reply(reply)  # read in full: the connection is in step
        return reply

    def many(self, *commands: Sequence[Any]) -> list[Any]:
        """Send several commands in one write; a reply each, an error reply as its
        ``ResponseError`` (a connection failure raises: no reply can be trusted then)."""
        if not commands:
            return []
        conn = self._connection()
        try:
            conn.send_packed_command(conn.pack_commands(commands), check_health=False)
            sock = _socket(conn)
            replies: list[Any] = []
            if len(commands) > 1:
                parser = self._parser()
                parser.feed(self._pending)
                replies = [self._read_exact(sock, parser) for _ in commands[1:]]
                self._pending = parser.unconsumed()
            replies.append(self._read_last(sock))
            for reply in replies:
                if isinstance(reply, RedisConnectionError):
                    raise reply
        except BaseException as exc:
            self._disconnect(conn)
            self._failed(exc)
            raise
        asks = [i for i, reply in enumerate(replies) if is_ask(reply)]
        if asks:
            answers = self._asked(replies[asks[0]], [commands[i] for i in asks])
            for i, answer in zip(asks, answers, strict=True):
                replies[i] = answer
        for reply in replies:
            if isinstance(reply, ResponseError):
                failure = self._failed_reply(reply)
                if failure is not reply:
                    raise failure  # (the connection is gone: no later reply counts)
        return replies

    def send(self, *args: Any) -> None:
        """Send a command whose replies come later, read with ``next_message`` (SUBSCRIBE)."""
        conn = self._connection()
        try:
            conn.send_command(*args, check_health=False)
        except BaseException as exc:
            self._disconnect(conn)
            self._failed(exc)
            raise

    def next_message(self, timeout: float) -> Any:
        """The next reply or push (a pub/sub message, RESP2 or RESP3), read with
        ``ReplyParser`` under the bounds; ``None`` when nothing began to arrive within
        ``timeout`` seconds (the connection stays usable: nothing was half-read)."""
        conn = self._connection()
        try:
            sock = _socket(conn)
            if not self._pending and not _readable(sock, timeout):
                return None
            parser = ReplyParser(**self._bounds, error_factory=self._errors, pushes=True)
            parser.feed(self._pending)
            self._pending = b""
            reply = self._read_exact(sock, parser)
            self._pending = parser.unconsumed()
        except BaseException as exc:
            self._disconnect(conn)
            self._failed(exc)
            raise
        if isinstance(reply, RedisConnectionError):
            self._disconnect(conn)
            self._failed(reply)
            raise reply
        return reply

    def close(self) -> None:
        """Return the connection to the pool (the pool's ``disconnect`` closes it); one holding
        bytes past the last reply (a push) is disconnected first: redis-py would not see them."""
        if self._conn is not None:
            if self._pending:
                self._disconnect(self._conn)
            self._pool.put(self._conn)
            self._conn = None

    def _failed(self, exc: BaseException) -> None:
        if self._pool.failed(exc):
            self.close()

    def _asked(self, ask: AskError, commands: list[Sequence[Any]]) -> list[Any]:
        """``commands`` (each met ``ask``) after ``ASKING`` on the node ``ask`` names, on a
        connection lent by the pool: a reply (under the bounds) or ``ResponseError`` each."""
        try:
            conn = self._pool.asked(ask)
        except BaseException as exc:
            self._failed(exc)
            raise
        parser = self._parser()
        try:
            conn.send_packed_command(conn.pack_commands(asking(commands)), check_health=False)
            sock = _socket(conn)
            replies = [self._read_exact(sock, parser) for _ in range(2 * len(commands))]
            for reply in replies:
                if isinstance(reply, RedisConnectionError):
                    raise reply
            if parser.unconsumed():  # bytes past the replies: redis-py must not read them
                conn.disconnect()
        except BaseException as exc:
            conn.disconnect()
            self._pool.put(conn)
            self._failed(exc)
            raise
        self._pool.put(conn)
        pairs = zip(replies[::2], replies[1::2], strict=True)
        return [ok if isinstance(ok, ResponseError) else reply for ok, reply in pairs]

    def _failed_reply(self, reply: ResponseError) -> Exception:
        """What an error reply raises: itself (after a MOVED the next command goes where the
        slot is); on a Sentinel-managed primary ``READONLY`` (a demoted primary: the connection
        is dropped) is the ``ConnectionError`` redis-py's own Sentinel connections raise."""
        self._failed(reply)
        if self._pool.sentinel and must_drop(reply):
            return RedisConnectionError("READONLY: the primary was demoted; reconnecting")
        return reply

    def _connection(self) -> Any:
        if self._conn is None:
            self._conn = self._pool.get()
            self._errors = _error_factory(self._conn)
            self._reader = self._hiredis()
        return self._conn

    def _disconnect(self, conn: Any) -> None:
        self._pending = b""
        self._reader = self._hiredis()
        conn.disconnect()

    def _hiredis(self) -> Any:
        return hiredis.Reader(
            protocolError=InvalidResponse, replyError=self._errors, notEnoughData=_NOT_ENOUGH
        )

    def _parser(self) -> ReplyParser:
        return ReplyParser(**self._bounds, error_factory=self._errors, pushes=False)

    def _read_last(self, sock: socket.socket) -> Any:
        """The reply nothing but pushes follows: hiredis while it stays under ``fast_limit``."""
        reader, chunk = self._reader, self._chunk
        # the reply's bytes fed to hiredis so far, but the chunk just fed: a chunk is copied in
        # only once hiredis wants more (or left bytes over), so a one-chunk reply is not copied
        received = bytearray()
        n = 0
        if self._pending:
            received += self._pending
            self._pending = b""
            reader.feed(received)
        else:
            n = _recv(sock, chunk)
            reader.feed(chunk, 0, n)
        while True:
            reply = reader.gets(False)
            while isinstance(reply, hiredis.PushNotification):
                reply = reader.gets(False)
            if reply is not _NOT_ENOUGH and not reader.has_data():
                return reply  # the common case: no copy into ``received``
            with memoryview(chunk) as view:
                received += view[:n]
            if reply is not _NOT_ENOUGH or len(received) > self._fast_limit:
                # bytes past the reply (only ReplyParser can tell where it ends) or a big reply
                return self._reparse(sock, received)
            n = _recv(sock, chunk)
            reader.feed(chunk, 0, n)

    def _reparse(self, sock: socket.socket, received: bytearray) -> Any:
        """Parse the reply whose bytes so far are ``received`` with ``ReplyParser``."""
        self._reader = self._hiredis()  # drop hiredis and what it holds
        parser = self._parser()
        parser.feed(received)
        received.clear()
        reply = self._read_exact(sock, parser)
        self._pending = parser.unconsumed()
        return reply

    def _read_exact(self, sock: socket.socket, parser: ReplyParser) -> Any:
        chunk = self._chunk
        while (reply := parser.next_reply()) is NEED_DATA:
            n = _recv(sock, chunk)
            with memoryview(chunk) as view:
                parser.feed(view[:n])
        return reply


def _readable(sock: socket.socket, timeout: float) -> bool:
    pending = getattr(sock, "pending", None)  # TLS: bytes decrypted already, unseen by select
    if pending is not None and pending():
        return True
    return bool(select.select([sock], [], [], timeout)[0])


def _recv(sock: socket.socket, chunk: bytearray) -> int:
    try:
        n = sock.recv_into(chunk)
    except TimeoutError:  # socket.timeout (the builtin), before OSError
        raise RedisTimeoutError("Timeout reading from socket") from None
    except OSError as exc:
        raise RedisConnectionError(f"Error while reading from socket: {exc.args}") from None
    if n == 0:
        raise RedisConnectionError("Connection closed by server.")
    return n
