"""The digest of a truncated aggregate, and the parser's bookkeeping that computes it.

Digest of a truncated aggregate (``Truncated.sha256``, ``TruncatedMap.sha256``): the hex SHA-256
of the concatenated RESP2 encodings of ALL its children, in order, as full values (a map's
children are k1, v1, k2, v2…); a child's RESP2 encoding is what Redis sends a RESP2 client for
it: bulk ``b"$%d\\r\\n" % len(v) + v + b"\\r\\n"`` (a verbatim string: its text, as a bulk),
simple string ``+s\\r\\n``, error ``-msg\\r\\n``, integer ``:n\\r\\n``, boolean ``:1``/``:0``,
double and big number as a bulk string of their wire text, null ``$-1\\r\\n`` (``*-1\\r\\n`` for a
RESP2 null array), and an aggregate ``*N\\r\\n`` (a map ``*2N``) followed by its children's
encodings, recursively. Attributes contribute nothing. For bulk children only that is
``resp_digest(values)``.

The parser feeds the RESP2 form of every value it reads to ``_emit``; each open aggregate hashes
the input that arrived after its own header, in 64 KiB pieces (a big bulk body in place).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sessionsvc._redis.resp.aggregates import _Frame

__all__ = ["resp_digest"]

FLUSH = 1 << 16  # pending digest input flushed into the open aggregates' hashers


def resp_digest(values: Sequence[bytes]) -> str:
    """The digest ``Truncated.sha256`` would carry for an array of these bulk strings (full
    values), for a caller holding the whole array: SHA-256 of ``$len\\r\\nvalue\\r\\n`` each."""
    h = hashlib.sha256()
    for value in values:
        h.update(b"$%d\r\n" % len(value))
        h.update(value)
        h.update(b"\r\n")
    return h.hexdigest()


class _Digests:
    """The digest half of ``ReplyParser``: pending input and the open frames' hashers."""

    _stack: list[_Frame]
    _quiet: int  # open attributes: no digest input inside them
    _canon: bytearray  # digest input not yet hashed by every open frame
    _base: int  # absolute offset of _canon[0]

    def _emit(self, data: bytes | bytearray | memoryview) -> None:
        """Digest input (RESP2 form) for every open aggregate."""
        if self._stack and not self._quiet:
            if len(data) < FLUSH:
                self._canon += data
                if len(self._canon) >= FLUSH:
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
