"""``TokenIssuer``: signs access and refresh tokens with the active keys of their rings.

Rings loaded from JWKS files (the settings name paths) are re-read at most every
``keys_reload_interval`` seconds, checked before the next signature (``reload_keys()`` forces
it): a promoted key signs without a restart. A new ring must hold a signing key and stay
disjoint from the other ring, else the current one is kept (``sessionsvc.tokens.ring_watch``).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from sessionsvc.config import Settings, load_settings
from sessionsvc.errors import ClaimNotAllowed, ClaimsNotJSON, ConfigError, InvalidArgument
from sessionsvc.tokens.claims import ACCESS_CLAIMS, id_claim_problem
from sessionsvc.tokens.keys import KeyRing, check_disjoint
from sessionsvc.tokens.ring_watch import RingWatch

__all__ = ["ACCESS_TYPE", "REFRESH_TYPE", "TokenIssuer", "TokenPair", "dump_claims", "new_id"]

ACCESS_TYPE: Final = "at+jwt"
REFRESH_TYPE: Final = "refresh+jwt"
RESERVED_CLAIMS: Final = frozenset(ACCESS_CLAIMS) | {"typ", "cnf", "act", "azp", "client_id"}


def _check_ids(sub: object, sid: object) -> None:
    """``InvalidArgument`` for a ``sub`` or ``sid`` that validation would reject (the one id
    rule)."""
    for name, value in (("sub", sub), ("sid", sid)):
        problem = id_claim_problem(value)
        if problem is not None:
            raise InvalidArgument(f"{name} {problem}")


def dump_claims(claims: Mapping[str, Any]) -> str:
    """App claims as compact JSON; ``ClaimsNotJSON`` for a value that is not JSON (checked
    before signing or storing: the one JSON-ability rule of issuer and sessions)."""
    try:
        return json.dumps(dict(claims), separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:  # not serialisable; NaN, infinity or a cycle
        raise ClaimsNotJSON(f"claims must be JSON values ({type(exc).__name__})") from None


def new_id() -> str:
    """A 128-bit random identifier (22 base64url characters) for sid and jti."""
    return secrets.token_urlsafe(16)


@dataclass(frozen=True, slots=True)
class TokenPair:
    """What a login or refresh hands to the client."""

    access_token: str
    refresh_token: str
    session_id: str
    expires_in: int
    refresh_expires_in: int

    def as_dict(self) -> dict[str, Any]:
        """The pair as a JSON-ready dict."""
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "session_id": self.session_id,
            "expires_in": self.expires_in,
            "refresh_expires_in": self.refresh_expires_in,
        }


class TokenIssuer:
    """Issues access tokens (``typ: at+jwt``) and refresh tokens (``typ: refresh+jwt``)."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        access_keys: KeyRing | None = None,
        refresh_keys: KeyRing | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings = settings or load_settings()
        self.watches: list[RingWatch] = []
        self.access_keys = access_keys or self._watch(settings, "access")
        self.refresh_keys = refresh_keys or self._watch(settings, "refresh")
        check_disjoint(self.access_keys, self.refresh_keys)
        self._access_key = self.access_keys.signing_key()
        self._refresh_key = self.refresh_keys.signing_key()
        self._allowed = frozenset(settings.app_claims) - RESERVED_CLAIMS
        self.clock = clock

    def access_token(
        self, sub: str, sid: str, claims: Mapping[str, Any] | None = None, *, now: int | None = None
    ) -> str:
        """Sign an access token for ``sub`` in session ``sid`` with allow-listed app ``claims``
        (``InvalidArgument`` for a ``sub`` or ``sid`` that validation would reject, or for a claim
        value that is not JSON)."""
        _check_ids(sub, sid)
        extra = dict(claims or {})
        if extra:
            dump_claims(extra)
        refused = extra.keys() - self._allowed
        if refused:
            raise ClaimNotAllowed(f"claims not in the allow-list: {sorted(refused)}")
        self.poll_keys()
        iat = int(self.clock()) if now is None else now
        payload = extra | {
            "iss": self.settings.issuer,
            "aud": self.settings.audience,
            "sub": sub,
            "sid": sid,
            "jti": new_id(),
            "iat": iat,
            "nbf": iat,
            "exp": iat + self.settings.access_ttl,
        }
        return self._access_key.sign(payload, ACCESS_TYPE)

    def refresh_token(
        self,
        sub: str,
        sid: str,
        *,
        jti: str | None = None,
        exp: int | None = None,
        now: int | None = None,
    ) -> str:
        """Sign a refresh token; ``exp`` defaults to now + ``refresh_ttl``."""
        _check_ids(sub, sid)
        self.poll_keys()
        iat = int(self.clock()) if now is None else now
        payload = {
            "iss": self.settings.issuer,
            "aud": self.settings.audience,
            "sub": sub,
            "sid": sid,
            "jti": jti or new_id(),
            "iat": iat,
            "exp": exp if exp is not None else iat + self.settings.refresh_ttl,
        }
        return self._refresh_key.sign(payload, REFRESH_TYPE)

    def issue(
        self, sub: str, *, sid: str | None = None, claims: Mapping[str, Any] | None = None
    ) -> TokenPair:
        """A new access + refresh pair for ``sub`` (a new session id unless ``sid`` is given);
        ``InvalidArgument`` for a ``sub`` or ``sid`` that validation would reject."""
        sid = sid or new_id()
        _check_ids(sub, sid)  # before any signing
        now = int(self.clock())
        return TokenPair(
            access_token=self.access_token(sub, sid, claims, now=now),
            refresh_token=self.refresh_token(sub, sid, now=now),
            session_id=sid,
            expires_in=self.settings.access_ttl,
            refresh_expires_in=self.settings.refresh_ttl,
        )

    def poll_keys(self) -> bool:
        """Re-read the rings' JWKS files if ``keys_reload_interval`` has passed; True if a
        ring changed."""
        changed = [watch.poll() for watch in self.watches]  # (every one: no short cut)
        return any(changed)

    def reload_keys(self) -> bool:
        """Re-read the rings' JWKS files now; True if a ring changed (a bad file keeps the
        current ring)."""
        changed = [watch.reload() for watch in self.watches]
        return any(changed)

    def _watch(self, settings: Settings, name: str) -> KeyRing:
        source = settings.access_jwks if name == "access" else settings.refresh_jwks
        if source is None:
            raise ConfigError(f"SESSIONSVC_{name.upper()}_JWKS is required to issue tokens")
        watch = RingWatch(
            source.get_secret_value(),
            ring=name,
            interval=settings.keys_reload_interval,
            accept=lambda ring: self._acceptable(name, ring),
        )
        watch.listeners.append(lambda ring: self._use(name, ring))
        self.watches.append(watch)
        return watch.ring

    def _acceptable(self, name: str, ring: KeyRing) -> None:
        """``ConfigError`` unless ``ring`` can sign and shares nothing with the other ring."""
        ring.signing_key()
        other: KeyRing | None = getattr(
            self, "refresh_keys" if name == "access" else "access_keys", None
        )
        if other is not None:
            check_disjoint(*((ring, other) if name == "access" else (other, ring)))

    def _use(self, name: str, ring: KeyRing) -> None:
        if name == "access":
            self.access_keys, self._access_key = ring, ring.signing_key()
        else:
            self.refresh_keys, self._refresh_key = ring, ring.signing_key()
