"""``AsyncFeed``, defined with ``Feed`` in ``sessionsvc.revocation.feed``."""

from sessionsvc.revocation.feed import AsyncFeed

__all__ = ["AsyncFeed"]
