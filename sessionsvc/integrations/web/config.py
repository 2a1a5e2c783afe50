"""``WebSettings``: the web integrations' knobs, from ``SESSIONSVC_WEB_*`` environment variables.

Cookie names, paths, the CSRF key, trusted sites, CORS origins and login throttling. The
secure defaults are the contract (``docs/web.md``); ``check`` refuses insecure combinations
outside ``SESSIONSVC_ENV=development`` (``sessionsvc.integrations.web.cookies``).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings

from sessionsvc.config.settings import settings_boundary, settings_config

__all__ = ["SameSite", "WebSettings", "load_web_settings"]

SameSite = Literal["lax", "strict", "none"]
_PATH = r"^(/[A-Za-z0-9._~-]+)+$"  # no trailing slash: <prefix>/refresh is the cookie path
_ORIGIN = r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$"


class WebSettings(BaseSettings):
    """Everything the web integrations read from the environment (prefix ``SESSIONSVC_WEB_``)."""

    model_config = settings_config("SESSIONSVC_WEB_")

    prefix: str = Field(default="/auth", pattern=_PATH)
    """Where the auth endpoints live (``<prefix>/login``, ``<prefix>/refresh``, …)."""
    jwks_path: str = Field(default="/.well-known/jwks.json", pattern=_PATH)
    """Where the public access keys are served."""
    access_cookie: str = "__Host-ss-access"
    refresh_cookie: str = "__Secure-ss-refresh"
    csrf_cookie: str = "__Host-ss-csrf"
    cookie_domain: str | None = None
    """A ``Domain`` for the cookies (the prefixes then cannot be used: see ``docs/web.md``)."""
    cookie_secure: bool = True
    """``Secure`` on every cookie; off is refused outside development."""
    access_samesite: SameSite = "lax"
    refresh_samesite: SameSite = "strict"
    clear_site_data: tuple[str, ...] = ("cache", "cookies", "storage")
    """The ``Clear-Site-Data`` directives sent on logout (empty: no header)."""
    csrf_secret: SecretStr | None = None
    """The key of the signed double-submit tokens (at least 32 bytes; shared by every node);
    required outside development."""
    csrf_header: str = "x-csrf-token"
    csrf_field: str = "csrf_token"
    """The form field that may carry the CSRF token instead of the header."""
    trusted_sites: tuple[str, ...] = ()
    """Origins of sibling sites whose ``Sec-Fetch-Site: same-site`` requests are accepted."""
    origins: tuple[str, ...] = ()
    """This app's own public origins (``https://app.example.com``); empty: the request's own."""
    cors_origins: tuple[str, ...] = ()
    """Origins allowed to call the API with credentials (CORS); empty: CORS off."""
    login_user_attempts: int = Field(default=5, ge=1, le=10_000)
    """Login attempts on one user name per window that reach the credential check (429 after)."""
    login_ip_attempts: int = Field(default=50, ge=1, le=1_000_000)
    """Login attempts from one client address per window that reach the credential check
    (successful ones given back; 429 after)."""
    login_window: int = Field(default=15 * 60, ge=1, le=24 * 3600)
    """Seconds a login attempt counts (a fixed window from its counter's first attempt)."""
    stale_retry_after: int = Field(default=1, ge=1, le=3600)
    """``Retry-After`` seconds of a 503 answered while the validator is stale."""

    @field_validator("trusted_sites", "origins", "cors_origins")
    @classmethod
    def _check_origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for origin in value:
            if not re.fullmatch(_ORIGIN, origin):
                raise ValueError("origins are scheme://host[:port], http or https, no path")
        return tuple(o.lower() for o in value)

    @field_validator("csrf_secret")
    @classmethod
    def _check_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < 32:
            raise ValueError("must be at least 32 bytes")
        return value


def load_web_settings(**overrides: object) -> WebSettings:
    """Read ``WebSettings`` from the environment; ``ConfigError`` names each bad variable."""
    with settings_boundary("SESSIONSVC_WEB_"):
        return WebSettings(**overrides)  # type: ignore[arg-type]
