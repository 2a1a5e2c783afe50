"""Flask: ``Auth`` — the blueprint of auth endpoints, the ``required`` decorator, server-sent
events that end on sign-out (extra ``sessionsvc[flask]``).

    auth = Auth(authenticate_user=check_password)       # settings from the environment
    app = Flask(__name__)
    auth.init_app(app)                                  # blueprint, error format, CORS, feed

    @app.get("/api/me")
    @auth.required()
    def me() -> dict[str, str]:
        return {"sub": g.principal.sub}

The same contract as the FastAPI adapter (paths, cookies, statuses, CSRF, bodies): every
decision is the web core's; requests and responses are converted by
``sessionsvc.integrations.werkzeug``. A protected request
costs one local validation, no Redis round trip. The validator follows the revocation log in a
thread started by the first request of each process (a worker forked by gunicorn starts its
own), or by ``auth.start()``; it is closed at exit.
"""

from __future__ import annotations

import atexit
import inspect
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import replace
from functools import wraps
from typing import Any, TypeVar, cast

import structlog
from flask import Blueprint, Flask, Response, g, request
from flask import Request as FlaskRequest
from werkzeug.wrappers import Response as BaseResponse

from sessionsvc._redis.run import Op, run
from sessionsvc.config import Settings, load_settings
from sessionsvc.errors import SessionError, TokenRejected
from sessionsvc.integrations.web.assembly import assemble
from sessionsvc.integrations.web.config import WebSettings, load_web_settings
from sessionsvc.integrations.web.http import Problem, ReuseDetected, WebResponse
from sessionsvc.integrations.web.live import LiveRegistry
from sessionsvc.integrations.web.login import Identity, identity_of
from sessionsvc.integrations.web.principal import Principal, Requirement
from sessionsvc.integrations.web.statuses import problem_for
from sessionsvc.integrations.werkzeug import event_stream, read_body, render, web_request
from sessionsvc.sessions.service import SessionService
from sessionsvc.validator import Validator

__all__ = ["Auth", "Identity", "Principal", "read_body", "render", "web_request"]

log = structlog.get_logger("sessionsvc.web")
CheckUser = Callable[[str, str], "Identity | str | None"]
TheftHook = Callable[[str, FlaskRequest], object]
View = TypeVar("View", bound=Callable[..., Any])


