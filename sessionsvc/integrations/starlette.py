"""Starlette's side of the web core: requests in, responses out, CORS, and live sign-out.

``web_request(request)`` builds the core's ``WebRequest`` (headers lower-case, cookies parsed
first-wins, the peer address, the app's own origin, the body when asked: a JSON object or form
fields, at most ``MAX_BODY`` bytes); ``render(response)`` gives Starlette's ``Response``
(``set-cookie`` once per cookie). ``CorsMiddleware`` applies the core's CORS allow-list. Live
sign-out for WebSockets and server-sent events is ``sessionsvc.integrations.live``.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sessionsvc.integrations.web.body import (
    MAX_BODY,
    MAX_FIELDS,
    MULTIPART,
    body_fields,
    declared_size,
    media_type,
    too_large,
    unparsable,
)
from sessionsvc.integrations.web.cors import CorsPolicy
from sessionsvc.integrations.web.headers import LazyCookies, ScopeHeaders
from sessionsvc.integrations.web.http import WebRequest, WebResponse, own_origin

__all__ = ["MAX_BODY", "CorsMiddleware", "read_body", "render", "web_request"]


def web_request(conn: HTTPConnection, form: Any = None) -> WebRequest:
    """The core's view of ``conn`` (``form``: the parsed body, if read). Headers and cookies are
    read from the scope when the core asks, the origin computed only if a check needs it."""
    scope = conn.scope
    raw = scope["headers"]
    cookie = "; ".join(v.decode("latin-1") for n, v in raw if n.lower() == b"cookie")
    client = scope.get("client")

    def origin() -> str:
        url = conn.url
        return own_origin(url.scheme, url.hostname or "", url.port)

    return WebRequest(
        method=scope.get("method", "GET"),
        path=scope["path"],
        query=scope.get("query_string", b"").decode("latin-1"),
        headers=ScopeHeaders(raw),
        cookies=LazyCookies(cookie),
        client=client[0] if client else None,
        form=form,
        cookie_header=cookie,
        origin_of=origin,
    )


async def read_body(request: Request) -> dict[str, Any]:
    """The body as fields (``sessionsvc.integrations.web.body``): a JSON object, or form fields
    (``Problem`` 400/413/415 otherwise). At most ``MAX_BODY`` bytes are read, whatever
    ``Content-Length`` says (or whether it is sent); the bytes stay cached on ``request`` for
    the endpoint that reads it again."""
    declared_size(request.headers.get("content-length"))
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise too_large()
    request._body = body  # Starlette's own cache: request.body()/json()/form() read it again
    if body and media_type(request.headers.get("content-type")) == MULTIPART:
        try:
            form = await request.form(max_files=0, max_fields=MAX_FIELDS)
        except HTTPException:
            raise unparsable() from None
        return {k: v for k, v in form.items() if isinstance(v, str)}
    return body_fields(request.headers.get("content-type"), body)


def render(response: WebResponse) -> Response:
    """Starlette's ``Response`` for the core's."""
    if response.body is None:
        out = Response(status_code=response.status)
    else:
        content = json.dumps(response.body, separators=(",", ":")).encode()
        out = Response(content, status_code=response.status, media_type="application/json")
    out.raw_headers.extend((n.encode("latin-1"), v.encode("latin-1")) for n, v in response.headers)
    return out


class CorsMiddleware:
    """Answers CORS preflights and adds the allow headers for listed origins (pure ASGI)."""

    def __init__(self, app: ASGIApp, policy: CorsPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.policy.enabled:
            await self.app(scope, receive, send)
            return
        req = web_request(HTTPConnection(scope))
        preflight = self.policy.preflight(req)
        if preflight is not None:
            await render(preflight)(scope, receive, send)
            return
        extra = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in self.policy.headers(req)]

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_cors)
