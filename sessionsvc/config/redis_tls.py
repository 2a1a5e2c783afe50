"""TLS to Redis: the CA and client-certificate settings of a ``rediss://`` URL, checked at start.

``SESSIONSVC_REDIS_CA_FILE`` (the CA bundle that signed the server's certificate; unset: the
system trust store), ``SESSIONSVC_REDIS_CLIENT_CERT_FILE`` and ``SESSIONSVC_REDIS_CLIENT_KEY_FILE``
(a client certificate, for servers that demand one). ``sessionsvc._redis.clients`` hands them to
every client; this module only judges them (no connection is made).

Invariants:

- Verification is always on: the server's certificate is checked against the CA (or the system
  store) and its name against the URL's host. No setting, and no URL parameter
  (``check_redis_url`` refuses every ``ssl_*`` one), turns either off.
- A setting that would do nothing is refused: a TLS file with a URL that is not ``rediss://``,
  a client certificate without its key or a key without its certificate.
- Files are judged at start-up (readable, PEM, the key unencrypted and matching its certificate),
  not at the first connection. Messages name the variable, never a path's content or an error
  of OpenSSL's (whose text is not ours to vouch for).
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Final

__all__ = ["TLS_VARIABLES", "check_redis_tls", "readable_file"]

TLS_VARIABLES: Final = {
    "ca": "SESSIONSVC_REDIS_CA_FILE",
    "cert": "SESSIONSVC_REDIS_CLIENT_CERT_FILE",
    "key": "SESSIONSVC_REDIS_CLIENT_KEY_FILE",
}


class _EncryptedKey(Exception):
    """The key file asks for a passphrase (OpenSSL would otherwise prompt on the terminal)."""


def _no_passphrase() -> bytes:
    raise _EncryptedKey


def readable_file(path: Path) -> Path:
    """``path`` made absolute, if it names a regular file this process can open; else
    ``ValueError`` (a pydantic validator reports it under the variable's name)."""
    path = path.absolute()
    try:
        if not path.is_file():
            raise ValueError("is not a file (missing, or a directory)")
        with path.open("rb"):
            pass
    except OSError:
        raise ValueError("cannot be read (no permission)") from None
    return path


def check_redis_tls(url: str, ca: Path | None, cert: Path | None, key: Path | None) -> None:
    """Raise ``ValueError`` unless the TLS files fit ``url`` (``rediss://`` when any is set;
    certificate and key together) and hold what they should: ``ca`` at least one PEM
    certificate, ``cert`` and ``key`` a PEM certificate and its unencrypted private key."""
    given = [
        TLS_VARIABLES[name] for name, path in (("ca", ca), ("cert", cert), ("key", key)) if path
    ]
    if given and not url.startswith("rediss://"):
        raise ValueError(
            f"{', '.join(given)}: for a rediss:// SESSIONSVC_REDIS_URL (TLS) only; "
            "with this URL TLS files would do nothing"
        )
    if (cert is None) != (key is None):
        raise ValueError(
            f"{TLS_VARIABLES['cert']} and {TLS_VARIABLES['key']} go together: set both or neither"
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca is not None:
        try:
            context.load_verify_locations(cafile=ca)
        except (ssl.SSLError, OSError):
            raise ValueError(f"{TLS_VARIABLES['ca']} holds no PEM certificate") from None
    if cert is not None and key is not None:
        try:
            context.load_cert_chain(cert, key, password=_no_passphrase)
        except _EncryptedKey:
            raise ValueError(
                f"{TLS_VARIABLES['key']} is encrypted: store the key unencrypted, readable by "
                "the service user only (mode 600)"
            ) from None
        except (ssl.SSLError, OSError):
            raise ValueError(
                f"{TLS_VARIABLES['cert']} and {TLS_VARIABLES['key']} must be a PEM certificate "
                "and its private key"
            ) from None
