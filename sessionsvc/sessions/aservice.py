"""``AsyncSessionService``, defined with ``SessionService`` in ``sessionsvc.sessions.service``."""

from sessionsvc.sessions.service import AsyncSessionService

__all__ = ["AsyncSessionService"]
