"""``ExpiringIds``: a compact set of revoked ids that forgets each one after its ``until``.

Invariants:

- An id is held as a 60-bit fingerprint of ``hash(id)`` (strings hash with the process's own
  key, so fingerprints are comparable within one process only — a view is never shared across
  processes). Two different ids share a fingerprint with probability ~1e-12 per look-up at a
  million entries; the only effect would be rejecting a token that is not revoked, the safe side.
- ``until`` is kept rounded **up** to the minute, as one shared int object per minute, so an entry
  costs a dict slot and one int (≈ 74 bytes at 1,000,000 entries); an entry lives at most 60 s
  longer than asked, never shorter.
- ``add`` only ever extends: a later ``until`` replaces an earlier one, never the reverse.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Final

__all__ = ["ExpiringIds"]

MASK: Final = (1 << 60) - 1
BUCKET: Final = 60
FOREVER: Final = 1 << 62  # a minute number no clock reaches


def _minute(until: float) -> int:
    return FOREVER if until == math.inf else math.ceil(until / BUCKET)


class ExpiringIds:
    """Ids with an expiry; ``in`` is one hash and one dict look-up."""

    __slots__ = ("_minutes", "_shared")

    def __init__(self) -> None:
        self._minutes: dict[int, int] = {}
        self._shared: dict[int, int] = {}

    def __contains__(self, value: object) -> bool:
        return (hash(value) & MASK) in self._minutes

    def __len__(self) -> int:
        return len(self._minutes)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ExpiringIds) and self._minutes == other._minutes

    __hash__ = None  # type: ignore[assignment]

    def add(self, value: str, until: float) -> bool:
        """Hold ``value`` until at least ``until``; True when it was not held before."""
        return self._add_fp(hash(value) & MASK, _minute(until)) is None

    def add_many(self, values: Iterable[str], until: float) -> list[str]:
        """``add`` of many values with one ``until``; returns the values that were new."""
        minutes, minute = self._minutes, _minute(until)
        shared = self._shared.setdefault(minute, minute)
        new = []
        for value in values:
            fp = hash(value) & MASK
            old = minutes.get(fp)
            if old is None:
                new.append(value)
            if old is None or old < shared:
                minutes[fp] = shared
        return new

    def until(self, value: str) -> float | None:
        """When ``value`` may be forgotten (rounded up to the minute), or None if not held."""
        minute = self._minutes.get(hash(value) & MASK)
        if minute is None:
            return None
        return math.inf if minute == FOREVER else float(minute * BUCKET)

    def prune(self, now: float) -> int:
        """Forget every id whose ``until`` has passed; return how many went."""
        limit = FOREVER - 1 if now == math.inf else math.floor(now / BUCKET)
        dead = [fp for fp, minute in self._minutes.items() if minute <= limit]
        for fp in dead:
            del self._minutes[fp]
        self._shared = {m: m for m in set(self._minutes.values())}
        return len(dead)

    def merge(self, other: ExpiringIds) -> int:
        """Union ``other`` into this set; return how many ids were new."""
        return sum(self._add_fp(fp, minute) is None for fp, minute in other.items())

    def items(self) -> Iterator[tuple[int, int]]:
        """(fingerprint, minute) pairs, for merging."""
        return iter(list(self._minutes.items()))

    def _add_fp(self, fp: int, minute: int) -> int | None:
        old = self._minutes.get(fp)
        if old is None or old < minute:
            self._minutes[fp] = self._shared.setdefault(minute, minute)
        return old
