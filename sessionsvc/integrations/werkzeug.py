"""Werkzeug's side of the web core (Flask's requests and responses): requests in, responses
out, and server-sent events on threads.

``web_request(request)`` builds the core's ``WebRequest`` (headers lower-case, cookies parsed
first-wins, the peer address, the app's own origin, the body when asked); ``read_body`` reads a
JSON object or form fields, at most ``MAX_BODY`` bytes; ``render(response)`` gives Werkzeug's
``Response`` (``set-cookie`` once per cookie). ``event_stream`` (a live sign-out stream) is
``sessionsvc.integrations.sync``'s, re-exported.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.wrappers import Request, Response

from sessionsvc.integrations.sync import event_stream
from sessionsvc.integrations.web.body import (
    MAX_BODY,
    MAX_FIELDS,
    MULTIPART,
    body_fields,
    declared_size,
    media_type,
    read_limited,
    too_large,
    unparsable,
)
from sessionsvc.integrations.web.headers import EnvironHeaders, LazyCookies
from sessionsvc.integrations.web.http import WebRequest, WebResponse, request_origin

__all__ = ["MAX_BODY", "event_stream", "read_body", "render", "web_request"]


def web_request(req: Request, form: Mapping[str, Any] | None = None) -> WebRequest:
    """The core's view of ``req`` (``form``: the parsed body, if read). Headers and cookies are
    read from the environ when the core asks, the origin computed only if a check needs it."""
    environ = req.environ
    cookie = environ.get("HTTP_COOKIE", "")
    return WebRequest(
        method=req.method,
        path=req.script_root + req.path,
        query=environ.get("QUERY_STRING", ""),
        headers=EnvironHeaders(environ),
        cookies=LazyCookies(cookie),
        client=req.remote_addr,
        form=form,
        cookie_header=cookie,
        origin_of=lambda: request_origin(req.scheme, req.host),
    )


def read_body(req: Request) -> dict[str, Any]:
    """The body as fields: a JSON object or form fields (``Problem`` 400/413/415 otherwise).
    At most ``MAX_BODY`` bytes are read, whatever ``Content-Length`` says (or whether it is
    sent); the bytes stay cached on ``req`` (``get_data()``, ``json``, ``form`` read them)."""
    declared_size(req.headers.get("content-length"))
    cached = req.__dict__.get("_cached_data")  # (read before: by us, or get_data())
    try:
        body = cached if isinstance(cached, bytes) else read_limited(req.stream.read)
    except RequestEntityTooLarge:  # (the app's own MAX_CONTENT_LENGTH)
        raise too_large() from None
    except HTTPException:  # (the client went away)
        raise unparsable() from None
    if len(body) > MAX_BODY:  # (read before, by get_data())
        raise too_large()
    req.__dict__["_cached_data"] = body  # Werkzeug's own cache of the body
    if body and media_type(req.content_type) == MULTIPART:
        try:
            fields, files = req.form, req.files
        except HTTPException:
            raise unparsable() from None
        if files or len(list(fields.items(multi=True))) > MAX_FIELDS:
            raise unparsable()  # (no uploads, at most MAX_FIELDS fields: as with Starlette)
        return dict(fields.items())
    return body_fields(req.content_type, body)


def render(response: WebResponse) -> Response:
    """Flask's ``Response`` for the core's (``Set-Cookie`` once per cookie)."""
    body = b"" if response.body is None else json.dumps(response.body, separators=(",", ":"))
    out = Response(body, status=response.status, mimetype="application/json")
    if response.body is None:
        out.headers.remove("content-type")
    for name, value in response.headers:
        out.headers.add(name, value)
    return out
