"""Fetching a JWKS of public keys from an ``https://`` URL (the shell of a URL key ring).

- ``https://`` only, the certificate verified against the system CAs (``ssl`` defaults; point
  ``SSL_CERT_FILE`` at another bundle) or against ``cafile`` only when one is given, no
  redirects followed, a 5 s timeout;
- at most ``MAX_JWKS_BYTES``, and status 200 only; every failure is ``ConfigError`` (never the
  body: ``RingWatch`` keeps its ring and logs the message);
- a ring from a URL may only verify: a private or HMAC key there is refused (``check_public``).
"""

from __future__ import annotations

import os
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, Final

from sessionsvc.encoding import StrictDecodeError, loads_object
from sessionsvc.errors import ConfigError

__all__ = ["MAX_JWKS_BYTES", "TIMEOUT", "check_public", "https_fetcher", "is_url"]

MAX_JWKS_BYTES: Final = 1 << 20
TIMEOUT: Final = 5.0
_PRIVATE: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def is_url(source: str) -> bool:
    """Is ``source`` a JWKS URL (``https://``; ``http://`` is refused by ``https_fetcher``)?"""
    return source.strip().lower().startswith(("https://", "http://"))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx then raises HTTPError: the URL must be the JWKS itself


def https_fetcher(
    url: str,
    ring: str,
    timeout: float = TIMEOUT,
    *,
    cafile: str | os.PathLike[str] | None = None,
) -> Callable[[], bytes]:
    """A function that GETs ``url`` and returns its body (``ConfigError`` on any failure).
    ``cafile``: a PEM bundle of the CAs to trust instead of the system's (an unreadable or
    non-PEM one is a ``ConfigError`` here, not at the first fetch)."""
    if not url.lower().startswith("https://"):
        raise ConfigError(f"{ring} key ring: a JWKS URL must be https://")
    try:  # verifies the certificate and the host name
        context = ssl.create_default_context(cafile=cafile)
    except (OSError, ValueError):  # (ssl.SSLError is an OSError)
        raise ConfigError(f"{ring} key ring: cannot load the CA bundle (cafile)") from None
    opener = urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=context), _NoRedirect()
    )
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310

    def fetch() -> bytes:
        try:
            with opener.open(request, timeout=timeout) as response:
                if response.status != 200:
                    raise ConfigError(f"{ring} key ring: JWKS URL answered {response.status}")
                data = _read_by(response, time.monotonic() + 2 * timeout, ring)
        except urllib.error.HTTPError as exc:
            exc.close()  # (its body stays unread)
            raise ConfigError(f"{ring} key ring: JWKS URL answered {exc.code}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or type(exc).__name__
            raise ConfigError(f"{ring} key ring: cannot fetch JWKS URL: {reason}") from None
        if len(data) > MAX_JWKS_BYTES:
            raise ConfigError(f"{ring} key ring: JWKS URL sent over {MAX_JWKS_BYTES} bytes")
        return data

    return fetch


def _read_by(response: Any, deadline: float, ring: str) -> bytes:
    """The body, at most ``MAX_JWKS_BYTES`` + 1 bytes, read in chunks until ``deadline`` (the
    socket timeout bounds each read only: a server trickling a byte at a time must not hold a
    reload, or a close waiting for it, for days)."""
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_JWKS_BYTES:
        if time.monotonic() > deadline:
            raise ConfigError(f"{ring} key ring: JWKS URL too slow (no whole answer in time)")
        chunk: bytes = response.read1(65536) if hasattr(response, "read1") else response.read(65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def check_public(text: str, ring: str) -> None:
    """``ConfigError`` unless every key of the JWKS ``text`` is a public key: no HMAC secret,
    no private member (``d``, ``p``, ``q``, …) whatever its ``key_ops``."""
    try:
        keys = loads_object(text.encode("utf-8")).get("keys")
    except StrictDecodeError:
        return  # (load_jwks says why)
    for jwk in keys if isinstance(keys, list) else []:
        if isinstance(jwk, dict) and (jwk.get("kty") == "oct" or _PRIVATE & jwk.keys()):
            raise ConfigError(
                f"{ring} key ring: a JWKS URL may serve public keys only (kid {jwk.get('kid')!r})"
            )
