"""The login endpoint's logic (pure): the form, the throttle gate, the session.

``POST <prefix>/login`` takes JSON ``{"username", "password"}`` or the same as a form post,
with optional ``transport`` (``cookie``, the default, or ``bearer``) and ``device``. In three
steps, so that an adapter can run the app's credential check (sync or async) between them:

1. ``form(req)``: the fields, checked (400); a cookie-mode login passes Fetch Metadata and
   Origin (there is no session yet, so no CSRF token: login CSRF is refused by origin);
2. ``gate(req, form)``: the throttle reserves this attempt on the user name's and the client
   address's counters (429 with ``Retry-After`` over a limit: *before* the password is checked,
   so a locked account cannot be brute-forced, and concurrent guesses cannot pass together);
3. the app's check, then ``login(req, form, identity)``: a failure is a 401 (the attempt was
   counted by ``gate``), a success resets the name's count, gives the address its attempt back
   and starts a session (the tokens by the chosen transport).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sessionsvc._redis.run import Op
from sessionsvc.integrations.web.auth import AuthCore
from sessionsvc.integrations.web.http import Problem, WebRequest, WebResponse
from sessionsvc.integrations.web.throttle import LoginThrottle, throttled
from sessionsvc.integrations.web.transport import Transport
from sessionsvc.sessions.core import SessionCore

__all__ = ["Identity", "LoginFlow", "LoginForm", "identity_of"]

MAX_USERNAME = 256
MAX_PASSWORD = 1024


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the app's credential check found: the ``sub`` and app claims for the tokens."""

    sub: str
    claims: Mapping[str, Any] = field(default_factory=dict)


def identity_of(found: object) -> Identity | None:
    """What the app's ``authenticate_user`` answered (once awaited) as an ``Identity``: a
    ``sub``, an ``Identity`` or ``None`` (``TypeError`` for anything else)."""
    if found is None or isinstance(found, Identity):
        return found
    if isinstance(found, str):
        return Identity(found)
    raise TypeError("authenticate_user must return a sub, an Identity or None")


@dataclass(frozen=True, slots=True)
class LoginForm:
    """A login request's fields (``repr`` hides the password)."""

    username: str
    password: str = field(repr=False)
    transport: Transport = "cookie"
    device: str | None = None


def _utf8(text: str) -> bool:
    # JSON's "\ud800" is a str Python accepts but no UTF-8 byte string holds
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class LoginFlow:
    """The login endpoint on ``auth``'s policies, ``sessions`` and ``throttle``."""

    def __init__(self, auth: AuthCore, sessions: SessionCore, throttle: LoginThrottle) -> None:
        self.auth = auth
        self.sessions = sessions
        self.throttle = throttle

    def form(self, req: WebRequest) -> LoginForm:
        """The checked fields of a login request."""
        fields = req.form if req.form is not None else {}
        username, password = fields.get("username"), fields.get("password")
        transport = fields.get("transport", "cookie")
        device = fields.get("device")
        if not isinstance(username, str) or not 0 < len(username) <= MAX_USERNAME:
            raise Problem(400, "invalid_request", "username is required")
        if not isinstance(password, str) or not 0 < len(password) <= MAX_PASSWORD:
            raise Problem(400, "invalid_request", "password is required")
        if transport not in ("cookie", "bearer"):
            raise Problem(400, "invalid_request", "transport is 'cookie' or 'bearer'")
        if device is not None and not isinstance(device, str):
            raise Problem(400, "invalid_request", "device must be a string")
        if not all(_utf8(v) for v in (username, password, device or "")):
            raise Problem(400, "invalid_request", "fields must be valid UTF-8 text")
        if transport == "cookie":
            self.auth.csrf.check_origin(req)
        return LoginForm(username, password, transport, device)

    def gate(self, req: WebRequest, form: LoginForm) -> Op[None]:
        """Count this attempt for its user name and client address (``LoginThrottle.check``):
        ``Problem(429)`` if that takes either over its limit."""
        wait = yield from self.throttle.check(form.username, req.client)
        if wait is not None:
            raise throttled(wait)

    def login(self, req: WebRequest, form: LoginForm, identity: Identity | None) -> Op[WebResponse]:
        """Refuse a failure (401: ``gate`` counted it) or start a session for ``identity``."""
        if identity is None:
            raise Problem(401, "invalid_credentials", "wrong user name or password")
        yield from self.throttle.succeeded(form.username, req.client)
        pair = yield from self.sessions.login(
            identity.sub,
            ip=req.client,
            user_agent=req.header("user-agent"),
            device=form.device,
            claims=identity.claims or None,
        )
        return self.auth.tokens(pair, form.transport)
