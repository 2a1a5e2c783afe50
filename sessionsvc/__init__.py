"""sessionsvc: local JWT validation with revocation that reaches every node in about a millisecond.

The public API::

    Validator          validate access tokens locally (cache + revocation view)
    TokenIssuer        sign access and refresh tokens
    SessionService     sessions in Redis: login, refresh rotation, logout one/all, list
    AsyncSessionService  the same for asyncio; SessionInfo, TokenPair are their results
    Publisher          publish revoke events (AsyncPublisher for asyncio); EventRejected
    Settings           configuration from SESSIONSVC_* environment variables
    Revocation         one revocation entry; RevocationView holds them
    SessionError, TokenRejected, ...  the exception tree (see sessionsvc.errors)
"""

from sessionsvc.config import Settings, load_settings
from sessionsvc.errors import (
    REASONS,
    ClaimNotAllowed,
    ConfigError,
    RefreshReuseDetected,
    RevocationNotDurable,
    SessionError,
    SessionNotFound,
    StoreUnavailable,
    TokenRejected,
)
from sessionsvc.revocation.events import EventRejected
from sessionsvc.revocation.publisher import AsyncPublisher, Publisher
from sessionsvc.revocation.view import Revocation, RevocationView
from sessionsvc.sessions.core import SessionInfo
from sessionsvc.sessions.service import AsyncSessionService, SessionService
from sessionsvc.tokens.issuer import TokenIssuer, TokenPair
from sessionsvc.tokens.keygen import generate_jwk, generate_jwks
from sessionsvc.tokens.keys import Key, KeyRing, load_jwks
from sessionsvc.validator import Validator

__all__ = [
    "REASONS",
    "AsyncPublisher",
    "AsyncSessionService",
    "ClaimNotAllowed",
    "ConfigError",
    "EventRejected",
    "Key",
    "KeyRing",
    "Publisher",
    "RefreshReuseDetected",
    "Revocation",
    "RevocationNotDurable",
    "RevocationView",
    "SessionError",
    "SessionInfo",
    "SessionNotFound",
    "SessionService",
    "Settings",
    "StoreUnavailable",
    "TokenIssuer",
    "TokenPair",
    "TokenRejected",
    "Validator",
    "generate_jwk",
    "generate_jwks",
    "load_jwks",
    "load_settings",
]

__version__ = "0.1.0"
