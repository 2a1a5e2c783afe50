"""``Throttle``: how fast each publisher's intake is read (pure, no I/O).

A publisher's events are charged to its budget (what it has in force), but re-sends, extensions
and cutoffs that move still append to the revocation log every validator follows and cost Redis
work. So each publisher intake gets a token bucket of ``rate`` events per second (a burst of one
second's worth): once it is empty, that intake is left out of the reads until it refills, and
the publisher's further events wait in its own stream — backpressure, nothing dropped; the
inbound lag of that intake shows it. Operators' intakes are never throttled.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

__all__ = ["Throttle"]


class Throttle:
    """Token buckets of ``rate`` events/s for ``streams`` (0: no limit)."""

    def __init__(
        self, rate: float, streams: Iterable[str], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.clock = clock
        now = clock()
        self._tokens = dict.fromkeys(streams, rate)
        self._at = dict.fromkeys(self._tokens, now)

    def take(self, stream: str, n: int) -> None:
        """``n`` events of ``stream`` were read (the bucket may go below zero)."""
        if self.rate > 0 and stream in self._tokens:
            self._refill(stream)
            self._tokens[stream] -= n

    def readable(self, stream: str) -> bool:
        """May ``stream`` be read now?"""
        if self.rate <= 0 or stream not in self._tokens:
            return True
        self._refill(stream)
        return self._tokens[stream] > 0

    def _refill(self, stream: str) -> None:
        now = self.clock()
        elapsed, self._at[stream] = now - self._at[stream], now
        self._tokens[stream] = min(self.rate, self._tokens[stream] + elapsed * self.rate)
