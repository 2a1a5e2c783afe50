"""The web core's view of HTTP (pure): ``WebRequest`` in, ``WebResponse`` out, ``Problem`` for
a refusal. An adapter builds the request from its framework's and renders the response; no
framework type crosses into the core.

Invariants:

- Header names are lower-case in ``WebRequest.headers``; a header sent more than once is
  joined with ``", "`` (RFC 9110 §5.3), except ``cookie``, which adapters parse into
  ``cookies`` (the first value of a name wins, as browsers send the most specific first;
  ``cookie_values`` gives every value of a name).
- ``WebResponse.headers`` is a list of pairs: ``set-cookie`` appears once per cookie.
- A ``Problem``'s ``description`` is safe to show to the client: it never holds a token or a key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sessionsvc.errors import SessionError

__all__ = [
    "SAFE_METHODS",
    "UNSAFE_METHODS",
    "Problem",
    "ReuseDetected",
    "WebRequest",
    "WebResponse",
    "cookie_pairs",
    "own_origin",
    "parse_cookies",
    "request_origin",
]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
"""The usual unsafe methods; any method not in ``SAFE_METHODS`` is treated as unsafe."""


def cookie_pairs(header: str | None) -> list[tuple[str, str]]:
    """The ``Cookie`` header's ``(name, value)`` pairs in order, malformed pairs skipped (the
    server bounds the header's size)."""
    pairs = []
    for pair in (header or "").split(";"):
        name, sep, value = pair.strip().partition("=")
        if sep and name:
            pairs.append((name, value.strip().strip('"')))
    return pairs


def parse_cookies(header: str | None) -> dict[str, str]:
    """The ``Cookie`` header as a mapping, the first value of a name winning (a browser sends
    the cookie of the longest path first). Where a name comes more than once (a sibling
    subdomain can plant a cookie of the same name and path), ``WebRequest.cookie_values``
    has them all."""
    cookies: dict[str, str] = {}
    for name, value in cookie_pairs(header):
        cookies.setdefault(name, value)
    return cookies


def own_origin(scheme: str, host: str, port: int | None) -> str:
    """The app's own origin, ``scheme://host[:port]``, as a request arrived (``ws``/``wss``
    count as ``http``/``https``; the scheme's default port is left out, as browsers do)."""
    scheme = scheme.lower()
    default = {"http": 80, "https": 443, "ws": 80, "wss": 443}.get(scheme)
    scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address, as an Origin header writes it
    return f"{scheme}://{host}" + (f":{port}" if port not in (None, default) else "")


def request_origin(scheme: str, host: str) -> str:
    """The app's own origin from a request's scheme and ``Host`` header (``host[:port]``);
    ``""`` for a Host with a bad port (no origin matches it)."""
    try:
        parsed = urlsplit(f"//{host}")
        return own_origin(scheme, parsed.hostname or "", parsed.port)
    except ValueError:
        return ""


@dataclass(slots=True)
class WebRequest:
    """One request as the core sees it (read-only by convention: not frozen, which would cost
    a protected request 2 µs). ``origin`` is the app's own ``scheme://host[:port]`` as
    the adapter saw the request arrive; ``form`` the parsed body (a JSON object or form fields),
    ``None`` when the adapter did not read it (the core never needs it for protected routes)."""

    method: str
    path: str
    query: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    cookies: Mapping[str, str] = field(default_factory=dict)
    client: str | None = None
    origin: str = ""
    form: Mapping[str, Any] | None = None
    cookie_header: str = ""
    """The raw ``Cookie`` header (``cookie_values``)."""
    origin_of: Callable[[], str] | None = None
    """Computes ``origin`` when it is needed (only CSRF checks need it), if not given."""

    def app_origin(self) -> str:
        """The app's own origin: ``origin``, else what ``origin_of`` computes, else ``""``."""
        if self.origin or self.origin_of is None:
            return self.origin
        return self.origin_of()

    def cookie_values(self, name: str) -> list[str]:
        """Every value the request carries for cookie ``name``, in the order sent."""
        if not self.cookie_header:
            first = self.cookies.get(name)
            return [] if first is None else [first]
        return [value for n, value in cookie_pairs(self.cookie_header) if n == name]

    def header(self, name: str) -> str | None:
        """The header ``name`` (lower-case), or ``None``."""
        return self.headers.get(name)

    @property
    def unsafe(self) -> bool:
        """A method that may change state (CSRF applies): anything but GET, HEAD, OPTIONS."""
        return self.method.upper() not in SAFE_METHODS


@dataclass(slots=True)
class WebResponse:
    """What an adapter sends: status, JSON body (``None``: empty) and headers in order."""

    status: int = 200
    body: Any = None
    headers: list[tuple[str, str]] = field(default_factory=list)

    def add(self, name: str, value: str) -> WebResponse:
        """Append a header (lower-case ``name``); returns ``self``."""
        self.headers.append((name, value))
        return self

    def get(self, name: str) -> list[str]:
        """Every value of header ``name``."""
        return [v for n, v in self.headers if n == name]


class Problem(SessionError):
    """A refusal the core answers with ``status`` and a JSON body ``{"error",
    "error_description"}`` (``code``: stable, machine-readable; ``description``: safe for the
    client). Adapters catch it and send ``response()``."""

    def __init__(
        self,
        status: int,
        code: str,
        description: str = "",
        headers: list[tuple[str, str]] | None = None,
        *,
        clear_cookies: bool = False,
    ) -> None:
        super().__init__(f"{status} {code}: {description}" if description else f"{status} {code}")
        self.status = status
        self.code = code
        self.description = description
        self.headers = headers or []
        self.clear_cookies = clear_cookies
        """The answer also clears the token cookies (a failed refresh, a detected reuse)."""

    def response(self) -> WebResponse:
        """This refusal as a response (``Cache-Control: no-store``: never cached)."""
        body = {"error": self.code, "error_description": self.description}
        return WebResponse(self.status, body, [*self.headers, ("cache-control", "no-store")])


class ReuseDetected(Problem):
    """A refresh token was used again: the session is revoked (RFC 9700 §4.14.2). 401, the
    cookies cleared; adapters call the app's ``on_theft_detected(session_id, request)``."""

    def __init__(self, session_id: str) -> None:
        super().__init__(
            401,
            "invalid_grant",
            "refresh token reused: the session was revoked",
            clear_cookies=True,
        )
        self.session_id = session_id
