"""The kids a ``key.revoke`` may name, from the configured key rings, re-read without a restart.

The worker accepts ``key.revoke`` only for a kid of the configured access or refresh ring (a
key revocation never expires: a made-up kid would be kept for ever). A rotation adds a key to
the JWKS files; ``ConfiguredKids`` re-reads them on a thread of its own every
``keys_reload_interval`` (``start``; ``refresh(now=True)`` at once), never from Redis, and a bad
file keeps its ring (``sessionsvc.tokens.ring_watch``), so that a new key can be revoked at once.
"""

from __future__ import annotations

from sessionsvc.config import Settings
from sessionsvc.tokens.keys import KeyRing
from sessionsvc.tokens.ring_watch import RingWatch
from sessionsvc.tokens.ring_watcher import RingWatcher

__all__ = ["ConfiguredKids"]


class ConfiguredKids:
    """The kids of the configured rings (``kids``: replaced whole, safe to read anywhere)."""

    def __init__(self, settings: Settings) -> None:
        sources = (("access", settings.access_jwks), ("refresh", settings.refresh_jwks))
        interval = settings.keys_reload_interval
        self.rings = [
            RingWatch(source.get_secret_value(), ring=name, interval=interval)
            for name, source in sources
            if source is not None
        ]
        for watch in self.rings:
            watch.listeners.append(self._changed)
        self.kids = self._union()
        self._watcher = RingWatcher(self.rings, interval)

    def start(self) -> ConfiguredKids:
        """Re-read the files every ``keys_reload_interval`` on a daemon thread."""
        self._watcher.start()
        return self

    def stop(self) -> None:
        """Stop that thread."""
        self._watcher.stop()

    def refresh(self, *, now: bool = False) -> bool:
        """Re-read the files (``now``, or those whose interval has passed); True if a ring
        changed."""
        changed = [w.reload() if now else w.poll() for w in self.rings]
        return any(changed)

    def _changed(self, ring: KeyRing) -> None:
        self.kids = self._union()

    def _union(self) -> frozenset[str]:
        return frozenset[str]().union(*(w.ring.keys for w in self.rings))
