"""What a verified identity-provider token says (pure, no I/O).

``LogoutRequest`` is an OpenID Connect Back-Channel Logout token that passed every check of its
§2.6; ``SecurityEventToken`` a Security Event Token (RFC 8417) whose CAEP events we act on.
Times are seconds since the epoch. Nothing here holds the token text or key material.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

if TYPE_CHECKING:
    import jwt

__all__ = [
    "BACKCHANNEL_LOGOUT",
    "CREDENTIAL_CHANGE",
    "MAX_TOKEN_BYTES",
    "SESSION_REVOKED",
    "SSF_VERIFICATION",
    "KeyLookup",
    "LogoutRequest",
    "SecurityEvent",
    "SecurityEventToken",
    "Subject",
]

BACKCHANNEL_LOGOUT: Final = "http://schemas.openid.net/event/backchannel-logout"
SESSION_REVOKED: Final = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
CREDENTIAL_CHANGE: Final = "https://schemas.openid.net/secevent/caep/event-type/credential-change"
SSF_VERIFICATION: Final = "https://schemas.openid.net/secevent/ssf/event-type/verification"
MAX_TOKEN_BYTES: Final = 16384
"""The longest identity-provider token taken in (received, or read from an intake)."""


@dataclass(frozen=True, slots=True)
class LogoutRequest:
    """A verified back-channel logout token: ``sub`` and/or ``sid`` (at least one) as the
    identity provider names them, before any mapping to local users and sessions."""

    issuer: str
    jti: str
    iat: float
    exp: float
    sub: str | None
    sid: str | None


@dataclass(frozen=True, slots=True)
class Subject:
    """An RFC 9493 subject identifier, as far as revocation uses it. ``format`` is the one
    given (``opaque``, ``iss_sub``, ``email``, ``jwt_id``, ``complex``); for ``complex`` the
    members it had: ``sub`` (+ ``iss``) from its ``user``, ``sid`` from its ``session``."""

    format: str
    sub: str | None = None
    iss: str | None = None
    email: str | None = None
    sid: str | None = None
    jti: str | None = None


@dataclass(frozen=True, slots=True)
class SecurityEvent:
    """One event of a SET: its type URI, its subject, ``event_timestamp`` (if given) and, for
    ``credential-change``, its ``change_type`` and ``credential_type``."""

    type: str
    subject: Subject | None
    event_time: float | None = None
    change_type: str | None = None
    credential_type: str | None = None


@dataclass(frozen=True, slots=True)
class SecurityEventToken:
    """A verified SET: the events we know (``events``), the URIs of those we do not
    (``ignored``: acknowledged, counted, never an error), and for an SSF verification event
    its ``state`` (``verification``). ``txn`` is the SET's ``txn`` (an integer made text):
    the same for SETs of one underlying cause."""

    issuer: str
    jti: str
    iat: float
    events: tuple[SecurityEvent, ...]
    ignored: tuple[str, ...] = ()
    verification: str | None = None
    txn: str | None = None


class KeyLookup(Protocol):
    """Where verification finds an issuer's key (``sessionsvc.idp.keys.IssuerKeyring``)."""

    def key(self, issuer: str, kid: str | None, alg: str) -> jwt.PyJWK:
        """The key of ``issuer`` that verifies a token with header ``kid`` and ``alg``:
        ``IdpTokenRejected`` (``invalid_key``) when it has none that may, ``IdpKeysUnavailable``
        when its keys cannot be fetched."""
        ...
