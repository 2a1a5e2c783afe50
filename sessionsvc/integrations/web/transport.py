"""Which credential a request carries, and from where (pure).

Two transports, chosen per request (``docs/web.md``):

- **bearer**: ``Authorization: Bearer <token>`` (mobile apps, services). A request that carries
  it is judged by it alone: its cookies are ignored, so a bearer client is never subject to
  cookie CSRF and a browser's cookies never stand in for a bad bearer token.
- **cookie**: the access cookie (browsers); unsafe methods then need the CSRF checks.

A token in the URL is refused (400) whatever its name: URLs end up in access logs, browser
history and ``Referer`` headers. RFC 6750 §2.3 allows ``access_token`` in the query; we do not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import parse_qsl, unquote

from sessionsvc.integrations.web.http import Problem, WebRequest

__all__ = [
    "TOKEN_PARAMS",
    "Credential",
    "Transport",
    "bearer_token",
    "credential",
    "refuse_url_tokens",
]

Transport = Literal["bearer", "cookie"]
TOKEN_PARAMS: Final = frozenset(
    {"accesstoken", "refreshtoken", "token", "idtoken", "jwt", "csrftoken", "authorization"}
)
"""Query parameter names refused whatever their value, compared lower-case with everything but
letters and digits dropped (``access_token``, ``Access-Token``, ``accessToken`` are one)."""
_JWT: Final = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_B64TOKEN: Final = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750 §2.1 b64token
MAX_QUERY: Final = 8192
MAX_FIELDS: Final = 256


def _name(param: str) -> str:
    # access_token, Access-Token, accessToken, access%5Ftoken: one name
    return "".join(c for c in param.lower() if c.isalnum())


@dataclass(frozen=True, slots=True)
class Credential:
    """An access token and the transport it came by."""

    token: str
    transport: Transport


def refuse_url_tokens(req: WebRequest) -> None:
    """``Problem(400)`` when the query string carries a token (by name, or a JWT by shape)."""
    query = req.query
    if not query:
        return
    if len(query) > MAX_QUERY:
        raise Problem(400, "invalid_request", "query string too long")
    decoded = unquote(unquote(query))  # (a JWT's dots may come percent-encoded, even twice)
    if _JWT.search(query) or _JWT.search(decoded):
        raise _in_url()
    try:
        pairs = parse_qsl(query, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError:
        raise Problem(400, "invalid_request", "too many query parameters") from None
    for name, _ in pairs:
        if _name(name) in TOKEN_PARAMS:
            raise _in_url()


def _in_url() -> Problem:
    return Problem(400, "invalid_request", "tokens are not accepted in the URL")


def bearer_token(req: WebRequest) -> str | None:
    """The token of ``Authorization: Bearer <token>``; ``None`` without the header;
    ``Problem(400)`` for an Authorization header that is not one well-formed bearer token."""
    value = req.header("authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not _B64TOKEN.fullmatch(token):
        raise Problem(
            400,
            "invalid_request",
            "Authorization must be 'Bearer <token>'",
            [("www-authenticate", 'Bearer error="invalid_request"')],
        )
    return token


def credential(req: WebRequest, access_cookie: str) -> Credential | None:
    """The request's credential: the bearer token if any, else the access cookie, else ``None``
    (after refusing tokens in the URL)."""
    refuse_url_tokens(req)
    token = bearer_token(req)
    if token is not None:
        return Credential(token, "bearer")
    cookie = req.cookies.get(access_cookie)
    return Credential(cookie, "cookie") if cookie else None
