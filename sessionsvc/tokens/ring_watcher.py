"""``RingWatcher``: a daemon thread that re-reads key-ring sources, so that no request waits for
a file read or an HTTPS fetch (``sessionsvc.tokens.ring_watch``)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Final

import structlog

from sessionsvc.tokens.ring_watch import RingWatch

__all__ = ["RingWatcher"]

log = structlog.get_logger("sessionsvc.keys")


JOIN_TIMEOUT: Final = 15.0
"""Seconds ``stop`` waits for a reload under way (a URL fetch ends by its deadline, 10 s)."""


class RingWatcher:
    """A daemon thread that reloads ``watches`` every ``interval`` seconds until ``stop()``."""

    def __init__(self, watches: Sequence[RingWatch], interval: float) -> None:
        self.watches = [w for w in watches if w.watched]
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> RingWatcher:
        """Start the thread (nothing to do without a watched file, or when running)."""
        if self.watches and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="key-ring-watch", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread and wait for it (``start()`` may run it again)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(JOIN_TIMEOUT)  # (a daemon: a fetch past its deadline is left)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for watch in self.watches:
                try:
                    watch.reload()
                except Exception:  # the watch must outlive any one failure
                    log.exception("key_ring_watch_failed", ring=watch.name)
