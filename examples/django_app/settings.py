"""The smallest Django project protected by sessionsvc (see ``urls.py``, docs/web.md "Quick
start (Django)"): ``DJANGO_SETTINGS_MODULE=examples.django_app.settings django-admin runserver``
(sessionsvc's own settings from ``SESSIONSVC_*`` / ``SESSIONSVC_WEB_*``, or the dicts below)."""

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "dev-only-not-a-secret")
DEBUG = os.environ.get("SESSIONSVC_ENV") == "development"
ALLOWED_HOSTS = ["localhost", "127.0.0.1"]
ROOT_URLCONF = "examples.django_app.urls"
INSTALLED_APPS: list[str] = []
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",  # Django's CSRF, for the app's own forms
    "sessionsvc.integrations.django.AuthMiddleware",  # request.principal, CORS, the feed
]
SESSIONSVC_AUTHENTICATE_USER = "examples.django_app.urls.check_password"
SESSIONSVC: dict[str, object] = {}  # Settings overrides ({"issuer": ...}), else the environment
SESSIONSVC_WEB: dict[str, object] = {}  # WebSettings overrides ({"cors_origins": [...]})
