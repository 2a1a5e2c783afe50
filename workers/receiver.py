"""The identity providers' push endpoints as HTTP decisions (pure: no sockets, no threads).

``ReceiverCore.handle`` turns one request into one ``Response`` for the two endpoints IdPs
push logouts to: ``POST /backchannel-logout`` (OpenID Connect Back-Channel Logout 1.0, §2.5
request, §2.8 response) and ``POST /ssf/events`` (RFC 8935, push delivery of a Security Event
Token). The tokens themselves are judged by an ``IdpIntake``; this module checks the framing
(length, media type, body syntax) and maps the outcome onto statuses and each endpoint's JSON
error shape. No response echoes the token or a request header. ``receiver_http`` is its shell.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import parse_qs

from sessionsvc.errors import IdpKeysUnavailable, IdpTokenRejected, StoreUnavailable

__all__ = ["BACKCHANNEL_LOGOUT", "SSF_EVENTS", "IdpIntake", "ReceiverCore", "Response"]

BACKCHANNEL_LOGOUT = "/backchannel-logout"
SSF_EVENTS = "/ssf/events"
_ROUTES = {  # path: (its name for ``observe``, the media type it takes)
    BACKCHANNEL_LOGOUT: ("backchannel_logout", "application/x-www-form-urlencoded"),
    SSF_EVENTS: ("ssf_events", "application/secevent+jwt"),
}
_COMPACT = re.compile(rb"[\w-]+(\.[\w-]*){2}((\.[\w-]*){2})?", re.ASCII)  # JWS or JWE
_LENGTH = re.compile(r"[0-9]{1,12}")
_CHARSETS = ("", "charset=utf-8", 'charset="utf-8"', "charset=us-ascii", 'charset="us-ascii"')
_ALWAYS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


class IdpIntake(Protocol):
    """Judges and applies the tokens (raises ``IdpTokenRejected``, ``IdpKeysUnavailable``,
    ``StoreUnavailable``); called from the shell's worker threads."""

    def backchannel_logout(self, logout_token: str) -> None: ...

    def security_event(self, set_token: str, authorization: str | None) -> None: ...


