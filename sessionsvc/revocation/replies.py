"""Replies as redis-py or a ``HotConnection`` returns them (RESP2 or RESP3), made plain (pure).

Shared by the feed, the ``direct`` check and the worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sessionsvc.encoding import as_text
from sessionsvc.revocation.log import parse_number

__all__ = ["Pairs", "mapping", "raise_errors", "raw_entries", "score", "scored_ids", "stream_id"]

Pairs = list[tuple[bytes, bytes]]


def raise_errors(replies: Sequence[Any]) -> Sequence[Any]:
    """The replies of a transaction (errors in place), or the first error raised."""
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


def stream_id(value: bytes | str) -> tuple[int, int]:
    """A stream entry id as a comparable ``(ms, seq)`` pair."""
    text = as_text(value)
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def score(value: Any) -> float:
    """A ZSET score: bytes in RESP2, already a double (``inf`` included) in RESP3."""
    return float(value) if isinstance(value, int | float) else parse_number(as_text(value))


def scored_ids(flat: Sequence[Any]) -> list[tuple[str, float]]:
    """ZRANGE WITHSCORES (flat member, score list; RESP3 may pair them) → (id, until)."""
    if flat and isinstance(flat[0], list | tuple):
        return [(as_text(m), score(u)) for m, u in flat]
    return [(as_text(flat[i]), score(flat[i + 1])) for i in range(0, len(flat), 2)]


def raw_entries(reply: Any) -> list[tuple[str, Pairs]]:
    """Entries of a raw XREAD/XREADGROUP/XAUTOCLAIM stream reply (``HotConnection``), fields
    kept in wire order, duplicates too.

    ``[[stream, [[id, [f1, v1, f2, v2, ...]], ...]]]`` (RESP2) or ``{stream: [...]}`` (RESP3) →
    ``[(id, [(f1, v1), (f2, v2)])]``; an entry deleted while pending comes back with no fields
    and gets an empty list; a read that timed out gives ``[]``.
    """
    out: list[tuple[str, Pairs]] = []
    streams = reply.items() if isinstance(reply, dict) else (reply or ())
    for _stream, entries in streams:
        for entry_id, fields in entries:
            flat = fields or []
            pairs = [(flat[i], flat[i + 1]) for i in range(0, len(flat) - 1, 2)]
            out.append((as_text(entry_id), pairs))
    return out


def mapping(reply: Any) -> list[tuple[Any, Any]]:
    """HGETALL as redis-py returns it (a dict) or as a flat list."""
    if isinstance(reply, dict):
        return list(reply.items())
    return [(reply[i], reply[i + 1]) for i in range(0, len(reply), 2)]
