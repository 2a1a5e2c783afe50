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
``sessionsvc.integrations.werkzeug``, and what every sync adapter shares (the feed per process,
the endpoints on a sync Redis client) is ``sessionsvc.integrations.sync``. A protected request
costs one local validation, no Redis round trip. The validator follows the revocation log in a
thread started by the first request of each process (a worker forked by gunicorn starts its
own), or by ``auth.start()``; it is closed at exit.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Blueprint, Flask, Response, g, request
from flask import Request as FlaskRequest
from werkzeug.wrappers import Response as BaseResponse

from sessionsvc.integrations.sync import Handler, Incoming, SyncAuth
from sessionsvc.integrations.web.http import Problem
from sessionsvc.integrations.web.login import Identity
from sessionsvc.integrations.web.principal import Principal, Requirement
from sessionsvc.integrations.werkzeug import event_stream, read_body, render, web_request

__all__ = ["Auth", "Identity", "Principal", "read_body", "render", "web_request"]

TheftHook = Callable[[str, FlaskRequest], object]
View = TypeVar("View", bound=Callable[..., Any])


def _incoming() -> Incoming:
    req: FlaskRequest = request._get_current_object()  # type: ignore[attr-defined]
    return Incoming(req, lambda form: web_request(req, form), lambda: read_body(req))


class Auth(SyncAuth):
    """sessionsvc for Flask apps. ``authenticate_user(username, password)`` returns the
    user's ``sub`` (or an ``Identity`` with app claims), or ``None``."""

    framework = "Flask"

    def _attach(self) -> None:
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
        return self.principal_of(_incoming(), requirement, optional=optional)

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

        rule(f"{p}/login", "login", lambda: render(self.login(_incoming())), "POST")
        rule(f"{p}/refresh", "refresh", self._refresh, "POST", "GET")
        for path, handler, method in self.signed_in_routes():
            url = p + path.replace("{sid}", "<sid>")
            rule(url, handler.__name__, self._signed_in(handler), method)
        rule(self.web.jwks_path, "jwks", lambda: render(self.endpoints.jwks()), "GET")
        return bp

    def _before(self) -> BaseResponse | None:
        self.started()
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

    def _refresh(self) -> BaseResponse:
        return render(self.refresh(_incoming(), request.args.get("next")))

    def _signed_in(self, handler: Handler) -> Callable[..., BaseResponse]:
        def endpoint(**path: str) -> BaseResponse:
            return render(self.signed_in(handler, _incoming(), **path))

        endpoint.__doc__ = handler.__doc__
        return endpoint
