"""Django: ``AuthMiddleware``, the ``require_session`` decorator, the auth endpoints' URL
patterns, server-sent events that end on sign-out (extra ``sessionsvc[django]``).

    # settings.py
    MIDDLEWARE = [..., "django.middleware.csrf.CsrfViewMiddleware",
                  "sessionsvc.integrations.django.AuthMiddleware"]
    SESSIONSVC_AUTHENTICATE_USER = "myapp.users.check_password"   # (username, password) → sub
    SESSIONSVC = {"issuer": "https://auth.example.com"}            # Settings overrides
    SESSIONSVC_WEB = {"cors_origins": ["https://spa.example.com"]}  # WebSettings overrides

    # urls.py
    urlpatterns = [path("", include(get_auth().urls)), path("api/me", me)]

    @require_session(scopes="read")
    def me(request: HttpRequest) -> JsonResponse:
        return JsonResponse({"sub": request.principal.sub})

The project's ``Auth`` is ``get_auth()``: ``settings.SESSIONSVC_AUTH`` (an ``Auth``, or the
dotted path of one), else one built once from the settings module (``SESSIONSVC``,
``SESSIONSVC_WEB``: overrides of what the environment says). The same contract as the Flask
and FastAPI adapters: every decision is the web core's, the sync side (the feed per process,
the endpoints on a sync Redis client) is ``sessionsvc.integrations.sync``. The auth endpoints
are ``csrf_exempt`` (the core does CSRF for its cookies); so is a view ``require_session``
protects (a request gets through only with a bearer token or the CSRF-checked access cookie),
except an ``optional`` one, which keeps Django's CSRF. The validator follows the revocation log
in a thread started by the first request of each process. Under ASGI, Django runs these sync
views and the middleware in its sync thread.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from functools import wraps
from typing import Any, TypeVar, cast

from django.conf import settings as django_settings
from django.core.handlers.asgi import ASGIRequest
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseNotAllowed,
    StreamingHttpResponse,
)
from django.urls import URLPattern, path
from django.utils.module_loading import import_string
from django.views.decorators.csrf import csrf_exempt

from sessionsvc.config import Settings, load_settings
from sessionsvc.integrations.async_stream import AsyncEventStreams
from sessionsvc.integrations.djangohttp import add_headers, read_body, render, web_request
from sessionsvc.integrations.sync import CheckUser, Handler, Incoming, SyncAuth, event_stream
from sessionsvc.integrations.web.config import WebSettings, load_web_settings
from sessionsvc.integrations.web.http import (
    Problem,
    WebResponse,
)
from sessionsvc.integrations.web.login import Identity
from sessionsvc.integrations.web.principal import Principal, Requirement
from sessionsvc.sessions.service import SessionService
from sessionsvc.validator import Validator

__all__ = [
    "Auth",
    "AuthMiddleware",
    "Identity",
    "Principal",
    "get_auth",
    "read_body",
    "render",
    "require_session",
    "web_request",
]

View = TypeVar("View", bound=Callable[..., Any])
TheftHook = Callable[[str, HttpRequest], object]
_ATTR = "_sessionsvc_auth"  # the request's Auth, set by the middleware
_PRINCIPAL = "_sessionsvc_principal"  # (principal, method) the middleware authenticated
_REQUEST: ContextVar[HttpRequest | None] = ContextVar("sessionsvc_django_request", default=None)


# -- the project's Auth ------------------------------------------------------------------------


def _overrides(name: str) -> dict[str, Any]:
    values = getattr(django_settings, name, None) or {}
    if not isinstance(values, Mapping):
        raise TypeError(f"settings.{name} must be a dict of overrides")
    return {str(k).lower(): v for k, v in values.items()}


def _hook(name: str) -> Any:
    value = getattr(django_settings, name, None)
    return import_string(value) if isinstance(value, str) else value


class Auth(SyncAuth):
    """sessionsvc for a Django project. Settings not given are read from the environment with
    ``settings.SESSIONSVC`` / ``settings.SESSIONSVC_WEB`` as overrides; ``authenticate_user``
    and ``on_theft_detected`` default to ``settings.SESSIONSVC_AUTHENTICATE_USER`` /
    ``SESSIONSVC_ON_THEFT_DETECTED`` (functions or their dotted paths)."""

    framework = "Django"

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
        super().__init__(
            settings or load_settings(**_overrides("SESSIONSVC")),
            web or load_web_settings(**_overrides("SESSIONSVC_WEB")),
            authenticate_user=authenticate_user or _hook("SESSIONSVC_AUTHENTICATE_USER"),
            validator=validator,
            sessions=sessions,
            on_theft_detected=on_theft_detected or _hook("SESSIONSVC_ON_THEFT_DETECTED"),
        )

    def _attach(self) -> None:
        self._async_streams = AsyncEventStreams(self.live)
        self.urls = self._urls()
        """The auth endpoints' URL patterns: ``path("", include(auth.urls))``."""

    def require_session(
        self,
        *,
        scopes: tuple[str, ...] | list[str] | str = (),
        claims: Any = (),
        optional: bool = False,
    ) -> Callable[[View], View]:
        """``require_session`` with this ``Auth``."""
        return _decorator(lambda request: self, scopes, claims, optional)

    def authenticate(
        self,
        request: HttpRequest,
        requirement: Requirement | None = None,
        *,
        optional: bool = False,
        read_form: bool = True,
    ) -> Principal | None:
        """The request's principal, or ``Problem``; one local validation, no Redis
        (``read_form``: a cookie-mode form post without the CSRF header: its body is read for
        the token)."""
        return self.principal_of(
            self._incoming(request), requirement, optional=optional, read_form=read_form
        )

    def sse(
        self, principal: Principal, events: Iterable[Any] | AsyncIterable[Any]
    ) -> StreamingHttpResponse:
        """A ``text/event-stream`` of ``events`` (each a string or JSON-able ``data``) that
        sends ``event: revoked`` and ends when the principal's session is revoked. However the
        stream ends, ``events`` is closed. Under WSGI, a plain iterable (it runs in a thread of
        its own, ``close()`` at the end); under ASGI, an async one (``aclose()``), which Django
        streams on its event loop without a thread per stream."""
        stream: Iterator[str] | AsyncIterator[str]
        if isinstance(events, AsyncIterable):
            request = _REQUEST.get(None)  # (the middleware's request, in the view it calls)
            if request is not None and not isinstance(request, ASGIRequest):
                raise TypeError(
                    "sse(): an async iterable streams only under ASGI (under WSGI Django would "
                    "consume it whole before sending anything); give a plain iterable"
                )
            stream = self._async_streams.stream(principal, events)
        else:
            stream = event_stream(self.live, principal, events)
        response = StreamingHttpResponse(stream, content_type="text/event-stream")
        response.headers["cache-control"] = "no-store"
        response.headers["x-accel-buffering"] = "no"
        return response

    # -- the endpoints ---------------------------------------------------------------------------

    def _incoming(self, request: HttpRequest) -> Incoming:
        self.started()  # (the first request of the process starts the feed)
        return Incoming(
            request, lambda form: web_request(request, form), lambda: read_body(request)
        )

    def _urls(self) -> list[URLPattern]:
        p = self.web.prefix.lstrip("/")

        def route(url: str, name: str, methods: tuple[str, ...], view: Any) -> URLPattern:
            def endpoint(request: HttpRequest, **kwargs: str) -> HttpResponseBase:
                if request.method not in methods:
                    return HttpResponseNotAllowed(methods)
                return render(view(self._incoming(request), **kwargs))

            endpoint.__name__ = endpoint.__qualname__ = name
            # csrf_exempt: the web core does CSRF for its own cookies
            return path(url, csrf_exempt(endpoint), name=f"sessionsvc-{name}")

        patterns = [
            route(f"{p}/login", "login", ("POST",), self.login),
            route(
                f"{p}/refresh",
                "refresh",
                ("GET", "POST"),
                lambda inc: self.refresh(inc, cast(HttpRequest, inc.native).GET.get("next")),
            ),
        ]
        for sub, handler, method in self.signed_in_routes():
            url = p + sub.replace("{sid}", "<str:sid>")
            patterns.append(route(url, handler.__name__, (method,), self._signed_in(handler)))
        jwks = self.web.jwks_path.lstrip("/")
        patterns.append(route(jwks, "jwks", ("GET",), lambda inc: self.endpoints.jwks()))
        return patterns

    def _signed_in(self, handler: Handler) -> Callable[..., WebResponse]:
        return lambda incoming, **path: self.signed_in(handler, incoming, **path)


