"""``CorsPolicy``: cross-origin calls with credentials from an explicit allow-list, off by
default (pure). Also ``normalise_origin``, the one comparison of origins of the web core.

Invariants:

- No origin is allowed unless listed (``SESSIONSVC_WEB_CORS_ORIGINS``); the list is empty by
  default, and then the policy adds nothing to any response (``enabled`` is false, ``preflight``
  answers ``None``). ``*`` and ``null`` can never be listed.
- ``Access-Control-Allow-Origin`` is the request's own ``Origin`` once it matched the list,
  never ``*`` (credentials are allowed, and browsers refuse ``*`` with them); every answer that
  depends on ``Origin`` says ``Vary: Origin``, so no cache serves one origin's answer to another.
- Origins are ``scheme://host[:port]``: scheme and host compared case-insensitively, the port
  exactly (``https://a.example`` and ``https://a.example:443`` differ, as browsers never send the
  default port). Anything else (a path, user info, a list, ``null``) matches nothing.
- An unlisted origin's preflight is answered 204 without any ``Access-Control-Allow-*``: the
  browser then blocks the call; the application's routes never see it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from sessionsvc.errors import ConfigError
from sessionsvc.integrations.web.http import WebRequest, WebResponse

__all__ = ["CorsPolicy", "normalise_origin"]

_ORIGIN: Final = re.compile(r"(https?)://([a-z0-9.-]+|\[[0-9a-f:.]+\])(:[0-9]{1,5})?", re.I)
_TOKEN: Final = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")  # an RFC 9110 token
VARY_ORIGIN: Final = ("vary", "Origin")


def normalise_origin(value: object) -> str | None:
    """``value`` as a comparable origin (scheme and host lower-case, the port as written), or
    ``None`` when it is not exactly ``scheme://host[:port]`` with scheme http or https."""
    if not isinstance(value, str) or len(value) > 300:
        return None
    match = _ORIGIN.fullmatch(value)
    if match is None:
        return None
    scheme, host, port = match.groups()
    return f"{scheme.lower()}://{host.lower()}{port or ''}"


class CorsPolicy:
    """Answers CORS preflights and adds the CORS headers for the listed ``origins``."""

    def __init__(
        self,
        origins: tuple[str, ...],
        *,
        methods: Sequence[str] = ("GET", "POST", "DELETE"),
        headers: Sequence[str] = ("content-type", "x-csrf-token", "authorization"),
        max_age: int = 600,
    ) -> None:
        allowed = {normalise_origin(origin) for origin in origins}
        if None in allowed:
            raise ConfigError(
                "SESSIONSVC_WEB_CORS_ORIGINS: origins are scheme://host[:port], http or https"
            )
        if not all(_TOKEN.fullmatch(m) for m in methods) or not all(
            _TOKEN.fullmatch(h) for h in headers
        ):
            raise ConfigError("CORS methods and headers must be HTTP tokens")
        if type(max_age) is not int or not 0 <= max_age <= 86_400:
            raise ConfigError("the CORS max_age must be an int of 0 to 86400 seconds")
        self.origins: Final = frozenset(o for o in allowed if o is not None)
        self.methods: Final = tuple(m.upper() for m in methods)
        self.headers_allowed: Final = tuple(h.lower() for h in headers)
        self.max_age: Final = max_age

    @property
    def enabled(self) -> bool:
        """Whether any origin is allowed (an empty list: CORS off)."""
        return bool(self.origins)

    def allows(self, origin: object) -> bool:
        """Whether ``origin`` (an ``Origin`` header's value) is listed."""
        key = normalise_origin(origin)
        return key is not None and key in self.origins

    def preflight(self, req: WebRequest) -> WebResponse | None:
        """The answer to a CORS preflight (``OPTIONS`` with ``Origin`` and
        ``Access-Control-Request-Method``); ``None`` for any other request, or when CORS is off."""
        origin = req.header("origin")
        if (
            not self.enabled
            or req.method.upper() != "OPTIONS"
            or origin is None
            or req.header("access-control-request-method") is None
        ):
            return None
        response = WebResponse(204)
        if self.allows(origin):
            response.add("access-control-allow-origin", origin)
            response.add("access-control-allow-credentials", "true")
            response.add("access-control-allow-methods", ", ".join(self.methods))
            response.add("access-control-allow-headers", ", ".join(self.headers_allowed))
            response.add("access-control-max-age", str(self.max_age))
        response.add(*VARY_ORIGIN)
        return response

    def headers(self, req: WebRequest) -> list[tuple[str, str]]:
        """The CORS headers of an actual (not preflight) response to ``req``."""
        origin = req.header("origin")
        if origin is not None and self.allows(origin):
            return [
                ("access-control-allow-origin", origin),
                ("access-control-allow-credentials", "true"),
                VARY_ORIGIN,
            ]
        return [VARY_ORIGIN] if self.enabled else []
