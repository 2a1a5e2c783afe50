"""The one exception tree of sessionsvc.

Every error that sessionsvc raises on purpose is a ``SessionError``; errors of the libraries it
uses (PyJWT, cryptography, redis-py, pydantic) are mapped to these at the boundary::

    SessionError
     ├── ConfigError              settings or keys refused at start-up (message says what to fix)
     ├── TokenRejected            a token failed validation; ``.reason`` is a stable code
     │    └── RefreshReuseDetected  a consumed refresh token came back: its session is revoked
     ├── ClaimNotAllowed          an app claim outside the allow-list was asked for
     ├── SessionNotFound          no live session with that id
     ├── StoreUnavailable         Redis could not be reached or answered an error
     │    └── RevocationNotDurable  applied on the primary, not confirmed by a replica in time
     ├── OverCapacity             an event's logout refused: its origin's budget is full
     ├── InvalidArgument          a bad argument (an empty sub, a non-string ip…); a ValueError
     ├── EventRejected            a revocation event (or entry) that cannot be applied; a
     │                            ValueError; ``.code`` is stable (sessionsvc.revocation.events)
     ├── IdpTokenRejected         an identity provider's logout token or security event token
     │                            refused; ``.code`` is the wire error, ``.reason`` stable
     └── IdpKeysUnavailable       an issuer's keys could not be fetched (yet): try again later

``sessionsvc._boundary.map_exceptions`` is where library errors are mapped; no bare ``ValueError``,
``TypeError`` or ``KeyError`` leaves a public method on bad input. The two ``ValueError``
subclasses stay ``ValueError`` so that code written against earlier versions keeps working.

``TokenRejected.reason`` is one of ``REASONS``; the codes are a contract (logs, metrics, the CLI's
JSON output and HTTP integrations carry them), the ``detail`` text is not.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

Reason = Literal[
    "malformed",
    "too_large",
    "forbidden_header",
    "alg_not_allowed",
    "unknown_key",
    "bad_signature",
    "wrong_type",
    "expired",
    "not_yet_valid",
    "issued_in_future",
    "bad_issuer",
    "bad_audience",
    "missing_claim",
    "bad_lifetime",
    "revoked",
    "stale",
]

REASONS: Final[frozenset[str]] = frozenset(get_args(Reason))

RejectCode = Literal[
    "too_large",
    "malformed",
    "unknown_type",
    "missing_field",
    "unknown_field",
    "bad_field",
    "not_allowed",
    "unknown_key",
]
REJECT_CODES: Final[frozenset[str]] = frozenset(get_args(RejectCode))

IdpErrorCode = Literal[
    "invalid_request",
    "invalid_key",
    "invalid_issuer",
    "invalid_audience",
    "authentication_failed",
    "access_denied",
]
"""The error codes a receiver answers with (RFC 8935 §2.3's registry; a back-channel logout's
400 carries the same code as its ``error``)."""
IDP_ERROR_CODES: Final[frozenset[str]] = frozenset(get_args(IdpErrorCode))


class SessionError(Exception):
    """Base class of every error sessionsvc raises on purpose."""


class ConfigError(SessionError):
    """Settings or keys are unusable; the process must not start with them."""


class TokenRejected(SessionError):
    """A token failed validation.

    ``reason`` is a stable machine-readable code (see ``REASONS``); ``detail`` is a short human
    text that never contains key material or the token itself.
    """

    def __init__(self, reason: Reason, detail: str = "") -> None:
        self.reason: Reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class RefreshReuseDetected(TokenRejected):
    """A refresh token that was already consumed was presented again; its session is revoked."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        super().__init__("revoked", "refresh token reuse detected; the session was revoked")


class ClaimNotAllowed(SessionError):
    """An application claim that is not in the configured allow-list (or is reserved)."""


class SessionNotFound(SessionError):
    """No live session has this id."""


class StoreUnavailable(SessionError):
    """Redis could not be reached, timed out, or answered with an error. ``redis_error`` is the
    redis-py exception it stands for: kept off ``__cause__``, so no traceback prints its text
    (Redis echoes a failed command's first arguments)."""

    redis_error: BaseException | None = None


class RevocationNotDurable(StoreUnavailable):
    """At ``SESSIONSVC_DURABILITY=replica``: the revocation (or rotation, or event) was applied on
    the Redis primary, but no replica confirmed it within ``SESSIONSVC_DURABILITY_TIMEOUT``, so a
    failover could still lose it. It was not acknowledged; retrying is safe (every revocation
    script is idempotent: revocations only grow). ``acknowledged`` is how many replicas did."""

    def __init__(self, what: str, acknowledged: int, wanted: int, timeout: float) -> None:
        self.acknowledged, self.wanted = acknowledged, wanted
        super().__init__(
            f"{what} was applied on the Redis primary but not confirmed by {wanted} replica(s) "
            f"within {timeout:g} s ({acknowledged} did): not durable yet (a failover could lose "
            "it); retrying is safe"
        )


class InvalidArgument(SessionError, ValueError):
    """An argument no call could accept (an empty or unprintable ``sub``, a non-string ``ip``,
    an unsupported ``alg``…): a programming error of the caller, not of the data."""


class ClaimsNotJSON(InvalidArgument, TypeError):
    """App claims holding a value that is not JSON (an object, ``NaN``, a cycle); also a
    ``TypeError``, as ``json.dumps`` raised before."""


class EventRejected(SessionError, ValueError):
    """An inbound event (or revocation entry) that cannot be applied; ``code`` is one of
    ``REJECT_CODES`` (``sessionsvc.revocation.events`` says when; ``not_allowed`` comes from an
    intake's rules, ``unknown_key`` from the worker), ``detail`` is for humans. Also a
    ``ValueError``, as it always was. Importable from ``sessionsvc.revocation.events`` too."""

    def __init__(self, code: RejectCode, detail: str) -> None:
        self.code: RejectCode = code
        self.detail = detail
        super().__init__(f"{code}: {detail}")


class IdpTokenRejected(SessionError):
    """An identity provider's logout token (OIDC Back-Channel Logout) or Security Event Token
    that is refused. ``code`` is the error the receiver answers (``IDP_ERROR_CODES``);
    ``reason`` a finer stable label for logs and metrics (``expired``, ``replayed``,
    ``bad_signature``, ``nonce_present``…); ``detail`` is for humans and never holds the token
    or key material."""

    def __init__(self, code: IdpErrorCode, reason: str, detail: str) -> None:
        self.code: IdpErrorCode = code
        self.reason = reason
        self.detail = detail
        super().__init__(f"{code} ({reason}): {detail}")


class IdpKeysUnavailable(SessionError):
    """An issuer's keys are not available (its JWKS URL failed and no earlier copy is held):
    the token was not judged. Transient: a receiver answers 503, the worker leaves a stream
    entry pending for a retry; never a reason to refuse the token for good."""


class OverCapacity(SessionError):
    """A logout or logout-everywhere of an event was refused because the budget of its origin
    (a publisher's, an identity provider's) holds ``SESSIONSVC_MAX_REVOCATIONS`` revocations in
    force: nothing was ended. Only the worker passes budgets; it dead-letters the event as
    ``over_capacity``."""
