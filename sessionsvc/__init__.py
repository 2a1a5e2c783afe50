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

from .asessions import AsyncSessionService
from .config import Settings, load_settings
from .errors import (
    REASONS,
    ClaimNotAllowed,
    ConfigError,
    RefreshReuseDetected,
    SessionError,
    SessionNotFound,
    StoreUnavailable,
    TokenRejected,
)
from .events import EventRejected
from .keygen import generate_jwk, generate_jwks
from .keys import Key, KeyRing, load_jwks
from .publisher import AsyncPublisher, Publisher
from .sessions import SessionService
from .sessions_core import SessionInfo
from .tokens import TokenIssuer, TokenPair
from .validator import Validator
from .view import Revocation, RevocationView

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
