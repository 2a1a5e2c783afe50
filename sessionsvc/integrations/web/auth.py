"""``AuthCore``: the web core's policies in one object, and how a request is authenticated (pure).

A protected request costs one local ``Validator.validate`` and no Redis round trip:

1. ``credential(req)``: tokens in the URL refused (400); the bearer token, else the access
   cookie, else none (401, or ``None`` for optional auth);
2. the adapter validates the token (``validate``; ``await avalidate`` in asyncio code) and
   hands the claims or the ``TokenRejected`` back;
3. ``accept(req, credential, claims, requirement)``: a cookie-mode unsafe request passes the CSRF
   checks (Fetch Metadata, Origin, the double-submit token bound to the session); the
   requirement's scopes and claims (403).

Token responses: cookie mode sets the three cookies and answers the session id, the access
lifetime and the CSRF token; bearer mode answers the tokens in the body, sets no cookie.
Both carry ``Cache-Control: no-store``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from sessionsvc.config import Settings
from sessionsvc.errors import SessionError, TokenRejected
from sessionsvc.integrations.web.config import WebSettings
from sessionsvc.integrations.web.cookies import CookiePolicy
from sessionsvc.integrations.web.cors import CorsPolicy
from sessionsvc.integrations.web.csrf import VARY, CsrfPolicy, CsrfTokens
from sessionsvc.integrations.web.http import Problem, WebRequest, WebResponse
from sessionsvc.integrations.web.principal import Principal, Requirement
from sessionsvc.integrations.web.statuses import problem_for, unauthenticated
from sessionsvc.integrations.web.transport import Credential, Transport, credential
from sessionsvc.revocation.view import Revocation
from sessionsvc.tokens.issuer import TokenPair

__all__ = ["AuthCore"]

NO_STORE = ("cache-control", "no-store")


class AuthCore:
    """The cookie, CSRF and CORS policies of one app, and the decisions that use them.
    ``check()`` at start-up refuses insecure settings (``ConfigError``) and returns warnings."""

    def __init__(
        self,
        settings: Settings,
        web: WebSettings,
        *,
        revoke_locally: Callable[[Revocation], object] | None = None,
    ) -> None:
        self.settings = settings
        self.web = web
        self.cookies = CookiePolicy(web, settings)
        self.csrf_tokens = CsrfTokens.for_settings(web, settings)
        self.csrf = CsrfPolicy(web, self.csrf_tokens)
        self.cors = CorsPolicy(web.cors_origins)
        self.revoke_locally = revoke_locally

    def check(self) -> list[str]:
        """Refuse insecure settings outside development (``ConfigError``); the warnings."""
        return self.cookies.check()

    # -- authenticating a request ---------------------------------------------------------------

    def credential(self, req: WebRequest) -> Credential | None:
        """The request's credential (``Problem(400)`` for a token in the URL)."""
        return credential(req, self.web.access_cookie)

    def require_credential(self, req: WebRequest) -> Credential:
        """The request's credential; ``Problem(401)`` without one."""
        found = self.credential(req)
        if found is None:
            raise unauthenticated()
        return found

    def rejected(self, exc: TokenRejected) -> Problem:
        """The answer to a token the validator rejected (401, or 503 when ``stale``)."""
        return problem_for(exc, retry_after=self.web.stale_retry_after)

    def needs_form(self, req: WebRequest, found: Credential) -> bool:
        """Whether the CSRF check must look for the token in the body: a cookie-mode unsafe
        request without the CSRF header (an HTML form post carries it as a field)."""
        return found.transport == "cookie" and req.unsafe and self.csrf.header not in req.headers

    def accept(
        self,
        req: WebRequest,
        found: Credential,
        claims: Mapping[str, Any],
        requirement: Requirement | None = None,
        *,
        handshake: bool = False,
    ) -> Principal:
        """The principal of a validated token, after the CSRF checks (cookie mode, unsafe
        methods) and the route's requirement. A WebSocket ``handshake`` in cookie mode must
        come from an allowed origin (cross-site WebSocket hijacking: the handshake is a GET
        that browsers send with cookies from any site)."""
        principal = Principal(claims["sub"], claims["sid"], claims, found.transport)
        if found.transport == "cookie" and handshake:
            self.csrf.check_origin(replace(req, method="POST"))  # judged as an unsafe request
        elif found.transport == "cookie" and req.unsafe:
            self.csrf.check(req, principal.sid)
        if requirement is not None:
            requirement.check(principal)
        return principal

    # -- answering -----------------------------------------------------------------------------

    def tokens(self, pair: TokenPair, transport: Transport, status: int = 200) -> WebResponse:
        """The response that hands out ``pair`` by ``transport``."""
        if transport == "bearer":
            body = {
                "access_token": pair.access_token,
                "refresh_token": pair.refresh_token,
                "token_type": "Bearer",
                "expires_in": pair.expires_in,
                "refresh_expires_in": pair.refresh_expires_in,
                "session_id": pair.session_id,
            }
            return WebResponse(status, body, [NO_STORE])
        csrf = self.csrf_tokens.issue(pair.session_id)
        body = {"session_id": pair.session_id, "expires_in": pair.expires_in, "csrf_token": csrf}
        return WebResponse(status, body, [*self.cookies.set_tokens(pair, csrf), VARY])

    def signed_out(self, status: int = 200, body: Any = None, *, site_data: bool) -> WebResponse:
        """A response that clears the token cookies (and, ``site_data``, sends Clear-Site-Data)."""
        return WebResponse(status, body, self.cookies.clear(site_data))

    def failure(self, exc: SessionError) -> WebResponse:
        """The answer to an endpoint's error (``problem_for``; ``Retry-After`` as configured)."""
        return self.refusal(problem_for(exc, retry_after=self.web.stale_retry_after))

    def refusal(self, problem: Problem) -> WebResponse:
        """``problem`` as a response (clearing the token cookies when it says so)."""
        response = problem.response()
        if problem.clear_cookies:
            response.headers += [h for h in self.cookies.clear(False) if h != NO_STORE]
        return response

    def revoked_here(self, revocation: Revocation) -> None:
        """Apply a revocation this node just made to its own view at once (the feed brings
        it to every other node within milliseconds, and here too a moment later)."""
        if self.revoke_locally is not None:
            self.revoke_locally(revocation)
