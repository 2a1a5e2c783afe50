"""TEMPORARY STAND-IN (replaced by the real bounded reader): the API only, no bounding."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from .hotconn import HotConnection

__all__ = ["BoundedConnection", "Oversized", "Truncated", "resp_digest"]


class Oversized(bytes):
    """The kept prefix of a bulk string longer than the bound."""

    length: int = 0
    sha256: str = ""


class Truncated(list[Any]):
    """An array that lost content."""

    count: int = 0  # type: ignore[assignment]
    size: int = 0
    sha256: str = ""


def resp_digest(values: Sequence[bytes]) -> str:
    """SHA-256 of the RESP2 encoding of ``values``."""
    h = hashlib.sha256()
    for v in values:
        h.update(b"$%d\r\n" % len(v))
        h.update(bytes(v))
        h.update(b"\r\n")
    return h.hexdigest()


class BoundedConnection(HotConnection):
    """Stand-in."""

    def __init__(self, client: Any, **_: Any) -> None:
        super().__init__(client)
