"""CSRF defence of cookie mode (pure): Fetch Metadata first, ``Origin``/``Referer`` as the
fallback, then a signed double-submit token bound to the session (OWASP CSRF Prevention Cheat
Sheet).

``CsrfTokens`` makes and checks the tokens: ``v1.`` + base64url(HMAC-SHA256(key,
``sessionsvc-csrf\\0`` + session id)). ``CsrfPolicy`` judges an unsafe request (POST, PUT,
PATCH, DELETE):

1. ``Sec-Fetch-Site``: ``cross-site`` refused; ``same-site`` refused unless ``Origin`` is one of
   ``SESSIONSVC_WEB_TRUSTED_SITES``; ``same-origin`` and ``none`` (the user's own action) pass;
   any other value is refused.
2. Without ``Sec-Fetch-Site`` (older browsers, some privacy proxies): ``Origin`` must be the
   request's own origin, one of ``SESSIONSVC_WEB_ORIGINS`` or of the trusted sites; ``null``
   (an opaque origin: sandboxed frames, some redirects) is refused; without ``Origin``, the
   origin of ``Referer`` is judged the same way. With neither header the request is not from a
   browser (every browser in use sends ``Origin`` on a POST) and passes to step 3.
3. The token, from the header ``SESSIONSVC_WEB_CSRF_HEADER`` or else the form field
   ``SESSIONSVC_WEB_CSRF_FIELD``, must equal the CSRF cookie and be valid for the session.

Invariants:

- Safe methods (GET, HEAD, OPTIONS) are never refused: they must not change state.
- A token is the same for every request of one session (it survives refreshes), different for
  every session, and cannot be made without the key; a token of another session is refused.
  Comparisons are constant-time; ``valid`` never raises, whatever it is given.
- A refusal is ``Problem(403, "csrf", reason)``; the reason never quotes what was sent.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Final
from urllib.parse import urlsplit

from sessionsvc.config.settings import Settings
from sessionsvc.encoding import b64url_encode
from sessionsvc.errors import ConfigError, InvalidArgument
from sessionsvc.integrations.web.config import WebSettings
from sessionsvc.integrations.web.cors import normalise_origin
from sessionsvc.integrations.web.http import Problem, WebRequest

__all__ = ["VARY", "CsrfPolicy", "CsrfTokens"]

VARY: Final = ("vary", "Sec-Fetch-Site, Origin")
"""Added by adapters to the responses of unsafe cookie-mode requests (the answer depends on
these headers)."""
VERSION: Final = "v1."
MAX_TOKEN: Final = 128
MIN_KEY: Final = 32
_CONTEXT: Final = b"sessionsvc-csrf\x00"
_PROCESS_KEY: Final = secrets.token_bytes(MIN_KEY)  # development only: see for_settings


class CsrfTokens:
    """Signed double-submit tokens bound to a session id."""

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, bytes) or len(secret) < MIN_KEY:
            raise InvalidArgument(f"the CSRF key must be at least {MIN_KEY} bytes")
        self._key = secret

    @classmethod
    def for_settings(cls, web: WebSettings, settings: Settings) -> CsrfTokens:
        """Tokens keyed by ``SESSIONSVC_WEB_CSRF_SECRET``; without it, in development only, by a
        random key made once per process (tokens then die with the process, and the nodes of a
        multi-node development setup refuse each other's: set the secret there too).
        ``ConfigError`` outside development without the secret."""
        if web.csrf_secret is not None:
            return cls(web.csrf_secret.get_secret_value().encode("utf-8"))
        if settings.env != "development":
            raise ConfigError("SESSIONSVC_WEB_CSRF_SECRET: is required outside development")
        return cls(_PROCESS_KEY)

    def issue(self, session_id: str) -> str:
        """The CSRF token of session ``session_id`` (the same on every call)."""
        if not isinstance(session_id, str) or not session_id:
            raise InvalidArgument("a session id is a non-empty string")
        return VERSION + b64url_encode(self._mac(session_id))

    def valid(self, token: object, session_id: object) -> bool:
        """Whether ``token`` is session ``session_id``'s token; never raises."""
        if (
            not isinstance(token, str)
            or not isinstance(session_id, str)
            or not session_id
            or len(token) > MAX_TOKEN
            or not token.isascii()
            or not token.startswith(VERSION)
        ):
            return False
        try:
            expected = VERSION + b64url_encode(self._mac(session_id))
        except UnicodeEncodeError:  # a lone surrogate: no session has such an id
            return False
        return hmac.compare_digest(token.encode("ascii"), expected.encode("ascii"))

    def _mac(self, session_id: str) -> bytes:
        message = _CONTEXT + session_id.encode("utf-8")
        return hmac.new(self._key, message, hashlib.sha256).digest()


class CsrfPolicy:
    """Judges the unsafe requests of cookie mode: origin first, then the token."""

    def __init__(self, web: WebSettings, tokens: CsrfTokens) -> None:
        self.web = web
        self.tokens = tokens
        self.header = web.csrf_header.lower()
        self.field = web.csrf_field
        self.cookie = web.csrf_cookie
        self.trusted: Final = frozenset(filter(None, map(normalise_origin, web.trusted_sites)))
        self.own: Final = frozenset(filter(None, map(normalise_origin, web.origins)))
        self._allowed: Final = self.own | self.trusted

    def check_origin(self, req: WebRequest) -> None:
        """``Problem(403, "csrf")`` for an unsafe request a browser sent from elsewhere."""
        if not req.unsafe:
            return
        site = req.header("sec-fetch-site")
        if site is not None:
            site = site.strip().lower()
            if site in ("same-origin", "none"):
                return
            if site == "same-site":
                if normalise_origin(req.header("origin")) in self.trusted:
                    return
                raise Problem(403, "csrf", "same-site request from an untrusted site refused")
            if site == "cross-site":
                raise Problem(403, "csrf", "cross-site request refused")
            raise Problem(403, "csrf", "unknown Sec-Fetch-Site refused")
        origin = req.header("origin")
        if origin is None:
            referer = req.header("referer")
            if referer is None:
                return  # not a browser: browsers send Origin on every unsafe request
            origin = _referer_origin(referer)
            what = "Referer"
        else:
            what = "Origin"
        if origin.strip() == "null":
            raise Problem(403, "csrf", "request from an opaque origin (Origin: null) refused")
        key = normalise_origin(origin)
        if key is None or (key not in self._allowed and key != normalise_origin(req.app_origin())):
            raise Problem(403, "csrf", f"cross-origin request refused ({what})")

    def check(self, req: WebRequest, session_id: str) -> None:
        """``check_origin``, then the double-submit token of session ``session_id``."""
        if not req.unsafe:
            return
        self.check_origin(req)
        token: object = req.header(self.header)
        if token is None and req.form is not None:
            token = req.form.get(self.field)
        if token is None or token == "":
            raise Problem(403, "csrf", "CSRF token missing")
        cookie = req.cookies.get(self.cookie)
        if not cookie:
            raise Problem(403, "csrf", "CSRF cookie missing")
        same = _equal(token, cookie)
        valid = self.tokens.valid(token, session_id)
        if not same:
            raise Problem(403, "csrf", "CSRF token does not match its cookie")
        if not valid:
            raise Problem(403, "csrf", "CSRF token not valid for this session")


def _equal(token: object, cookie: str) -> bool:
    """Constant-time equality of the submitted token and the cookie's value."""
    if not isinstance(token, str) or not token.isascii() or not cookie.isascii():
        return False
    return hmac.compare_digest(token.encode("ascii"), cookie.encode("ascii"))


def _referer_origin(referer: str) -> str:
    """The origin of a ``Referer`` URL (``""`` when it has none: refused as no origin)."""
    try:
        parts = urlsplit(referer.strip())
    except ValueError:  # e.g. an unbalanced [ in the host
        return ""
    if not parts.scheme or not parts.netloc:
        return ""
    return f"{parts.scheme}://{parts.netloc}"
