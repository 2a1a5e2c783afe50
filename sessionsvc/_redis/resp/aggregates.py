"""Aggregates (arrays, sets, pushes, maps, attributes) being read: their frames, opening one,
adding a finished child, and closing it into a list, a dict or a truncated reply."""

from __future__ import annotations

from typing import Any

from redis.exceptions import InvalidResponse

from sessionsvc._redis.resp.bulk import _BulkReader
from sessionsvc._redis.resp.replies import _DROPPED, _MORE, Push, Truncated, TruncatedMap

_ARRAY, _SET, _PUSH, _MAP, _ATTR = range(5)
MAP = _MAP  # for the parser's inline fast path
KINDS = {42: _ARRAY, 126: _SET, 62: _PUSH, 37: _MAP, 124: _ATTR}  # * ~ > % |


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


class _Aggregates(_BulkReader):
    """The aggregate half of ``ReplyParser``."""

    _pushes: bool

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