_default: Auth | None = None
_default_lock = threading.Lock()


def get_auth() -> Auth:
    """The project's ``Auth``: ``settings.SESSIONSVC_AUTH`` (an ``Auth`` or its dotted path),
    else one built from the settings module on first use."""
    global _default  # noqa: PLW0603 (one per process)
    configured = getattr(django_settings, "SESSIONSVC_AUTH", None)
    if isinstance(configured, str):
        configured = import_string(configured)
    if configured is not None:
        if not isinstance(configured, Auth):
            raise TypeError("settings.SESSIONSVC_AUTH must be an Auth (or its dotted path)")
        return configured
    with _default_lock:
        if _default is None:
            _default = Auth()
        return _default


def _auth_of(request: HttpRequest) -> Auth:
    found = getattr(request, _ATTR, None)
    return found if isinstance(found, Auth) else get_auth()


# -- the app's side ------------------------------------------------------------------------------


def _checked(request: HttpRequest, auth: Auth, requirement: Requirement) -> Principal | None:
    """The principal this request's middleware (of ``auth``) already authenticated, checked
    against ``requirement`` (``Problem`` 403); ``None`` when the view must authenticate (no
    middleware, or it found no valid session: the view's own attempt says why; or the request
    changed since, as a method override in a later middleware does: its CSRF checks were judged
    on the method the middleware saw)."""
    found = getattr(request, _PRINCIPAL, None)
    if found is None or getattr(request, _ATTR, None) is not auth:
        return None
    principal, method = found
    if method != request.method:
        return None
    requirement.check(principal)
    return cast(Principal, principal)