@dataclass(frozen=True)
class Response:
    """What to answer: status, headers (without ``Content-Length``) and body."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class _Refused(Exception):
    """A request refused (``invalid_request``) before the intake saw it."""

    def __init__(self, status: int, reason: str, text: str) -> None:
        self.status, self.reason, self.text = status, reason, text
        super().__init__(text)


class ReceiverCore:
    """The receiver's decisions. ``observe(route, outcome, reason)`` counts each answer
    (outcome ``accepted``, ``refused``, ``unavailable`` or ``bad_request``); thread-safe."""

    def __init__(
        self,
        intake: IdpIntake,
        *,
        max_body: int = 16384,
        retry_after: int = 5,
        observe: Callable[[str, str, str], None] | None = None,
    ) -> None:
        self.intake, self.max_body, self.retry_after = intake, max_body, retry_after
        self._observe = observe or (lambda route, outcome, reason: None)

    def body_length(self, headers: Mapping[str, str]) -> int | None:
        """How many body bytes the shell should read: ``None`` when the request is refused on
        its framing alone (no ``Content-Length``, chunked, invalid, over ``max_body``)."""
        lowered = _lower(headers)
        value = lowered.get("content-length")
        if "transfer-encoding" in lowered or value is None or not _LENGTH.fullmatch(value):
            return None
        return int(value) if int(value) <= self.max_body else None

    def busy(self) -> Response:
        """The answer to a connection beyond the server's limit (its request is not read)."""
        self._observe("unknown", "unavailable", "busy")
        return self._unavailable("", "too many connections; retry later")

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Response:
        """Answer one request; ``headers`` by any case, ``body`` as read (``b""`` if unread)."""
        route, lowered = path.split("?", 1)[0], _lower(headers)
        name = _ROUTES[route][0] if route in _ROUTES else "unknown"
        try:
            self._check(method, route, lowered, body)
            if route == BACKCHANNEL_LOGOUT:
                self.intake.backchannel_logout(_logout_token(body))
            else:
                self.intake.security_event(body.decode("ascii"), lowered.get("authorization"))
        except _Refused as exc:
            self._observe(name, "bad_request", exc.reason)
            response = self._error(route, exc.status, "invalid_request", exc.text)
            if exc.status == 405:
                response.headers["Allow"] = "POST"
            return response
        except IdpTokenRejected as exc:
            self._observe(name, "refused", exc.reason)
            # RFC 8935 §2.3: an error "parsing, validating, or authenticating a SET" SHALL be
            # answered 400 with {"err", "description"}, §2.4's authentication_failed and
            # access_denied included: never 401/403. The scheme is still advertised (RFC 9110
            # §11.6.1: WWW-Authenticate MAY be sent on any response).
            response = self._error(route, 400, exc.code, exc.detail)
            if exc.code == "authentication_failed" and route == SSF_EVENTS:
                response.headers["WWW-Authenticate"] = "Bearer"
            return response
        except (IdpKeysUnavailable, StoreUnavailable) as exc:
            why = "keys" if isinstance(exc, IdpKeysUnavailable) else "store"
            self._observe(name, "unavailable", why)
            return self._unavailable(route, "not judged now; retry later")
        self._observe(name, "accepted", "ok")
        # Back-Channel Logout §2.8: 200 OK; RFC 8935 §2.2: 202 Accepted; both with no body.
        return Response(200 if route == BACKCHANNEL_LOGOUT else 202, dict(_ALWAYS))

    def _check(self, method: str, route: str, headers: Mapping[str, str], body: bytes) -> None:
        if route not in _ROUTES:
            raise _Refused(404, "not_found", "no such endpoint")
        if method != "POST":
            raise _Refused(405, "method_not_allowed", "only POST is allowed")
        length = headers.get("content-length")
        if "transfer-encoding" in headers or length is None:
            raise _Refused(411, "length_required", "Content-Length is required")
        if not _LENGTH.fullmatch(length):
            raise _Refused(400, "bad_length", "invalid Content-Length")
        if int(length) > self.max_body or len(body) > self.max_body:
            raise _Refused(413, "too_large", f"body over {self.max_body} bytes")
        if int(length) != len(body):
            raise _Refused(400, "bad_length", "body shorter than Content-Length")
        media, _, params = headers.get("content-type", "").partition(";")
        wanted = _ROUTES[route][1]
        if media.strip().lower() != wanted or params.strip().lower() not in _CHARSETS:
            raise _Refused(415, "media_type", f"Content-Type must be {wanted}")
        if route == SSF_EVENTS and not _COMPACT.fullmatch(body):
            raise _Refused(400, "malformed", "the body is not a compact JWS/JWE")

    def _unavailable(self, route: str, text: str) -> Response:
        response = self._error(route, 503, "temporarily_unavailable", text)
        response.headers["Retry-After"] = str(self.retry_after)
        return response

    def _error(self, route: str, status: int, code: str, text: str) -> Response:
        # Back-Channel Logout §2.8 (RFC 6749 §5.2's members), or RFC 8935 §2.3's, which also
        # asks for a Content-Language naming the description's language.
        shape = {"error": code, "error_description": text}
        if route == SSF_EVENTS:
            shape = {"err": code, "description": text}
        headers = {**_ALWAYS, "Content-Type": "application/json", "Content-Language": "en"}
        return Response(status, headers, json.dumps(shape).encode())


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def _logout_token(body: bytes) -> str:
    """Back-Channel Logout §2.5: a form with one ``logout_token``; other parameters ignored."""
    try:
        text = body.decode("ascii")
        form = parse_qs(
            text, keep_blank_values=True, strict_parsing=True, max_num_fields=16, errors="strict"
        )
    except ValueError:  # UnicodeDecodeError included (also from a %-escape)
        raise _Refused(400, "malformed", "the body is not a valid form") from None
    tokens = form.get("logout_token", [])
    if len(tokens) != 1 or not tokens[0]:
        raise _Refused(400, "token_count", "exactly one logout_token is required")
    return tokens[0]
