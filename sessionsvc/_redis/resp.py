"""A sans-I/O RESP2/RESP3 reply parser that keeps a bounded amount of each reply.

``ReplyParser`` turns bytes into replies shaped like ``hiredis.Reader``'s with decoding off: bulk
and simple strings as ``bytes``, integers, doubles as ``float``, booleans, big numbers as
``bytes``, verbatim strings as their text (the ``txt:`` format dropped), nulls (``$-1``, ``*-1``,
``_``) as ``None``, arrays, sets and pushes as lists (a push is a ``Push``), maps as ``dict``, an
error reply as its exception object (``error_factory``, by default redis-py's
``BaseParser.parse_error``: ``NoScriptError`` for ``NOSCRIPT``…). Attributes (``|``) are skipped.
Unlike hiredis it bounds what it keeps:

- a bulk string longer than ``max_bulk`` becomes an ``Oversized``: its first ``max_bulk`` bytes,
  its full length and the SHA-256 of the full value (streamed through as it arrives);
- an aggregate keeps bulk-string children only while its kept bulk bytes (an ``Oversized``
  counts ``max_bulk``) stay ≤ ``max_array_bytes`` and its kept bulk children ≤
  ``max_array_items``; from the first bulk child that does not fit, every later bulk child is
  counted and hashed, not kept. Other children (integers, nulls, nested aggregates…) are always
  kept. An aggregate that dropped a child or holds an ``Oversized`` comes back as ``Truncated``
  (a list) or ``TruncatedMap`` (a dict; a pair is kept only if both key and value were).

Digest of a truncated aggregate (``Truncated.sha256``, ``TruncatedMap.sha256``): the hex SHA-256
of the concatenated RESP2 encodings of ALL its children, in order, as full values (a map's
children are k1, v1, k2, v2…); a child's RESP2 encoding is what Redis sends a RESP2 client for
it: bulk ``b"$%d\\r\\n" % len(v) + v + b"\\r\\n"`` (a verbatim string: its text, as a bulk),
simple string ``+s\\r\\n``, error ``-msg\\r\\n``, integer ``:n\\r\\n``, boolean ``:1``/``:0``,
double and big number as a bulk string of their wire text, null ``$-1\\r\\n`` (``*-1\\r\\n`` for a
RESP2 null array), and an aggregate ``*N\\r\\n`` (a map ``*2N``) followed by its children's
encodings, recursively. Attributes contribute nothing. For bulk children only that is
``resp_digest(values)``.

Invariants:

- Pure: no I/O, no clock, no threads. ``feed(data)`` appends bytes; ``next_reply()`` returns one
  reply or ``NEED_DATA``; nothing else moves data. One user at a time.
- Exact boundaries: ``next_reply()`` consumes exactly one reply's bytes (plus any attributes
  before it); what follows stays buffered, and between replies ``unconsumed()`` gives it back.
  The result does not depend on how the bytes were split into ``feed`` calls.
- Bounded memory: consumed bytes are released; a bulk body is hashed and dropped as it arrives,
  so the parser holds the kept values, one incomplete line (≤ ``max_line``, else a protocol
  error), at most ``max_bulk`` bytes of the bulk being read, 64 KiB of pending digest input and
  whatever was fed but not parsed yet.
- A protocol error raises ``InvalidResponse`` and poisons the parser: every later call raises
  again (the stream position is lost; the connection must go).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Sequence
from typing import Any, Final

from redis._parsers.base import BaseParser
from redis.exceptions import InvalidResponse, ResponseError

__all__ = [
    "NEED_DATA",
    "Oversized",
    "Push",
    "ReplyParser",
    "Truncated",
    "TruncatedMap",
    "resp_digest",
]


class _Marker:
    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


NEED_DATA: Final[Any] = _Marker("NEED_DATA")
"""``next_reply()``'s answer when the buffered bytes end inside a reply: feed more."""
_MORE: Final = _Marker("_MORE")  # internal: keep parsing
_DROPPED: Final = _Marker("_DROPPED")  # internal: a bulk child counted and hashed, not kept

_FLUSH = 1 << 16  # pending digest input flushed into the open aggregates' hashers
_INT = re.compile(rb"(?:0|-?[1-9][0-9]{0,18})\Z")
_DOUBLE = re.compile(rb"-?(?:inf|nan|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)\Z")
_ARRAY, _SET, _PUSH, _MAP, _ATTR = range(5)
_KINDS = {42: _ARRAY, 126: _SET, 62: _PUSH, 37: _MAP, 124: _ATTR}  # * ~ > % |


class Oversized(bytes):
    """A bulk string longer than ``max_bulk``: its value is the kept prefix (``max_bulk``
    bytes); ``length`` is the full length, ``sha256`` the hex SHA-256 of the full value."""

    length: int
    sha256: str

    def __new__(cls, prefix: bytes, length: int, sha256: str) -> Oversized:
        """``Oversized(prefix, length, sha256)``."""
        self = super().__new__(cls, prefix)
        self.length = length
        self.sha256 = sha256
        return self

    def __repr__(self) -> str:
        return f"Oversized({bytes(self[:24])!r}…, length={self.length}, sha256={self.sha256})"


class Truncated(list[Any]):
    """An array (or set, or push) that lost content: the kept children; ``count`` is the number
    of children of the original, ``size`` the total length of its bulk-string children (full
    lengths), ``sha256`` the digest of all its children (module docstring). The ``count``
    attribute shadows ``list.count``."""

    count: int  # type: ignore[assignment]
    size: int
    sha256: str

    def __init__(self, kept: list[Any], count: int, size: int, sha256: str) -> None:
        """``Truncated(kept, count, size, sha256)``."""
        super().__init__(kept)
        self.count = count
        self.size = size
        self.sha256 = sha256


