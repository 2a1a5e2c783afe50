"""The HTTPS of RFC 8936 polling: a POST of JSON to the transmitter's poll endpoint.

``Authorization: Bearer`` (the token is never logged nor put in an error), the certificate
verified (``ca_file`` or the system CAs), no redirects, at most ``MAX_RESPONSE_BYTES``,
``TIMEOUT`` per socket operation and ``DEADLINE`` for the whole answer.
"""

from __future__ import annotations

import http.client
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from pydantic import SecretStr

from sessionsvc.errors import ConfigError

from .ssf_poll_core import MAX_RESPONSE_BYTES

__all__ = ["DEADLINE", "TIMEOUT", "Fetch", "PollFailed", "https_poster"]

TIMEOUT: Final = 5.0
DEADLINE: Final = 10.0
Fetch = Callable[[bytes], bytes]
"""POSTs a request body, returns the response body (``PollFailed`` on any failure)."""


class PollFailed(Exception):
    """The transmitter could not be polled; the message names why, never the token."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx raises HTTPError: the URL must be the poll endpoint itself


def https_poster(url: str, token: SecretStr | None, ca_file: Path | None) -> Fetch:
    """A ``Fetch`` POSTing to the ``https://`` ``url`` (``ConfigError`` for another scheme)."""
    if not url.lower().startswith("https://"):
        raise ConfigError("a poll URL must be https://")
    context = ssl.create_default_context(cafile=None if ca_file is None else str(ca_file))
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), _NoRedirect)
    headers = {"Content-Type": "application/json", "Accept": "application/json"}

    def fetch(body: bytes) -> bytes:
        request = urllib.request.Request(url, body, headers, method="POST")  # noqa: S310
        if token is not None:  # (no local holds it: a traceback's locals show SecretStr only)
            request.add_unredirected_header("Authorization", f"Bearer {token.get_secret_value()}")
        try:
            with opener.open(request, timeout=TIMEOUT) as response:
                if response.status != 200:
                    raise PollFailed(f"transmitter answered {response.status}")
                return _read_by(response, time.monotonic() + DEADLINE)
        except urllib.error.HTTPError as exc:
            exc.close()  # (its body stays unread)
            raise PollFailed(f"transmitter answered {exc.code}") from None
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", None) or type(exc).__name__
            raise PollFailed(f"cannot reach the transmitter: {reason}") from None

    return fetch


def _read_by(response: Any, deadline: float) -> bytes:
    chunks, size = [], 0
    while chunk := response.read1(65536):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise PollFailed(f"transmitter sent over {MAX_RESPONSE_BYTES} bytes")
        if time.monotonic() > deadline:
            raise PollFailed("transmitter too slow (no whole answer in time)")
    return b"".join(chunks)
