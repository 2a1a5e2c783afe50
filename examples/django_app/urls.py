"""One protected view and the auth endpoints (``/auth/login``, ``/auth/refresh``, ...)."""

from django.http import HttpRequest, JsonResponse
from django.urls import include, path

from sessionsvc.integrations.django import get_auth, require_session

USERS = {"alice": "alice-demo-password"}  # a demo: your user store checks password hashes


def check_password(user: str, password: str) -> str | None:
    return user if USERS.get(user) == password else None


@require_session()
def me(request: HttpRequest) -> JsonResponse:
    principal = request.principal  # type: ignore[attr-defined]
    return JsonResponse({"sub": principal.sub, "session": principal.sid})


urlpatterns = [path("", include(get_auth().urls)), path("api/me", me)]
