"""Werkzeug's side of the web core (Flask's requests and responses): requests in, responses
out, and server-sent events on threads.

``web_request(request)`` builds the core's ``WebRequest`` (headers lower-case, cookies parsed
first-wins, the peer address, the app's own origin, the body when asked); ``read_body`` reads a
JSON object or form fields, at most ``MAX_BODY`` bytes; ``render(response)`` gives Werkzeug's
``Response`` (``set-cookie`` once per cookie). ``event_stream`` is a live sign-out stream: the
app's events, ended by ``event: revoked`` when a ``LiveRegistry`` says so.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import structlog
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.wrappers import Request, Response

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
from sessionsvc.integrations.web.http import (
    WebRequest,
    WebResponse,
    parse_cookies,
    request_origin,
)
from sessionsvc.integrations.web.live import LiveRegistry, sse_event
from sessionsvc.integrations.web.principal import Principal

__all__ = ["MAX_BODY", "event_stream", "read_body", "render", "web_request"]

log = structlog.get_logger("sessionsvc.web")


def web_request(req: Request, form: Mapping[str, Any] | None = None) -> WebRequest:
    """The core's view of ``req`` (``form``: the parsed body, if read)."""
    cookie = req.environ.get("HTTP_COOKIE", "")
    return WebRequest(
        method=req.method,
        path=req.script_root + req.path,
        query=req.query_string.decode("latin-1"),
        headers={k.lower(): v for k, v in req.headers.items() if k.lower() != "cookie"},
        cookies=parse_cookies(cookie),
        client=req.remote_addr,
        origin=request_origin(req.scheme, req.host),
        form=form,
        cookie_header=cookie,
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


def event_stream(
    registry: LiveRegistry, principal: Principal, events: Iterable[Any]
) -> Iterator[str]:
    """The server-sent events of ``events`` (each a string or JSON-able ``data``) until
    ``registry`` ends the principal's stream (``event: revoked``, then the end). ``events`` runs
    in a thread of its own, asked for one item at a time, and is closed (``close()``) there
    however the stream ends (once the item it may be computing is done)."""
    # One message queue for the response: the pump's items (one at a time, on demand) and
    # the revocation (the feed's thread, or a sign-out on this node: at once).
    messages: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
    demand: queue.SimpleQueue[bool] = queue.SimpleQueue()
    pump = threading.Thread(target=_pump, args=(events, demand, messages), daemon=True)
    with registry.watch(principal.claims, lambda why: messages.put(("revoked", why))):
        pump.start()
        try:
            while True:
                demand.put(True)
                kind, value = messages.get()
                if kind == "revoked":
                    yield sse_event("revoked", {"reason": value})
                    return
                if kind == "end":
                    return
                if kind == "error":
                    raise value
                yield sse_event(None, value)
        finally:
            demand.put(False)  # the pump closes the events after the item it is on


def _pump(
    events: Iterable[Any],
    demand: queue.SimpleQueue[bool],
    messages: queue.SimpleQueue[tuple[str, Any]],
) -> None:
    source = iter(events)
    try:
        while demand.get():
            try:
                messages.put(("item", next(source)))
            except StopIteration:
                messages.put(("end", None))
                return
            except Exception as exc:
                messages.put(("error", exc))
                return
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            try:
                close()
            except Exception:
                log.exception("live_events_close_failed")
