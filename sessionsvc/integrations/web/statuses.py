"""Errors → HTTP statuses, in one place (pure).

- no credential: 401, ``WWW-Authenticate: Bearer`` (no error code: RFC 6750 §3.1);
- ``TokenRejected`` (any reason but ``stale``): 401, ``WWW-Authenticate: Bearer
  error="invalid_token", error_description="<reason>"``;
- ``TokenRejected("stale")``: 503 with ``Retry-After`` (the view cannot prove it unrevoked);
- a missing scope or claim: 403, ``WWW-Authenticate: Bearer error="insufficient_scope"``;
- ``RefreshReuseDetected``: 401, error ``invalid_grant`` (the session was revoked);
- ``SessionNotFound``: 404; ``InvalidArgument``: 400; ``StoreUnavailable``: 503 + ``Retry-After``.

The ``error_description`` of a rejected token is its reason code (``REASONS``), never the
detail text: that stays in the server's logs.
"""

from __future__ import annotations

from collections.abc import Iterable

from sessionsvc.errors import (
    InvalidArgument,
    RefreshReuseDetected,
    SessionError,
    SessionNotFound,
    StoreUnavailable,
    TokenRejected,
)
from sessionsvc.integrations.web.http import Problem

__all__ = ["insufficient", "problem_for", "unauthenticated"]

_BEARER = "Bearer"


def unauthenticated() -> Problem:
    """No credential at all."""
    return Problem(
        401, "unauthenticated", "authentication required", [("www-authenticate", _BEARER)]
    )


def insufficient(scopes: Iterable[str], what: str = "scope") -> Problem:
    """A valid token without a required scope or claim."""
    needed = " ".join(scopes)
    challenge = f'{_BEARER} error="insufficient_scope"' + (f', scope="{needed}"' if needed else "")
    return Problem(403, "insufficient_scope", f"missing {what}", [("www-authenticate", challenge)])


def problem_for(exc: SessionError, *, retry_after: int = 1) -> Problem:
    """The response for a library error (a ``Problem`` is returned as is)."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, RefreshReuseDetected):  # (a TokenRejected: first)
        return Problem(401, "invalid_grant", "refresh token reused: the session was revoked")
    if isinstance(exc, TokenRejected):
        if exc.reason == "stale":
            return Problem(503, "stale", "revocation state unavailable", _retry(retry_after))
        challenge = f'{_BEARER} error="invalid_token", error_description="{exc.reason}"'
        return Problem(401, "invalid_token", exc.reason, [("www-authenticate", challenge)])
    if isinstance(exc, SessionNotFound):
        return Problem(404, "not_found", "no such session")
    if isinstance(exc, StoreUnavailable):
        return Problem(503, "unavailable", "session store unavailable", _retry(retry_after))
    if isinstance(exc, InvalidArgument):
        return Problem(400, "invalid_request", "invalid request")
    return Problem(500, "server_error", "internal error")


def _retry(seconds: int) -> list[tuple[str, str]]:
    return [("retry-after", str(seconds))]
