"""FastAPI: ``Auth`` — the dependency, the router of auth endpoints, the middleware (extra
``sessionsvc[fastapi]``).

    auth = Auth(authenticate_user=check_password)       # settings from the environment
    app = FastAPI(lifespan=auth.lifespan)               # follows the revocation log
    auth.install(app)                                   # router, error format, CORS

    @app.get("/api/me")
    async def me(user: Principal = Depends(auth.require())) -> dict[str, str]:
        return {"sub": user.sub}

A protected request costs one local validation, no Redis round trip. ``install`` is
``app.include_router(auth.router)`` plus the error handler (refusals answer
``{"error", "error_description"}``; without it FastAPI wraps them in ``{"detail": …}``, same
statuses and headers) and CORS when ``SESSIONSVC_WEB_CORS_ORIGINS`` lists origins.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI, HTTPException, Request, WebSocket, WebSocketException
from fastapi.routing import APIRoute
from starlette.responses import Response
from starlette.routing import Match
from starlette.status import WS_1008_POLICY_VIOLATION
from starlette.types import ASGIApp, Receive, Scope, Send

from sessionsvc._redis.run import Op, arun
from sessionsvc.config import Settings
from sessionsvc.errors import SessionError, TokenRejected
from sessionsvc.integrations.starlette import CorsMiddleware, read_body, render, web_request
from sessionsvc.integrations.web.config import WebSettings
from sessionsvc.integrations.web.http import Problem, ReuseDetected, WebResponse
from sessionsvc.integrations.web.login import Identity, identity_of
from sessionsvc.integrations.web.principal import Principal, Requirement
from sessionsvc.integrations.web.statuses import problem_for
from sessionsvc.integrations.wiring import Wired
from sessionsvc.sessions.service import AsyncSessionService
from sessionsvc.validator import Validator

__all__ = ["Auth", "AuthMiddleware", "Identity", "Principal", "ProblemError"]

log = structlog.get_logger("sessionsvc.web")
CheckUser = Callable[[str, str], "Identity | str | Awaitable[Identity | str | None] | None"]
TheftHook = Callable[[str, Request], "Awaitable[None] | None"]


class ProblemError(HTTPException):
    """A ``Problem`` raised through FastAPI (the dependency's refusals)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.status, problem.description, dict(problem.response().headers))
        self.problem = problem


class Auth(Wired[AsyncSessionService]):
    """sessionsvc for one FastAPI app. ``authenticate_user(username, password)`` (sync or
    async) returns the user's ``sub`` (or an ``Identity`` with app claims), or ``None``."""

    def __init__(
        self,
        settings: Settings | None = None,
        web: WebSettings | None = None,
        *,
        authenticate_user: CheckUser | None = None,
        validator: Validator | None = None,
        sessions: AsyncSessionService | None = None,
        on_theft_detected: TheftHook | None = None,
    ) -> None:
        self._wire(settings, web, validator, sessions, AsyncSessionService)
        self._check_user = authenticate_user
        self._on_theft = on_theft_detected
        self.router = self._router()

    # -- the app's side -------------------------------------------------------------------------

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        """Follow the revocation log while the app runs (``FastAPI(lifespan=auth.lifespan)``)."""
        await self.validator.astart()
        try:
            yield
        finally:
            await self.validator.aclose()
            await self.sessions.aclose()

    def install(self, app: FastAPI) -> None:
        """The router, the ``{"error", "error_description"}`` format, CORS if configured."""
        app.include_router(self.router)
        app.add_exception_handler(ProblemError, _problem_handler)  # type: ignore[arg-type]
        if self.core.cors.enabled:
            app.add_middleware(CorsMiddleware, policy=self.core.cors)

    def require(
        self,
        *,
        scopes: tuple[str, ...] | list[str] | str = (),
        claims: Any = (),
        optional: bool = False,
    ) -> Callable[[Request], Awaitable[Any]]:
        """A dependency returning the request's ``Principal`` (401/403/503 otherwise);
        ``optional``: ``None`` for a request without credentials."""
        requirement = Requirement.of(scopes, claims)

        async def principal(request: Request) -> Principal | None:
            try:
                return await self.authenticate(request, requirement, optional=optional)
            except Problem as problem:
                raise ProblemError(problem) from None

        return principal

    async def authenticate(
        self,
        request: Request,
        requirement: Requirement | None = None,
        *,
        optional: bool = False,
        read_form: bool = True,
    ) -> Principal | None:
        """The request's principal, or ``Problem``; one local validation, no Redis.
        ``read_form``: an unsafe cookie-mode request without the CSRF header may carry the
        token as a form field (the body is read, at most ``MAX_BODY`` bytes)."""
        req = web_request(request)
        found = self.core.credential(req)
        if found is None:
            if optional:
                return None
            found = self.core.require_credential(req)
        try:
            claims = await self.validator.avalidate(found.token)
        except TokenRejected as exc:
            raise self.core.rejected(exc) from None
        if read_form and self.core.needs_form(req, found):
            req = replace(req, form=await read_body(request))  # the CSRF token as a field
        return self.core.accept(req, found, claims, requirement)

    async def authenticate_websocket(
        self, websocket: WebSocket, requirement: Requirement | None = None
    ) -> Principal:
        """The principal of a WebSocket handshake (before ``accept()``); a refused one is
        closed with 1008 (the handshake answered 403). Cookie mode checks the Origin."""
        req = web_request(websocket)
        try:
            found = self.core.require_credential(req)
            try:
                claims = await self.validator.avalidate(found.token)
            except TokenRejected as exc:
                raise self.core.rejected(exc) from None
            return self.core.accept(req, found, claims, requirement, handshake=True)
        except Problem as problem:
            raise WebSocketException(WS_1008_POLICY_VIOLATION, problem.code) from None

    # -- the endpoints ---------------------------------------------------------------------------

    def _router(self) -> APIRouter:
        router, p = APIRouter(route_class=_AuthRoute), self.web.prefix
        router.add_api_route(f"{p}/login", self._login, methods=["POST"])
        router.add_api_route(f"{p}/refresh", self._refresh, methods=["POST", "GET"])
        for path, handler, method in (
            ("/logout", self.endpoints.logout, "POST"),
            ("/logout-all", self.endpoints.logout_all, "POST"),
            ("/sessions", self.endpoints.list_sessions, "GET"),
            ("/sessions/revoke-others", self.endpoints.revoke_others, "POST"),
        ):
            router.add_api_route(f"{p}{path}", self._signed_in(handler), methods=[method])
        router.add_api_route(f"{p}/sessions/{{sid}}", self._delete_session, methods=["DELETE"])
        router.add_api_route(self.web.jwks_path, self._jwks, methods=["GET"])
        return router

    async def _run(self, request: Request, op: Op[WebResponse]) -> Response:
        try:
            return render(await arun(self.sessions.redis, op))
        except ReuseDetected as theft:
            await self._theft(theft.session_id, request)
            return render(self.core.refusal(theft))
        except SessionError as exc:
            return render(self.core.failure(exc))

    async def _login(self, request: Request) -> Response:
        try:
            req = web_request(request, await read_body(request))
            form = self.login_flow.form(req)
            await arun(self.sessions.redis, self.login_flow.gate(req, form))
            identity = await self._identity(form.username, form.password)
        except SessionError as exc:
            return render(self.core.refusal(problem_for(exc)))
        return await self._run(request, self.login_flow.login(req, form, identity))

    async def _refresh(self, request: Request) -> Response:
        try:
            form = await read_body(request) if request.method == "POST" else None
        except Problem as problem:
            return render(self.core.refusal(problem))
        req = web_request(request, form)
        return await self._run(
            request, self.endpoints.refresh(req, request.query_params.get("next"))
        )

    def _signed_in(
        self, handler: Callable[..., Op[WebResponse]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                principal = await self.authenticate(request)
            except Problem as problem:
                return render(self.core.refusal(problem))
            assert principal is not None
            return await self._run(request, handler(web_request(request), principal))

        endpoint.__name__ = handler.__name__
        endpoint.__doc__ = handler.__doc__
        return endpoint

    async def _delete_session(self, request: Request, sid: str) -> Response:
        try:
            principal = await self.authenticate(request)
        except Problem as problem:
            return render(self.core.refusal(problem))
        assert principal is not None
        return await self._run(
            request, self.endpoints.delete_session(web_request(request), principal, sid)
        )

    async def _jwks(self) -> Response:
        return render(self.endpoints.jwks())

    async def _identity(self, username: str, password: str) -> Identity | None:
        if self._check_user is None:
            raise Problem(501, "not_configured", "this app has no password login")
        found = self._check_user(username, password)
        if inspect.isawaitable(found):
            found = await found
        return identity_of(found)

    async def _theft(self, session_id: str, request: Request) -> None:
        log.warning("refresh_token_reuse", session_id=session_id)
        if self._on_theft is not None:
            result = self._on_theft(session_id, request)
            if inspect.isawaitable(result):
                await result


class AuthMiddleware:
    """For apps that prefer a middleware: every HTTP request under one of ``protect`` (path
    prefixes) needs a session (refused as the dependency refuses); elsewhere a valid one is
    recognised. The principal (or ``None``) is ``request.state.principal``. The body is never
    read here, so the CSRF token must come in the header (for HTML form posts that carry it as a
    field, use the dependency).
    ``app.add_middleware(AuthMiddleware, auth=auth, protect=("/api",))``."""

    def __init__(self, app: ASGIApp, auth: Auth, protect: tuple[str, ...] = ()) -> None:
        self.app = app
        self.auth = auth
        self.protect = tuple(p.rstrip("/") for p in protect)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        if scope["method"] == "OPTIONS" and any(
            name.lower() == b"access-control-request-method" for name, _ in scope["headers"]
        ):
            await self.app(scope, receive, send)  # a CORS preflight carries no credentials
            return
        path = scope["path"]  # (as ``request.url.path``, without building the URL)
        required = any(path == p or path.startswith(p + "/") for p in self.protect)
        try:
            principal = await self.auth.authenticate(
                request, optional=not required, read_form=False
            )
        except Problem as problem:
            if required:
                await render(problem.response())(scope, receive, send)
                return
            principal = None  # an unprotected path: a bad token is no principal
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


class _AuthRoute(APIRoute):
    """An auth endpoint's route that lets every other request pass at the cost of one
    substring test: the app's own routes usually come after ``install()``'s, and FastAPI would
    otherwise run each of these routes' full match (a regex, its scope bookkeeping) on every
    request to them. A path that does not contain the route's literal part (its path up to
    the first ``{``; a mount's or router's prefix may come before it) cannot match it."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        self._literal = self.path_format.partition("{")[0]

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if self._literal not in scope.get("path", ""):
            return Match.NONE, {}
        return super().matches(scope)


async def _problem_handler(request: Request, exc: ProblemError) -> Response:
    return render(exc.problem.response())
