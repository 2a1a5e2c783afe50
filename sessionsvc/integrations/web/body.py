"""A request body as fields (pure): a JSON object or form fields, at most ``MAX_BODY`` bytes.

Adapters read at most ``MAX_BODY`` bytes (``declared_size`` refuses a ``Content-Length`` over
it before reading; a body sent without one is cut off there: ``too_large``), then hand the
bytes to ``body_fields``. ``multipart/form-data`` is parsed by the adapter's framework (its
parser, no files); any other type is 415, an unparsable body 400.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from sessionsvc.integrations.web.http import Problem

__all__ = [
    "FORM",
    "JSON",
    "MAX_BODY",
    "MULTIPART",
    "body_fields",
    "declared_size",
    "read_limited",
    "too_large",
]

MAX_BODY = 16 * 1024
MAX_FIELDS = 32
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"


def media_type(content_type: str | None) -> str:
    """The media type of a ``Content-Type`` value, lower-case, without parameters."""
    return (content_type or "").split(";")[0].strip().lower()


def declared_size(content_length: str | None) -> None:
    """Refuse (413) a ``Content-Length`` over ``MAX_BODY`` (or not a number)."""
    value = content_length
    if value is not None and not (value.isascii() and value.isdigit() and int(value) <= MAX_BODY):
        raise too_large()


def read_limited(read: Callable[[int], bytes]) -> bytes:
    """The body from a stream's ``read(n)``, at most ``MAX_BODY`` bytes (``too_large`` past
    them, whatever ``Content-Length`` said or whether it was sent): the sync adapters' loop."""
    body = b""
    while len(body) <= MAX_BODY:
        chunk = read(MAX_BODY + 1 - len(body))
        if not chunk:
            break
        body += chunk
    if len(body) > MAX_BODY:
        raise too_large()
    return body


def too_large() -> Problem:
    """The answer to a body over ``MAX_BODY`` bytes."""
    return Problem(413, "invalid_request", "request body too large")


def unparsable() -> Problem:
    """The answer to a body that cannot be parsed as its type."""
    return Problem(400, "invalid_request", "the body cannot be parsed")


def body_fields(content_type: str | None, body: bytes) -> dict[str, Any]:
    """``body`` (at most ``MAX_BODY`` bytes) as fields: a JSON object or urlencoded form
    fields; ``Problem`` 400 (unparsable, not an object) or 415 (another type)."""
    if len(body) > MAX_BODY:
        raise too_large()
    if not body:
        return {}
    kind = media_type(content_type)
    try:
        if kind == FORM:
            text = body.decode("utf-8")
            return dict(parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS))
        if kind != JSON:
            raise Problem(415, "invalid_request", "send JSON or a form")
        fields = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise unparsable() from None
    if not isinstance(fields, dict):
        raise Problem(400, "invalid_request", "the body must be a JSON object")
    return fields
