"""Django's side of the web core: requests in, responses out (extra ``sessionsvc[django]``).

``web_request(request)`` builds the core's ``WebRequest`` (headers and cookies read from
``META`` on use, the origin as Django sees the scheme and host, computed only if a check needs
it); ``read_body`` reads a JSON object or form fields, at most ``MAX_BODY`` bytes;
``render(response)`` gives Django's ``HttpResponse`` (``Set-Cookie`` once per cookie, as the
core wrote it); ``add_headers`` adds the core's headers to any response.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from http.cookies import CookieError, Morsel
from io import BytesIO
from typing import Any

from django.core.exceptions import DisallowedHost, SuspiciousOperation
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
)
from django.http.multipartparser import MultiPartParser, MultiPartParserError

from sessionsvc.integrations.web.body import (
    MAX_FIELDS,
    MULTIPART,
    body_fields,
    declared_size,
    media_type,
    read_limited,
    unparsable,
)
from sessionsvc.integrations.web.headers import EnvironHeaders, LazyCookies
from sessionsvc.integrations.web.http import (
    WebRequest,
    WebResponse,
    request_origin,
)

__all__ = ["add_headers", "read_body", "render", "web_request"]


def web_request(request: HttpRequest, form: Mapping[str, Any] | None = None) -> WebRequest:
    """The core's view of ``request`` (``form``: the parsed body, if read). The origin is the
    scheme (``SECURE_PROXY_SSL_HEADER``) and host (``ALLOWED_HOSTS``) as Django sees them,
    computed only if a check needs it; headers and cookies are read from ``META`` on use."""
    meta = request.META
    cookie = meta.get("HTTP_COOKIE", "")

    def origin() -> str:
        try:
            return request_origin(request.scheme or "http", request.get_host())
        except DisallowedHost:  # (Django refuses the request itself elsewhere)
            return ""

    return WebRequest(
        method=request.method or "GET",
        path=request.path,
        query=meta.get("QUERY_STRING", ""),
        headers=EnvironHeaders(meta),
        cookies=LazyCookies(cookie),
        client=meta.get("REMOTE_ADDR"),
        form=form,
        cookie_header=cookie,
        origin_of=origin,
    )


def read_body(request: HttpRequest) -> dict[str, Any]:
    """The body as fields: a JSON object or form fields (``Problem`` 400/413/415 otherwise).
    At most ``MAX_BODY`` bytes are read; the bytes stay on ``request`` (``request.body``,
    ``request.POST`` read them again)."""
    declared_size(request.META.get("CONTENT_LENGTH") or None)
    cached = request.__dict__.get("_body")
    if isinstance(cached, bytes):
        body = cached
    elif getattr(request, "_read_started", False):  # (the app read the stream itself)
        raise unparsable()
    else:
        body = read_limited(request.read)
        request._body = body  # Django's own cache of the body (request.body, POST)
        request._stream = BytesIO(body)
    content_type = request.META.get("CONTENT_TYPE")
    if body and media_type(content_type) == MULTIPART:
        try:
            parser = MultiPartParser(
                request.META, BytesIO(body), request.upload_handlers, request.encoding
            )
            fields, files = parser.parse()
        except (MultiPartParserError, SuspiciousOperation, ValueError):
            raise unparsable() from None
        if files or len(list(fields.lists())) > MAX_FIELDS:
            raise unparsable()  # (no uploads, at most MAX_FIELDS fields: as elsewhere)
        return {k: fields[k] for k in fields}
    return body_fields(content_type, body)


class _RawCookie(Morsel[str]):
    """A ``Set-Cookie`` value the core wrote, sent as it is (Django sends
    ``response.cookies``: one header per morsel)."""

    def __init__(self, header: str) -> None:
        super().__init__()
        name, _, rest = header.partition("=")
        self.set(name, rest.split(";", 1)[0], rest.split(";", 1)[0])
        self._header = header

    def OutputString(self, attrs: Any = None) -> str:
        return self._header

    def output(self, attrs: Any = None, header: str = "Set-Cookie:") -> str:
        # (Django's handlers ask for header="": the value alone, without a leading space)
        return f"{header} {self._header}" if header else self._header


def add_headers(response: HttpResponseBase, headers: Iterable[tuple[str, str]]) -> None:
    for name, value in headers:
        if name == "set-cookie":
            try:
                morsel = _RawCookie(value)
            except CookieError:  # (a name Python's cookies refuse: never one of ours)
                continue
            key, n = morsel.key, 1
            while key in response.cookies:  # (two cookies of one name: both sent)
                key, n = f"{morsel.key}\0{n}", n + 1
            dict.__setitem__(response.cookies, key, morsel)
        elif name in response.headers:
            response.headers[name] = f"{response.headers[name]}, {value}"
        else:
            response.headers[name] = value


def render(response: WebResponse) -> HttpResponse:
    """Django's ``HttpResponse`` for the core's (``Set-Cookie`` once per cookie)."""
    body = b"" if response.body is None else json.dumps(response.body, separators=(",", ":"))
    out = HttpResponse(body, status=response.status, content_type="application/json")
    if response.body is None:
        del out.headers["content-type"]
    add_headers(out, response.headers)
    return out
