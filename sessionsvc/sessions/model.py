"""Sessions: the scripts, the call protocol and the session record (pure).

``SCRIPTS`` maps each operation to its Lua text: ``apply.lua`` (the one apply path) +
``session.lua`` + the ``{rev}`` keys it declares (``REV_KEYS``, via ``rev_prelude``) + the
operation's own file. ``SCRIPT_SHAS`` are their SHA-1s, computed once at import (what EVALSHA
sends). A ``Call`` is one script invocation; ``SessionInfo`` is a session as reported.
"""

from __future__ import annotations

import hashlib
from collections.abc import Generator, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final, TypeVar

from sessionsvc._redis.lua import rev_prelude, source

__all__ = ["REV_KEYS", "SCRIPTS", "SCRIPT_SHAS", "Call", "Op", "SessionInfo", "text"]

T = TypeVar("T")
# the {rev} keys each session script touches (declared in KEYS, in this order)
REV_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "login": ("user", "all", "sid", "log", "epoch"),
    "refresh": ("sid", "jti", "user", "all", "kid", "log", "epoch"),
    "logout": ("sid", "log", "epoch"),
    "logout_all": ("user", "user:until", "log", "epoch"),
    "list": (),
    "get": (),
}
SCRIPTS: Final = {
    name: source("apply", "session") + rev_prelude(rev) + source(name)
    for name, rev in REV_KEYS.items()
}
SCRIPT_SHAS: Final = {
    name: hashlib.sha1(body.encode()).hexdigest()  # noqa: S324 (Redis' id)
    for name, body in SCRIPTS.items()
}


@dataclass(frozen=True, slots=True)
class Call:
    """One script invocation: the name of a ``SCRIPTS`` entry, its KEYS and its ARGV."""

    script: str
    keys: list[str]
    args: list[str]

    @property
    def sha(self) -> str:
        """The script's SHA-1 (what EVALSHA sends)."""
        return SCRIPT_SHAS[self.script]

    @property
    def source(self) -> str:
        """The script's text (loaded on NOSCRIPT)."""
        return SCRIPTS[self.script]


Op = Generator[Call, Any, T]


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A live session as ``list_sessions``/``get_session`` report it (times in epoch seconds)."""

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

    @classmethod
    def from_hash(cls, flat: Sequence[bytes | str]) -> SessionInfo:
        """Decode a session hash as HGETALL returns it from a script (flat field/value list)."""
        h = {text(flat[i]): text(flat[i + 1]) for i in range(0, len(flat) - 1, 2)}
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
        )

    def as_dict(self) -> dict[str, Any]:
        """The session as a JSON-ready dict."""
        return asdict(self)


def text(value: bytes | str) -> str:
    """A reply element as ``str`` (clients may or may not decode responses)."""
    return value.decode("utf-8") if isinstance(value, bytes) else value
