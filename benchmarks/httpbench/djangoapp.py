"""Django's contenders: one project (Django's settings are per process), driven through two
``django.test.Client``s: one whose handler loaded no middleware (the ceiling: a plain view) and
one with sessionsvc's ``AuthMiddleware`` and ``@require_session()``."""

from __future__ import annotations

import json
import types
from collections.abc import Callable
from typing import Any

from httpbench.common import Get, bearer

SECRET_KEY = "django-bench-only-secret-key-0123456789"


def django_project(make_auth: Callable[[], Any]) -> Any:
    """Django configured once for this process around the ``Auth`` that ``make_auth`` builds
    (after the settings, which it reads): that ``Auth``. Routes: its endpoints, ``/api/me``
    (``@require_session()``) and ``/api/plain`` (no auth)."""
    import django
    from django.conf import settings
    from django.http import HttpRequest, JsonResponse
    from django.urls import include, path

    urls = types.ModuleType("bench_urls")
    settings.configure(
        DEBUG=False,
        SECRET_KEY=SECRET_KEY,
        ALLOWED_HOSTS=["testserver", "127.0.0.1"],
        INSTALLED_APPS=[],
        MIDDLEWARE=["sessionsvc.integrations.django.AuthMiddleware"],
        ROOT_URLCONF=urls,
        USE_TZ=True,
    )
    django.setup()
    auth = settings.SESSIONSVC_AUTH = make_auth()

    @auth.require_session()
    def me(request: HttpRequest) -> JsonResponse:
        return JsonResponse({"sub": request.principal.sub})  # type: ignore[attr-defined]

    def plain(request: HttpRequest) -> JsonResponse:
        return JsonResponse({"sub": "anonymous"})

    urls.urlpatterns = [  # type: ignore[attr-defined]
        path("", include(auth.urls)),
        path("api/me", me),
        path("api/plain", plain),
    ]
    return auth


def django_clients() -> tuple[Any, Any]:
    """The configured project's test clients: the ceiling's (its handler loaded no
    middleware) and sessionsvc's."""
    from django.test import Client, override_settings

    ceiling, ours = Client(), Client()
    with override_settings(MIDDLEWARE=[]):
        ceiling.get("/api/plain", secure=True)  # (its handler loads the middleware now: none)
    ours.get("/api/plain", secure=True)
    return ceiling, ours


def django_handlers() -> tuple[Any, Any]:
    """The configured project's WSGI handlers: the ceiling's (no middleware) and sessionsvc's."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import override_settings

    with override_settings(MIDDLEWARE=[]):
        ceiling = WSGIHandler()  # (it loads the middleware now: none)
    return ceiling, WSGIHandler()


def django_get(client: Any, path: str, headers: dict[str, str]) -> Get:
    """One GET of ``path`` over HTTPS through ``client``: its status code."""
    return lambda: int(client.get(path, headers=headers, secure=True).status_code)


def django_request(client: Any) -> Callable[..., Any]:
    """``(method, path, json=, headers=)`` through a Django test client, as ``Node`` calls it."""

    def request(method: str, path: str, **kw: Any) -> Any:
        body = kw.get("json")
        data = "" if body is None else json.dumps(body)
        headers = kw.get("headers") or {}
        return client.generic(
            method, path, data, content_type="application/json", secure=True, headers=headers
        )

    return request


def django_ceiling(client: Any, token: str) -> Get:
    """The ceiling's GET: the plain view, with the same bearer header."""
    return django_get(client, "/api/plain", bearer(token))
