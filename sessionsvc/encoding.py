"""The one place for base64url and reply text: ``b64url_encode``, the strict ``b64url_decode``
and ``loads_object`` for untrusted token segments, ``as_text`` for Redis replies (pure, no I/O).

There is no lenient decoder: everything sessionsvc decodes it also encoded with
``b64url_encode``, so the canonical form is the only one it ever needs to read.

Decoding rules, each of which a lenient decoder gets wrong somewhere:

- base64url only (``A-Z a-z 0-9 - _``), no padding, no whitespace, and canonical: the unused low
  bits of the last character must be zero, so that one byte string has exactly one encoding;
- UTF-8 text that is one JSON object; duplicate member names, ``NaN``/``Infinity`` and numbers
  that overflow to infinity are refused, as are nesting that exhausts the recursion limit and
  integers past Python's digit limit.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from typing import Any

__all__ = ["StrictDecodeError", "as_text", "b64url_decode", "b64url_encode", "loads_object"]

_B64URL = re.compile(r"[A-Za-z0-9_-]*")


class StrictDecodeError(ValueError):
    """A segment is not canonical base64url or not a strict JSON object."""


def b64url_encode(data: bytes | str) -> str:
    """Unpadded base64url of ``data`` (a ``str`` is encoded as UTF-8 first)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def as_text(value: bytes | str) -> str:
    """A reply value as ``str`` (redis-py gives ``bytes`` unless the client decodes replies)."""
    return value.decode("utf-8") if isinstance(value, bytes) else value


def b64url_decode(segment: str) -> bytes:
    """Decode one unpadded, canonical base64url segment."""
    if not _B64URL.fullmatch(segment) or len(segment) % 4 == 1:
        raise StrictDecodeError("not unpadded base64url")
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except binascii.Error as exc:  # pragma: no cover - the regex admits only valid input
        raise StrictDecodeError("not base64url") from exc
    if b64url_encode(raw) != segment:
        raise StrictDecodeError("non-canonical base64url")
    return raw


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise StrictDecodeError("duplicate member name")
    return obj


def _no_constant(name: str) -> Any:
    raise StrictDecodeError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise StrictDecodeError("number out of range")
    return value


def loads_object(data: bytes) -> dict[str, Any]:
    """Parse UTF-8 ``data`` as exactly one JSON object under the strict rules above."""
    try:
        text = data.decode("utf-8")
        obj = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_constant=_no_constant,
            parse_float=_finite_float,
        )
    except StrictDecodeError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise StrictDecodeError(f"not strict JSON: {type(exc).__name__}") from None
    if not isinstance(obj, dict):
        raise StrictDecodeError("not a JSON object")
    return obj
