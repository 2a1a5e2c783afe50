"""Bulk strings within the bounds: a short body sliced from the buffer, a long one streamed
(kept up to ``max_bulk``, hashed in full when longer), and error replies."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from redis.exceptions import InvalidResponse, ResponseError

from sessionsvc._redis.resp.digest import _Digests
from sessionsvc._redis.resp.replies import _DROPPED, _MORE, NEED_DATA, Oversized

if TYPE_CHECKING:
    from sessionsvc._redis.resp.aggregates import _Frame


class _Bulk:
    """A bulk string whose body is being streamed."""

    __slots__ = ("error", "hasher", "keep", "left", "length", "limit", "prefix", "skip")

    def __init__(self, length: int, skip: int, keep: bool, limit: int, error: bool) -> None:
        self.length = length  # of the value (a verbatim string's text)
        self.left = length + skip  # body bytes still to read, before the final CRLF
        self.skip = skip  # verbatim format bytes ("txt:") still to skip
        self.keep = keep
        self.limit = limit  # bytes of the value kept
        self.error = error  # a blob error: an exception at the end
        self.prefix = bytearray() if keep else None
        self.hasher = hashlib.sha256() if length > limit else None


class _BulkReader(_Digests):
    """The bulk-string half of ``ReplyParser``."""

    _buf: bytearray
    _pos: int  # parse position in _buf
    _scan: int  # where the search for the current line's CRLF resumes
    _stack: list[_Frame]
    _bulk: _Bulk | None
    _max_bulk: int
    _max_bytes: int
    _max_items: int
    _error: Callable[[str], Exception]

    def _bulk_header(self, line: bytes, length: int, skip: int, *, error: bool = False) -> Any:
        if length < 0:
            self._emit(b"$-1\r\n")
            return None
        if length < skip:
            raise InvalidResponse("Protocol error: verbatim string too short")
        length -= skip
        keep = True
        frame = self._stack[-1] if self._stack and not error else None
        if frame is not None:
            frame.size += length
            kept = min(length, self._max_bulk)
            if (
                frame.dropping
                or frame.kept_items >= self._max_items
                or frame.kept_bytes + kept > self._max_bytes
            ):
                keep = False
                frame.dropping = frame.lossy = True
            else:
                frame.kept_items += 1
                frame.kept_bytes += kept
                frame.lossy |= length > self._max_bulk
        buf, start = self._buf, self._pos
        end = start + length + skip
        if not skip and not error and length <= self._max_bulk and end + 2 <= len(buf):
            if buf[end : end + 2] != b"\r\n":
                raise InvalidResponse("Protocol error: bulk string not followed by CRLF")
            self._pos = self._scan = end + 2
            self._emit(buf[start - len(line) - 2 : end + 2])  # the wire form is the RESP2 form
            return bytes(buf[start:end]) if keep else _DROPPED
        self._emit(b"-" if error else b"$%d\r\n" % length)
        self._bulk = _Bulk(length, skip, keep, length if error else self._max_bulk, error)
        return _MORE

    def _bulk_step(self, bulk: _Bulk) -> Any:
        buf = self._buf
        avail = len(buf) - self._pos
        if bulk.left and avail:
            n = min(bulk.left, avail)
            with memoryview(buf) as view:
                chunk = view[self._pos : self._pos + n]
                if bulk.skip > 0:
                    skipped = min(bulk.skip, n)
                    bulk.skip -= skipped
                    chunk = chunk[skipped:]
                prefix = bulk.prefix
                if prefix is not None and len(prefix) < bulk.limit:
                    prefix += chunk[: bulk.limit - len(prefix)]
                if bulk.hasher is not None:
                    bulk.hasher.update(chunk)
                self._emit(chunk)
                del chunk
            self._pos += n
            self._scan = self._pos
            bulk.left -= n
            avail -= n
        if bulk.left or avail < 2:
            return NEED_DATA
        if buf[self._pos : self._pos + 2] != b"\r\n":
            raise InvalidResponse("Protocol error: bulk string not followed by CRLF")
        self._pos = self._scan = self._pos + 2
        self._emit(b"\r\n")
        self._bulk = None
        value = bytes(bulk.prefix) if bulk.prefix is not None else b""
        if bulk.error:
            return self._make_error(value)
        if not bulk.keep:
            return _DROPPED
        if bulk.hasher is not None:
            return Oversized(value, bulk.length, bulk.hasher.hexdigest())
        return value

    def _make_error(self, text: bytes) -> Exception:
        message = text.decode("utf-8", "replace")
        try:
            return self._error(message)
        except Exception:  # e.g. redis-py's MovedError on a malformed MOVED
            return ResponseError(message)