def _decorator(
    auth_of: Callable[[HttpRequest], Auth], scopes: Any, claims: Any, optional: bool
) -> Callable[[View], View]:
    requirement = Requirement.of(scopes, claims)

    def decorate(view: View) -> View:
        if inspect.iscoroutinefunction(view):
            raise TypeError("require_session() protects plain (not async) views")

        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            auth = auth_of(request)
            try:
                principal = _checked(request, auth, requirement)
                if principal is None:
                    principal = auth.authenticate(request, requirement, optional=optional)
            except Problem as problem:
                return render(auth.core.refusal(problem))
            request.principal = principal
            return view(request, *args, **kwargs)

        if not optional:  # (only a bearer token or the CSRF-checked cookie gets through)
            wrapper.csrf_exempt = True  # type: ignore[attr-defined]
        return cast(View, wrapper)

    return decorate


def require_session(
    *,
    scopes: tuple[str, ...] | list[str] | str = (),
    claims: Any = (),
    optional: bool = False,
) -> Callable[[View], View]:
    """A view decorator: the request's ``Principal`` on ``request.principal`` (401/403/503
    otherwise); ``optional``: ``None`` for a request without credentials. The project's
    ``Auth`` (``get_auth()``, or the middleware's)."""
    return _decorator(_auth_of, scopes, claims, optional)


class AuthMiddleware:
    """Puts ``request.principal`` (a valid session's ``Principal``, or ``None``: a protected
    view uses ``require_session``), answers CORS preflights and adds the CORS headers when
    configured, renders a ``Problem`` a view raises as ``{"error", "error_description"}``,
    and starts the feed with the first request of each process. The body is never read here
    (for the principal of a form post that carries the CSRF token as a field, use
    ``require_session``)."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self.auth = get_auth()

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        auth = self.auth
        setattr(request, _ATTR, auth)
        cors = auth.core.cors
        req = web_request(request) if cors.enabled else None
        preflight = None if req is None else cors.preflight(req)
        if preflight is not None:
            return render(preflight)
        try:
            principal = auth.authenticate(request, optional=True, read_form=False)
        except Problem:
            principal = None  # a bad token is no principal (a protected view says why)
        request.principal = principal
        # (a view's require_session then checks only its requirement: no second validation)
        setattr(request, _PRINCIPAL, None if principal is None else (principal, request.method))
        token = _REQUEST.set(request)
        try:
            response = self.get_response(request)
        finally:
            _REQUEST.reset(token)
        if req is not None and cors.enabled:
            add_headers(response, cors.headers(req))
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, Problem):
            return render(_auth_of(request).core.refusal(exception))
        return None
