"""``ReplyParser``: the state machine of lines, scalars and aggregates (see the package)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from redis._parsers.base import BaseParser
from redis.exceptions import InvalidResponse

from sessionsvc._redis.resp.aggregates import KINDS, MAP, _Aggregates, _Frame
from sessionsvc._redis.resp.bulk import _Bulk
from sessionsvc._redis.resp.digest import FLUSH
from sessionsvc._redis.resp.replies import _DROPPED, _MORE, NEED_DATA

__all__ = ["ReplyParser"]

_INT = re.compile(rb"(?:0|-?[1-9][0-9]{0,18})\Z")
_DOUBLE = re.compile(rb"-?(?:inf|nan|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)\Z")


class ReplyParser(_Aggregates):
    """Incremental RESP2/RESP3 reply parser with bounds (module docstring): ``feed`` bytes,
    ``next_reply()`` until ``NEED_DATA``."""

    def __init__(
        self,
        *,
        max_bulk: int = 4096,
        max_array_bytes: int = 8192,
        max_array_items: int = 64,
        max_line: int = 1 << 16,
        error_factory: Callable[[str], Exception] = BaseParser.parse_error,
        pushes: bool = True,
    ) -> None:
        """Bounds as in the module docstring; ``error_factory`` makes an error reply's
        exception from its text; ``pushes=False`` skips top-level pushes (out-of-band messages,
        as redis-py's ``read_response`` does) instead of returning them."""
        self._max_bulk = max_bulk
        self._max_bytes = max_array_bytes
        self._max_items = max_array_items
        self._max_line = max_line
        self._error = error_factory
        self._pushes = pushes
        self._buf = bytearray()
        self._pos = 0  # parse position in _buf
        self._scan = 0  # where the search for the current line's CRLF resumes
        self._stack: list[_Frame] = []
        self._bulk: _Bulk | None = None
        self._quiet = 0  # open attributes: no digest input inside them
        self._canon = bytearray()  # digest input not yet hashed by every open frame
        self._base = 0  # absolute offset of _canon[0]
        self._failed: str | None = None

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append received bytes."""
        buf = self._buf
        if self._pos == len(buf):
            buf.clear()
            self._pos = self._scan = 0
        elif self._pos > FLUSH:
            del buf[: self._pos]
            self._scan -= self._pos
            self._pos = 0
        buf += data

    def unconsumed(self) -> bytes:
        """The bytes fed and not yet parsed (between replies: the start of the next ones)."""
        return bytes(self._buf[self._pos :])

    def next_reply(self) -> Any:
        """The next complete reply, or ``NEED_DATA``; ``InvalidResponse`` on a protocol error."""
        if self._failed is not None:
            raise InvalidResponse(self._failed)
        try:
            return self._next()
        except InvalidResponse as exc:
            self._failed = str(exc)
            raise

    def _next(self) -> Any:
        stack = self._stack
        while True:
            if self._bulk is not None:
                value = self._bulk_step(self._bulk)
                if value is NEED_DATA:
                    return NEED_DATA
            else:
                line = self._line()
                if line is None:
                    return NEED_DATA
                value = self._value(line)
                if value is _MORE:
                    continue
            if stack and stack[-1].remaining > 1:  # the common case, inline: not a last child
                frame = stack[-1]
                if value is not _DROPPED or frame.kind == MAP:
                    frame.items.append(value)
                frame.remaining -= 1
                continue
            value = self._complete(value)
            if value is not _MORE:
                return value

    def _line(self) -> bytes | None:
        buf = self._buf
        end = buf.find(b"\r\n", self._scan)  # _scan >= _pos
        if end < 0:
            if len(buf) - self._pos > self._max_line:
                raise InvalidResponse("Protocol error: line too long")
            self._scan = max(self._pos, len(buf) - 1)
            return None
        line = bytes(buf[self._pos : end])
        if not line:
            raise InvalidResponse("Protocol error: empty line")
        self._pos = self._scan = end + 2
        return line

    def _value(self, line: bytes) -> Any:
        """A scalar from its line, or ``_MORE`` once an aggregate or a bulk body is opened."""
        kind, rest = line[0], line[1:]
        if kind in {36, 61}:  # $ =
            return self._bulk_header(line, _length(rest), 4 if kind == 61 else 0)
        if kind in KINDS:
            n = _length(rest)
            if n < 0 and kind != 124:
                self._emit(b"*-1\r\n")
                return None
            return self._open(KINDS[kind], max(n, 0))
        if kind == 58:  # :
            if not _INT.match(rest) or not -(1 << 63) <= int(rest) < 1 << 63:
                raise InvalidResponse(f"Protocol error: bad integer {rest[:32]!r}")
            self._emit(line + b"\r\n")
            return int(rest)
        if kind == 43:  # +
            self._emit(line + b"\r\n")
            return rest
        if kind == 45:  # -
            self._emit(line + b"\r\n")
            return self._make_error(rest)
        if kind == 95 and not rest:  # _
            self._emit(b"$-1\r\n")
            return None
        if kind == 35 and rest in (b"t", b"f"):  # #
            self._emit(b":1\r\n" if rest == b"t" else b":0\r\n")
            return rest == b"t"
        if kind == 44 and _DOUBLE.match(rest):  # ,
            number = float(rest)
            if math.isinf(number) and b"inf" not in rest:
                raise InvalidResponse(f"Protocol error: double out of range {rest[:32]!r}")
            self._emit(b"$%d\r\n%s\r\n" % (len(rest), rest))
            return number
        if kind == 40 and (rest.lstrip(b"-").isdigit() or not rest):  # (
            self._emit(b"$%d\r\n%s\r\n" % (len(rest), rest))
            return rest
        if kind == 33:  # ! (blob error)
            n = _length(rest)
            if n > self._max_line:
                raise InvalidResponse("Protocol error: blob error too long")
            return self._bulk_header(line, n, 0, error=True)
        raise InvalidResponse(f"Protocol error: unexpected {line[:32]!r}")


def _length(rest: bytes) -> int:
    if rest.isdigit() and len(rest) < 19 and (rest[0] != 48 or len(rest) == 1):  # no sign, no 0…
        return int(rest)
    if rest == b"-1":
        return -1
    raise InvalidResponse(f"Protocol error: bad length {rest[:32]!r}")
