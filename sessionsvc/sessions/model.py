"""Sessions: the call protocol and the session record (pure).

The session scripts are entries of the one script registry (``sessionsvc._redis.scripts``),
which owns their text, SHA-1 and the names of their KEYS and ARGV; ``REV_KEYS`` (name → the
``{rev}`` keys it declares) is a view of those entries for the session scripts. A ``Call`` is one
script invocation (defined by the registry); ``SessionInfo`` is a session as reported.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final, TypeVar

from sessionsvc._redis.run import Effect
from sessionsvc._redis.scripts import SCRIPTS as REGISTRY
from sessionsvc._redis.scripts import Call
from sessionsvc.encoding import as_text

__all__ = ["REV_KEYS", "SESSION_SCRIPTS", "Call", "Op", "SessionInfo"]

T = TypeVar("T")
SESSION_SCRIPTS: Final = ("login", "refresh", "logout", "logout_all", "list", "get", "login_idp")
REV_KEYS: Final = {name: REGISTRY[name].rev for name in SESSION_SCRIPTS}


Op = Generator[Effect, Any, T]
"""An op: mostly one ``Call``; the durability levels add ``Command``/``Replicated`` effects."""


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A live session as ``list_sessions``/``get_session`` report it (times in epoch seconds);
    ``idp_issuer``/``idp_sid``: the identity provider's session the login recorded, if any."""

    session_id: str
    sub: str
    created: float
    last_seen: float
    expires_at: float
    idle_expires_at: float
    absolute_expires_at: float
    ip: str | None
    user_agent: str | None
    device: str | None
    idp_issuer: str | None = None
    idp_sid: str | None = None

    @classmethod
    def from_hash(cls, flat: Sequence[bytes | str]) -> SessionInfo:
        """Decode a session hash as HGETALL returns it from a script (flat field/value list)."""
        h = {as_text(flat[i]): as_text(flat[i + 1]) for i in range(0, len(flat) - 1, 2)}
        idle, absolute = float(h["idle_exp"]), float(h["abs_exp"])
        return cls(
            h["sid"],
            h["sub"],
            float(h["created"]),
            float(h["last_seen"]),
            min(idle, absolute),
            idle,
            absolute,
            h.get("ip") or None,
            h.get("ua") or None,
            h.get("device") or None,
            h.get("idp_iss") or None,  # (hashes written before IdP sessions lack both)
            h.get("idp_sid") or None,
        )

    def as_dict(self) -> dict[str, Any]:
        """The session as a JSON-ready dict."""
        return asdict(self)