class TruncatedMap(dict[Any, Any]):
    """A map that lost content: the pairs kept whole; ``count`` is the number of pairs of the
    original, ``size`` and ``sha256`` as for ``Truncated`` over k1, v1, k2, v2…"""

    count: int
    size: int
    sha256: str

    def __init__(self, kept: dict[Any, Any], count: int, size: int, sha256: str) -> None:
        """``TruncatedMap(kept, count, size, sha256)``."""
        super().__init__(kept)
        self.count = count
        self.size = size
        self.sha256 = sha256


class Push(list[Any]):
    """A RESP3 push (``>``): out-of-band at the top level (a connection skips it)."""


def resp_digest(values: Sequence[bytes]) -> str:
    """The digest ``Truncated.sha256`` would carry for an array of these bulk strings (full
    values), for a caller holding the whole array: SHA-256 of ``$len\\r\\nvalue\\r\\n`` each."""
    h = hashlib.sha256()
    for value in values:
        h.update(b"$%d\r\n" % len(value))
        h.update(value)
        h.update(b"\r\n")
    return h.hexdigest()


class _Frame:
    """An aggregate being read."""

    __slots__ = (
        "count",
        "dropping",
        "fed",
        "hasher",
        "items",
        "kept_bytes",
        "kept_items",
        "kind",
        "lossy",
        "remaining",
        "size",
    )

    def __init__(self, kind: int, count: int, fed: int) -> None:
        self.kind = kind
        self.count = count
        self.remaining = 2 * count if kind in (_MAP, _ATTR) else count
        self.items: list[Any] = []
        self.size = self.kept_bytes = self.kept_items = 0
        self.dropping = self.lossy = False
        self.fed = fed  # digest input hashed (absolute offset; starts after this frame's header)
        self.hasher: Any = None  # created at the first flush


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


class ReplyParser:
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
        elif self._pos > _FLUSH:
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
                if value is not _DROPPED or frame.kind == _MAP:
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
        if kind in _KINDS:
            n = _length(rest)
            if n < 0 and kind != 124:
                self._emit(b"*-1\r\n")
                return None
            return self._open(_KINDS[kind], max(n, 0))
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

    def _open(self, kind: int, n: int) -> Any:
        if kind != _ATTR:
            self._emit(b"*%d\r\n" % (2 * n if kind == _MAP else n))
        if n == 0:
            return (
                _MORE if kind == _ATTR else {} if kind == _MAP else Push() if kind == _PUSH else []
            )
        self._stack.append(_Frame(kind, n, self._base + len(self._canon)))
        self._quiet += kind == _ATTR
        return _MORE

    def _complete(self, value: Any) -> Any:
        """Add a finished child to the open aggregate(s); the reply once the stack empties."""
        stack = self._stack
        push = isinstance(value, Push)
        while stack:
            frame = stack[-1]
            if value is not _DROPPED or frame.kind == _MAP:
                frame.items.append(value)
            frame.remaining -= 1
            if frame.remaining:
                return _MORE
            value = self._close(frame)
            stack.pop()
            if frame.kind == _ATTR:
                self._quiet -= 1
                return _MORE  # an attribute is no child: it precedes the value it annotates
            push = frame.kind == _PUSH
        self._canon.clear()
        self._base = 0
        return _MORE if push and not self._pushes else value

    def _close(self, frame: _Frame) -> Any:
        items = frame.items
        digest = self._digest(frame) if frame.lossy and not self._quiet else ""
        if frame.kind == _MAP:
            pairs: dict[Any, Any] = {}
            for i in range(0, len(items), 2):
                key, value = items[i], items[i + 1]
                if key is not _DROPPED and value is not _DROPPED:
                    try:
                        pairs[key] = value
                    except TypeError:
                        raise InvalidResponse("Protocol error: unhashable map key") from None
            return TruncatedMap(pairs, frame.count, frame.size, digest) if frame.lossy else pairs
        if frame.lossy:
            return Truncated(items, frame.count, frame.size, digest)
        return Push(items) if frame.kind == _PUSH else items

    def _emit(self, data: bytes | bytearray | memoryview) -> None:
        """Digest input (RESP2 form) for every open aggregate."""
        if self._stack and not self._quiet:
            if len(data) < _FLUSH:
                self._canon += data
                if len(self._canon) >= _FLUSH:
                    self._flush()
                return
            self._flush()  # a big chunk of a bulk body: hashed in place, not copied
            for frame in self._stack:
                if frame.hasher is None:
                    frame.hasher = hashlib.sha256()
                frame.hasher.update(data)
            self._base += len(data)
            for frame in self._stack:
                frame.fed = self._base

    def _flush(self) -> None:
        canon, base = self._canon, self._base
        end = base + len(canon)
        with memoryview(canon) as view:
            for frame in self._stack:
                if frame.fed < end:
                    if frame.hasher is None:
                        frame.hasher = hashlib.sha256()
                    frame.hasher.update(view[frame.fed - base :])
                    frame.fed = end
        canon.clear()
        self._base = end

    def _digest(self, frame: _Frame) -> str:
        hasher = frame.hasher if frame.hasher is not None else hashlib.sha256()
        with memoryview(self._canon) as view:
            hasher.update(view[frame.fed - self._base :])
        return str(hasher.hexdigest())


def _length(rest: bytes) -> int:
    if rest.isdigit() and len(rest) < 19 and (rest[0] != 48 or len(rest) == 1):  # no sign, no 0…
        return int(rest)
    if rest == b"-1":
        return -1
    raise InvalidResponse(f"Protocol error: bad length {rest[:32]!r}")
