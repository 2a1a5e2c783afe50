"""The live-connection registry: which open connections a revocation ends, and when."""

from __future__ import annotations

from sessionsvc.integrations.web.live import LiveRegistry
from sessionsvc.revocation.view import Revocation, RevocationView

CLAIMS = {"sub": "alice", "sid": "s1", "jti": "j1", "iat": 100}


def test_a_revocation_ends_the_watched_sessions_connection_once() -> None:
    ended: list[str] = []
    registry = LiveRegistry()
    registry.watch(CLAIMS, ended.append)
    registry.revoked(Revocation("session", "s1", until=10**10))
    registry.revoked(Revocation("session", "s1", until=10**10))
    assert ended == ["session revoked"] and len(registry) == 0


def test_a_session_revoked_before_its_watch_began_is_ended_at_once() -> None:
    view = RevocationView()
    view.apply(Revocation("user", "alice", before=200, until=10**10))
    ended: list[str] = []
    registry = LiveRegistry(view)
    registry.watch(CLAIMS, ended.append)
    assert ended == ["user signed out everywhere"] and len(registry) == 0
    registry.watch({**CLAIMS, "sub": "bob"}, ended.append)
    assert len(registry) == 1 and ended == ["user signed out everywhere"]