class Auth:
    """sessionsvc for Flask apps. ``authenticate_user(username, password)`` returns the
    user's ``sub`` (or an ``Identity`` with app claims), or ``None``."""

    def __init__(
        self,
        settings: Settings | None = None,
        web: WebSettings | None = None,
        *,
        authenticate_user: CheckUser | None = None,
        validator: Validator | None = None,
        sessions: SessionService | None = None,
        on_theft_detected: TheftHook | None = None,
    ) -> None:
        if inspect.iscoroutinefunction(authenticate_user):
            raise TypeError("authenticate_user must be a plain function with Flask (not async)")
        self.settings = settings = settings or load_settings()
        self.web = web = web or load_web_settings()
        self.validator = validator or Validator(settings)
        self.sessions = sessions or SessionService(settings)
        parts = assemble(settings, web, self.validator, self.sessions.core)  # (ConfigError)
        self.core, self.login_flow, self.endpoints = parts.core, parts.login_flow, parts.endpoints
        for warning in parts.warnings:
            log.warning("web_settings", warning=warning)
        self.live = LiveRegistry()  # the open event streams, ended by revocations
        self.validator.add_listener(self.live.revoked)
        self._check_user = authenticate_user
        self._on_theft = on_theft_detected
        self._started: int | None = None  # the process that follows the log
        self._at_exit = False
        self._lock = threading.Lock()
        self.blueprint = self._blueprint()

    # -- the app's side -------------------------------------------------------------------------

    def init_app(self, app: Flask) -> None:
        """The blueprint, the ``{"error", "error_description"}`` format, CORS if configured;
        the first request of each process starts following the revocation log."""
        app.register_blueprint(self.blueprint)
        app.register_error_handler(Problem, lambda p: render(self.core.refusal(p)))
        app.before_request(self._before)
        if self.core.cors.enabled:
            app.after_request(self._cors)
        app.extensions["sessionsvc"] = self

    def start(self) -> None:
        """Follow the revocation log in this process (a thread; once per process: in a forked
        worker, the feed inherited from its parent, without its thread, is started anew)."""
        with self._lock:
            if self._started == os.getpid():
                return
            if self._started is not None:  # forked: the feed's thread did not come along
                self.validator.close()
            elif not self._at_exit:
                atexit.register(self.close)
                self._at_exit = True
            self.validator.start()
            self._started = os.getpid()

    def close(self) -> None:
        """Stop following and release the connections."""
        self.validator.close()
        self.sessions.close()
        self._started = None

    def required(
        self,
        *,
        scopes: tuple[str, ...] | list[str] | str = (),
        claims: Any = (),
        optional: bool = False,
    ) -> Callable[[View], View]:
        """A view decorator: the request's ``Principal`` on ``flask.g.principal`` (401/403/503
        otherwise); ``optional``: ``None`` for a request without credentials."""
        requirement = Requirement.of(scopes, claims)

        def decorate(view: View) -> View:
            if inspect.iscoroutinefunction(view):
                raise TypeError("auth.required() protects plain (not async) views")

            @wraps(view)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                try:
                    g.principal = self.authenticate(requirement, optional=optional)
                except Problem as problem:
                    return render(self.core.refusal(problem))
                return view(*args, **kwargs)

            return cast(View, wrapper)

        return decorate

    def authenticate(
        self, requirement: Requirement | None = None, *, optional: bool = False
    ) -> Principal | None:
        """The current request's principal, or ``Problem``; one local validation, no Redis
        (a cookie-mode form post without the CSRF header: its body is read for the token)."""
        req = web_request(request)
        found = self.core.credential(req)
        if found is None:
            if optional:
                return None
            found = self.core.require_credential(req)
        try:
            claims = self.validator.validate(found.token)
        except TokenRejected as exc:
            raise self.core.rejected(exc) from None
        if self.core.needs_form(req, found):
            req = replace(req, form=read_body(request))  # the CSRF token as a field
        return self.core.accept(req, found, claims, requirement)

    def sse(self, principal: Principal, events: Iterable[Any]) -> Response:
        """A ``text/event-stream`` of ``events`` (each a string or JSON-able ``data``) that
        sends ``event: revoked`` and ends when the principal's session is revoked. ``events``
        runs in a thread of its own and is closed (``close()``) however the stream ends."""
        return Response(
            event_stream(self.live, principal, events),
            mimetype="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    # -- the endpoints ---------------------------------------------------------------------------

    def _blueprint(self) -> Blueprint:
        bp, p = Blueprint("sessionsvc", __name__), self.web.prefix

        def rule(path: str, name: str, view: Callable[..., Any], *methods: str) -> None:
            # (no automatic OPTIONS answer: a preflight is CORS's, anything else 405)
            bp.add_url_rule(path, name, view, methods=methods, provide_automatic_options=False)

        rule(f"{p}/login", "login", self._login, "POST")
        rule(f"{p}/refresh", "refresh", self._refresh, "POST", "GET")
        for path, handler, method in (
            ("/logout", self.endpoints.logout, "POST"),
            ("/logout-all", self.endpoints.logout_all, "POST"),
            ("/sessions", self.endpoints.list_sessions, "GET"),
            ("/sessions/revoke-others", self.endpoints.revoke_others, "POST"),
            ("/sessions/<sid>", self.endpoints.delete_session, "DELETE"),
        ):
            rule(f"{p}{path}", handler.__name__, self._signed_in(handler), method)
        rule(self.web.jwks_path, "jwks", lambda: render(self.endpoints.jwks()), "GET")
        return bp

    def _before(self) -> BaseResponse | None:
        if self._started != os.getpid():
            self.start()
        if not self.core.cors.enabled:
            return None
        preflight = self.core.cors.preflight(web_request(request))
        return None if preflight is None else render(preflight)

    def _cors(self, response: Response) -> Response:
        req = web_request(request)
        if self.core.cors.preflight(req) is None:  # (a preflight has its own headers)
            for name, value in self.core.cors.headers(req):
                response.headers.add(name, value)
        return response

    def _run(self, op: Op[WebResponse]) -> BaseResponse:
        try:
            return render(run(self.sessions.redis, op))
        except ReuseDetected as theft:
            log.warning("refresh_token_reuse", session_id=theft.session_id)
            if self._on_theft is not None:
                self._on_theft(theft.session_id, request)
            return render(self.core.refusal(theft))
        except SessionError as exc:
            return render(self.core.failure(exc))

    def _login(self) -> BaseResponse:
        try:
            req = web_request(request, read_body(request))
            form = self.login_flow.form(req)
            run(self.sessions.redis, self.login_flow.gate(req, form))
            if self._check_user is None:
                raise Problem(501, "not_configured", "this app has no password login")
            identity = identity_of(self._check_user(form.username, form.password))
        except SessionError as exc:
            return render(self.core.refusal(problem_for(exc)))
        return self._run(self.login_flow.login(req, form, identity))

    def _refresh(self) -> BaseResponse:
        try:
            form = read_body(request) if request.method == "POST" else None
        except Problem as problem:
            return render(self.core.refusal(problem))
        return self._run(
            self.endpoints.refresh(web_request(request, form), request.args.get("next"))
        )

    def _signed_in(self, handler: Callable[..., Op[WebResponse]]) -> Callable[..., BaseResponse]:
        def endpoint(**path: str) -> BaseResponse:
            try:
                principal = self.authenticate()
            except Problem as problem:
                return render(self.core.refusal(problem))
            assert principal is not None
            return self._run(handler(web_request(request), principal, **path))

        endpoint.__doc__ = handler.__doc__
        return endpoint
