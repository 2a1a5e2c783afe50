"""What ``ReplyParser`` returns besides plain values: the bounded reply types and its markers."""

from __future__ import annotations

from typing import Any, Final

__all__ = ["NEED_DATA", "Oversized", "Push", "Truncated", "TruncatedMap"]


class _Marker:
    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


NEED_DATA: Final[Any] = _Marker("NEED_DATA")
"""``next_reply()``'s answer when the buffered bytes end inside a reply: feed more."""
_MORE: Final = _Marker("_MORE")  # internal: keep parsing
_DROPPED: Final = _Marker("_DROPPED")  # internal: a bulk child counted and hashed, not kept


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
