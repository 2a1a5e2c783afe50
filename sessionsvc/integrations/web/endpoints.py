"""The auth endpoints after login (pure): refresh, logout, logout-all, the sessions list,
signing out one session or the others, the public keys.

Each handler is an op (``sessionsvc._redis.run``): it yields the session core's Redis effects
and returns a ``WebResponse`` or raises a ``Problem``; adapters run it with ``run`` or
``arun``. Every handler but refresh and jwks takes the ``Principal`` the adapter authenticated
(``AuthCore.accept``: cookie-mode unsafe requests passed the CSRF checks).

**Refresh**, two ways in:

- ``POST`` with JSON ``{"refresh_token"}`` (bearer mode): the tokens in the body;
- ``POST`` with the refresh cookie (cookie mode): Fetch Metadata and Origin, then the CSRF token
  of the session the refresh token names (its ``sid`` read before verification: the CSRF
  token is an HMAC of it, so a forged sid gains nothing and verification follows at once);
- ``GET ?next=/path`` with the refresh cookie: the page flow of server-rendered apps (their pages
  never see the path-scoped refresh cookie): a same-origin navigation (``Sec-Fetch-Site``
  ``same-origin`` or ``none``) is answered ``303`` to ``next``, which must be a local path.

Two tabs refreshing at once both get the current pair (the session core's overlap window), so
neither clears the other's new cookies. A reused refresh token revokes the session:
``ReuseDetected`` (401, cookies cleared; the adapter calls ``on_theft_detected``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from sessionsvc._redis.run import Op
from sessionsvc.encoding import b64url_decode
from sessionsvc.errors import RefreshReuseDetected, SessionNotFound, TokenRejected
from sessionsvc.integrations.web.auth import NO_STORE, AuthCore
from sessionsvc.integrations.web.http import Problem, ReuseDetected, WebRequest, WebResponse
from sessionsvc.integrations.web.principal import Principal
from sessionsvc.revocation.events import Lifetimes
from sessionsvc.revocation.view import Revocation
from sessionsvc.sessions.core import SessionCore
from sessionsvc.sessions.keys import parse_session_id
from sessionsvc.tokens.keys import KeyRing

__all__ = ["Endpoints", "local_next"]

MAX_NEXT = 2048
_LOCATION_SAFE = "/?#&=;:@!$'()*+,~%-._"  # (RFC 3986 path and query characters)


def local_next(value: object) -> str:
    """``value`` as a ``Location`` if it is a local path (``/…``, not ``//host`` or ``/\\host``),
    percent-encoded to ASCII; else ``/``."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NEXT or not value.isprintable():
        return "/"
    encoded = quote(value, safe=_LOCATION_SAFE)
    if encoded.startswith("/") and not encoded.startswith(("//", "/\\")) and "\\" not in value:
        return encoded
    return "/"


class Endpoints:
    """The endpoint logic on ``auth``'s policies and the session core."""

    def __init__(
        self, auth: AuthCore, sessions: SessionCore, access_keys: Callable[[], KeyRing]
    ) -> None:
        self.auth = auth
        self.sessions = sessions
        self.access_keys = access_keys  # (called per request: the ring as last reloaded)
        self._longest_access = Lifetimes.of(auth.settings).longest_access

    # -- refresh --------------------------------------------------------------------------------

    def refresh(self, req: WebRequest, next_path: str | None = None) -> Op[WebResponse]:
        """Rotate the refresh token (see the module docstring for the three ways in)."""
        if req.method not in ("GET", "POST"):
            raise Problem(405, "invalid_request", "refresh takes GET or POST")
        body = req.form or {}
        if req.method == "POST" and "refresh_token" in body:
            token = body["refresh_token"]
            if not isinstance(token, str) or not token:
                raise Problem(400, "invalid_request", "refresh_token must be a string")
            pair = yield from self._rotate(token)
            return self.auth.tokens(pair, "bearer")
        location = local_next(next_path)  # (before rotating: nothing can fail after it)
        if req.method == "GET":
            site = req.header("sec-fetch-site")
            if site not in (None, "same-origin", "none"):
                raise Problem(403, "csrf", "refresh by navigation from another site refused")
        token, sid = self._cookie_token(req)
        if req.method == "POST":
            self.auth.csrf.check(req, sid)
        pair = yield from self._rotate(token)
        response = self.auth.tokens(pair, "cookie")
        if req.method == "GET":
            response.status, response.body = 303, None
            response.add("location", location)
        return response

    def _cookie_token(self, req: WebRequest) -> tuple[str, str]:
        # The refresh cookie whose session the CSRF cookie (``__Host-``: no other host can
        # plant it) belongs to. A sibling subdomain can plant a second refresh cookie of the
        # same name and path, which a browser may send first: it is never taken for ours.
        cookies = self.auth.cookies
        csrf = req.cookies.get(cookies.csrf_name)
        size = self.auth.settings.max_token_size
        for token in req.cookie_values(cookies.refresh_name):
            sid = _unverified_sid(token, size)
            if sid is not None and csrf is not None and self.auth.csrf_tokens.valid(csrf, sid):
                return token, sid
        raise Problem(401, "invalid_grant", "no refresh token of this session", clear_cookies=True)

    def _rotate(self, token: str) -> Op[Any]:
        try:
            return (yield from self.sessions.refresh(token))
        except RefreshReuseDetected as exc:
            # the session core revoked it in the log; here at once too (not a feed's moment later)
            self._revoked(Revocation("session", exc.session_id))
            raise ReuseDetected(exc.session_id) from None
        except TokenRejected as exc:
            raise Problem(401, "invalid_grant", exc.reason, clear_cookies=True) from None

    # -- signing out ---------------------------------------------------------------------------

    def logout(self, req: WebRequest, principal: Principal) -> Op[WebResponse]:
        """End the caller's session (its tokens fail everywhere within milliseconds)."""
        yield from self.sessions.logout(principal.sid)
        self._revoked(Revocation("session", principal.sid))
        return self._signed_out(principal, {"signed_out": 1})

    def logout_all(self, req: WebRequest, principal: Principal) -> Op[WebResponse]:
        """End every session of the caller's user ("sign out everywhere")."""
        now = self.sessions.clock()
        ended = yield from self.sessions.logout_all(principal.sub)
        self._revoked(Revocation("user", principal.sub, before=now))
        return self._signed_out(principal, {"signed_out": ended})

    def delete_session(self, req: WebRequest, principal: Principal, sid: str) -> Op[WebResponse]:
        """End one of the caller's own sessions; another user's (or an unknown) sid is 404."""
        try:
            owner = parse_session_id(sid)[0]
        except SessionNotFound:
            owner = None
        if owner != principal.sub:
            raise Problem(404, "not_found", "no such session")
        ended = yield from self.sessions.logout(sid)
        if not ended:
            raise Problem(404, "not_found", "no such session")
        self._revoked(Revocation("session", sid))
        if sid == principal.sid:
            return self._signed_out(principal, {"signed_out": 1})
        return WebResponse(200, {"signed_out": 1}, [NO_STORE])

    def revoke_others(self, req: WebRequest, principal: Principal) -> Op[WebResponse]:
        """End every session of the caller's user but the caller's own."""
        sessions = yield from self.sessions.list_sessions(principal.sub)
        ended = 0
        for info in sessions:
            if info.session_id != principal.sid:
                ended += bool((yield from self.sessions.logout(info.session_id)))
                self._revoked(Revocation("session", info.session_id))
        return WebResponse(200, {"signed_out": ended}, [NO_STORE])

    def _signed_out(self, principal: Principal, body: Any) -> WebResponse:
        if principal.transport == "cookie":
            return self.auth.signed_out(200, body, site_data=True)
        return WebResponse(200, body, [NO_STORE])

    def _revoked(self, revocation: Revocation) -> None:
        until = self.sessions.clock() + self._longest_access
        self.auth.revoked_here(
            Revocation(revocation.kind, revocation.value, revocation.before, until)
        )

    # -- reading -------------------------------------------------------------------------------

    def list_sessions(self, req: WebRequest, principal: Principal) -> Op[WebResponse]:
        """The caller's live sessions, oldest first, the caller's own marked ``current``."""
        sessions = yield from self.sessions.list_sessions(principal.sub)
        body = [
            {
                "session_id": s.session_id,
                "device": s.device,
                "ip": s.ip,
                "user_agent": s.user_agent,
                "created": s.created,
                "last_seen": s.last_seen,
                "expires_at": s.expires_at,
                "current": s.session_id == principal.sid,
            }
            for s in sessions
        ]
        return WebResponse(200, {"sessions": body}, [NO_STORE])

    def jwks(self) -> WebResponse:
        """The public access keys (never a private key, never an HMAC secret)."""
        keys = self.access_keys().public_jwks()
        return WebResponse(200, keys, [("cache-control", "max-age=300")])


def _unverified_sid(token: str, max_size: int) -> str | None:
    # the sid a refresh token names, before verification (only to pick the CSRF token to check)
    parts = token.split(".") if len(token) <= max_size else []
    try:
        claims = json.loads(b64url_decode(parts[1])) if len(parts) == 3 else None
    except (ValueError, UnicodeDecodeError, RecursionError):
        claims = None
    sid = claims.get("sid") if isinstance(claims, dict) else None
    return sid if isinstance(sid, str) else None
