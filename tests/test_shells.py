"""``operation``: a shell method declared once is a real blocking or coroutine method per class."""

from __future__ import annotations

import inspect
import pydoc

from sessionsvc import AsyncSessionService, SessionInfo, SessionService, TokenPair

METHODS = ("login", "refresh", "logout", "logout_all", "list_sessions", "get_session")


def test_each_method_has_the_public_signature_and_docstring() -> None:
    login = inspect.signature(SessionService.login)
    assert list(login.parameters) == [
        *("self", "sub", "ip", "user_agent", "device", "claims", "idp_issuer", "idp_sid"),
    ]
    assert login.return_annotation is TokenPair
    assert str(inspect.signature(SessionService.logout)) == (
        "(self, session_id: str, *, reason: str = 'logout') -> bool"
    )
    assert inspect.signature(SessionService.list_sessions).return_annotation == list[SessionInfo]
    text = pydoc.render_doc(SessionService.login, renderer=pydoc.plaintext)
    assert "login(self, sub: str, *, ip: str | None = None" in text
    assert "Create a session for ``sub`` and return its first access + refresh pair." in text


def test_the_async_twin_is_the_same_method_awaited() -> None:
    for name in METHODS:
        sync, coro = getattr(SessionService, name), getattr(AsyncSessionService, name)
        assert inspect.signature(sync) == inspect.signature(coro)
        assert sync.__doc__ == coro.__doc__
        assert (sync.__module__, sync.__qualname__) == (
            "sessionsvc.sessions.service",
            f"SessionService.{name}",
        )
        assert inspect.iscoroutinefunction(coro) and not inspect.iscoroutinefunction(sync)
