"""``CookiePolicy``: the three cookies of cookie mode, rendered, cleared, read and checked (pure).

Cookie mode keeps the access token, the refresh token and the CSRF token in cookies named by
``WebSettings`` (``SESSIONSVC_WEB_*``). A ``Set-Cookie`` value is rendered here, exactly and in
one fixed order::

    name=value; Max-Age=N; Path=/p; Domain=d; Secure; HttpOnly; SameSite=Lax

``Domain`` only when ``SESSIONSVC_WEB_COOKIE_DOMAIN`` is set, ``Secure`` only when
``SESSIONSVC_WEB_COOKIE_SECURE`` is on, ``HttpOnly`` on every cookie but the CSRF cookie (the
page's script reads it to send it back in a header). No ``Expires``: every browser in use reads
``Max-Age``, and it does not depend on the server's clock.

Invariants:

- A value is rendered only when it is made of ``A-Z a-z 0-9 - _ .`` (base64url and JWT) and
  name and value together fit in 4096 characters; anything else is ``InvalidArgument`` (a
  ``ValueError``) whose message never quotes it. No value can change a header's structure, and
  no cookie is silently dropped by a browser for its size. A lifetime is a positive ``int``.
- ``clear`` renders each cookie with the same ``Path``, ``Domain`` and attributes as
  ``set_tokens``, empty and ``Max-Age=0``: a browser replaces a cookie only when name, domain and
  path match. Every response that sets or clears a cookie is ``Cache-Control: no-store``.
- ``Max-Age``: the access cookie lives as long as its token (``TokenPair.expires_in``), the
  refresh and CSRF cookies as long as the refresh token (``refresh_expires_in``): the CSRF value
  is bound to the session (``csrf.CsrfTokens``), so it outlives the access tokens it protects.
- Names, the domain and the ``Clear-Site-Data`` directives are checked when the policy is built
  (``ConfigError``); ``check`` judges the combination, the environment included.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final, NamedTuple

from sessionsvc.config.settings import Settings
from sessionsvc.errors import ConfigError, InvalidArgument
from sessionsvc.integrations.web.config import WebSettings
from sessionsvc.tokens.issuer import TokenPair

__all__ = ["CLEAR_SITE_DATA", "CookiePolicy"]

CLEAR_SITE_DATA: Final = frozenset(
    {"cache", "cookies", "storage", "executionContexts", "prefetchCache", "prerenderCache", "*"}
)
"""The ``Clear-Site-Data`` directives of the W3C draft and of the browsers implementing it."""
MAX_VALUE: Final = 4096  # RFC 6265bis: name + value at most 4096 octets; browsers drop more
_VALUE: Final = re.compile(r"[A-Za-z0-9_.-]{1,4096}")
_NAME: Final = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,256}")  # an RFC 9110 token
_DOMAIN: Final = re.compile(r"\.?[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})*")
_VAR: Final = "SESSIONSVC_WEB_"
_NAME_VARS: Final = {"access": "ACCESS_COOKIE", "refresh": "REFRESH_COOKIE", "csrf": "CSRF_COOKIE"}


class _Cookie(NamedTuple):
    name: str
    path: str
    http_only: bool
    samesite: str  # as rendered: Lax, Strict or None


class CookiePolicy:
    """How the access, refresh and CSRF cookies are set, cleared and read."""

    def __init__(self, web: WebSettings, settings: Settings) -> None:
        self.web = web
        self.settings = settings
        self.access_name = web.access_cookie
        self.refresh_name = web.refresh_cookie
        self.csrf_name = web.csrf_cookie
        self.refresh_path = f"{web.prefix.rstrip('/')}/refresh"
        """Where the refresh cookie is sent: only to ``<prefix>/refresh``."""
        self.domain = web.cookie_domain or None
        """The cookies' ``Domain`` (``None``: host-only cookies, the default)."""
        access_site = web.access_samesite.capitalize()  # lax -> Lax, as browsers document it
        refresh_site = web.refresh_samesite.capitalize()
        self._cookies: Final = {
            "access": _Cookie(self.access_name, "/", True, access_site),
            "refresh": _Cookie(self.refresh_name, self.refresh_path, True, refresh_site),
            "csrf": _Cookie(self.csrf_name, "/", False, access_site),
        }
        self._check_syntax()

    def set_tokens(self, pair: TokenPair, csrf_token: str) -> list[tuple[str, str]]:
        """The headers of a login or refresh: the three ``set-cookie`` and ``cache-control``.
        ``InvalidArgument`` for a value that cannot be a cookie as it is."""
        values = {
            "access": (pair.access_token, pair.expires_in),
            "refresh": (pair.refresh_token, pair.refresh_expires_in),
            "csrf": (csrf_token, pair.refresh_expires_in),
        }
        for kind, (value, max_age) in values.items():
            _check_value(kind, self._cookies[kind].name, value, max_age)
        headers = [("set-cookie", self._render(kind, *values[kind])) for kind in self._cookies]
        headers.append(("cache-control", "no-store"))
        return headers

    def clear(self, site_data: bool) -> list[tuple[str, str]]:
        """The headers of a logout: the three cookies expired, ``cache-control``, and, when
        ``site_data`` and ``SESSIONSVC_WEB_CLEAR_SITE_DATA`` is not empty, ``clear-site-data``."""
        headers = [("set-cookie", self._render(kind, "", 0)) for kind in self._cookies]
        headers.append(("cache-control", "no-store"))
        if site_data and self.web.clear_site_data:
            value = ", ".join(f'"{d}"' for d in self.web.clear_site_data)
            headers.append(("clear-site-data", value))
        return headers

    def read(self, cookies: Mapping[str, str]) -> tuple[str | None, str | None, str | None]:
        """The access, refresh and CSRF cookie values of a request (``None``: absent or empty)."""
        return (
            cookies.get(self.access_name) or None,
            cookies.get(self.refresh_name) or None,
            cookies.get(self.csrf_name) or None,
        )

    def check(self) -> list[str]:
        """Judge the configuration at start-up: ``ConfigError`` listing every refused setting
        (by its variable, never a value), else the warnings an adapter logs."""
        web, problems = self.web, []
        for kind, cookie in self._cookies.items():
            var, name = _VAR + _NAME_VARS[kind], cookie.name.lower()
            if name.startswith("__host-") and self.domain:
                problems.append(f"{var}: a __Host- cookie cannot have {_VAR}COOKIE_DOMAIN")
            if name.startswith("__host-") and cookie.path != "/":
                problems.append(f"{var}: a __Host- cookie needs Path=/ (it is {cookie.path})")
            if name.startswith(("__host-", "__secure-")) and not web.cookie_secure:
                problems.append(f"{var}: a __Host-/__Secure- cookie needs {_VAR}COOKIE_SECURE")
        sites = {"ACCESS_SAMESITE": web.access_samesite, "REFRESH_SAMESITE": web.refresh_samesite}
        for var, site in sites.items():
            if site == "none" and not web.cookie_secure:
                problems.append(f"{_VAR}{var}: browsers drop SameSite=None cookies without Secure")
        if self.settings.env != "development":
            if not web.cookie_secure:
                problems.append(f"{_VAR}COOKIE_SECURE: must be on outside development")
            for var, site in sites.items():
                if site == "none":
                    problems.append(f"{_VAR}{var}: none (cross-site cookies) only in development")
            if web.csrf_secret is None:
                problems.append(f"{_VAR}CSRF_SECRET: is required outside development")
            lists = {"CORS_ORIGINS": web.cors_origins, "TRUSTED_SITES": web.trusted_sites}
            for var, origins in {**lists, "ORIGINS": web.origins}.items():
                if any(o.startswith("http://") for o in origins):
                    problems.append(f"{_VAR}{var}: http:// origins only in development")
        if problems:
            raise ConfigError("invalid web settings: " + "; ".join(problems))
        return self._warnings()

    def _warnings(self) -> list[str]:
        web, warnings = self.web, []
        if self.domain:
            warnings.append(
                f"{_VAR}COOKIE_DOMAIN is set: the cookies reach every subdomain (a sibling app "
                "can read or overwrite them), and Clear-Site-Data on logout clears the whole site"
            )
        if not web.cookie_secure:
            warnings.append(f"{_VAR}COOKIE_SECURE is off: the cookies travel over plain http")
        for kind, cookie in self._cookies.items():
            if not cookie.name.lower().startswith(("__host-", "__secure-")):
                warnings.append(
                    f"{_VAR}{_NAME_VARS[kind]} has no __Host-/__Secure- prefix: another host of "
                    "the site can plant or overwrite it"
                )
        if "none" in (web.access_samesite, web.refresh_samesite):
            warnings.append("SameSite=None: the cookies are sent on cross-site requests")
        if web.csrf_secret is None:
            warnings.append(
                f"{_VAR}CSRF_SECRET is unset: a random key per process (development only; "
                "the nodes of a multi-node setup need the same one)"
            )
        return warnings

    def _check_syntax(self) -> None:
        for kind, cookie in self._cookies.items():
            if not _NAME.fullmatch(cookie.name):
                raise ConfigError(f"{_VAR}{_NAME_VARS[kind]}: not a cookie name (an RFC token)")
        if len({cookie.name for cookie in self._cookies.values()}) != len(self._cookies):
            raise ConfigError(f"{_VAR}ACCESS_COOKIE, REFRESH_COOKIE and CSRF_COOKIE must differ")
        if self.domain is not None and not _DOMAIN.fullmatch(self.domain):
            raise ConfigError(f"{_VAR}COOKIE_DOMAIN: not a domain name")
        if set(self.web.clear_site_data) - CLEAR_SITE_DATA:
            raise ConfigError(
                f"{_VAR}CLEAR_SITE_DATA: unknown directive; use {sorted(CLEAR_SITE_DATA)}"
            )

    def _render(self, kind: str, value: str, max_age: int) -> str:
        cookie = self._cookies[kind]
        parts = [f"{cookie.name}={value}", f"Max-Age={max_age}", f"Path={cookie.path}"]
        if self.domain:
            parts.append(f"Domain={self.domain}")
        if self.web.cookie_secure:
            parts.append("Secure")
        if cookie.http_only:
            parts.append("HttpOnly")
        parts.append(f"SameSite={cookie.samesite}")
        return "; ".join(parts)


def _check_value(kind: str, name: str, value: object, max_age: object) -> None:
    """``InvalidArgument`` unless ``value`` can be a cookie's value as it is (never quoted)."""
    if not isinstance(value, str) or not _VALUE.fullmatch(value):
        raise InvalidArgument(f"the {kind} cookie's value is not 1-4096 base64url/JWT characters")
    if len(name) + len(value) > MAX_VALUE:
        raise InvalidArgument(f"the {kind} cookie is longer than browsers keep ({MAX_VALUE})")
    if type(max_age) is not int or max_age <= 0:
        raise InvalidArgument(f"the {kind} cookie's lifetime must be a positive int")
