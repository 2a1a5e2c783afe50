"""Live sign-out: which open connections a revocation ends (pure).

A long-lived connection (a WebSocket, a server-sent event stream) was authenticated once; a
revocation that arrives later must end it, not wait for its next request. ``LiveRegistry``
holds the open connections by session and by user; ``ended_by(revocation)`` answers the
callbacks to call: a ``session`` revocation ends that session's connections, ``user`` (and
``all``) those whose token was issued before its cutoff, ``token`` the one of that ``jti``.
The registry is fed by ``Validator.add_listener`` (the feed's thread or task); adapters turn a
callback into closing their connection on its own event loop. ``sse_event`` writes one
server-sent event (the stream's ``event: revoked`` included).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from itertools import count
from typing import Any

from sessionsvc.revocation.view import Revocation, RevocationView

__all__ = ["LiveRegistry", "Watch", "sse_event"]

Callback = Callable[[str], None]  # called with the reason ("session revoked", …)


class Watch:
    """One watched connection; ``close()`` stops watching it (idempotent)."""

    __slots__ = ("_registry", "claims", "key", "on_revoked")

    def __init__(
        self, registry: LiveRegistry, key: int, claims: Mapping[str, Any], on_revoked: Callback
    ) -> None:
        self._registry, self.key, self.claims, self.on_revoked = registry, key, claims, on_revoked

    def close(self) -> None:
        """Stop watching."""
        self._registry._watches.pop(self.key, None)

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LiveRegistry:
    """Open connections, by the claims of the token that opened them. ``view``: the validator's
    revocation view, to end at once a connection whose session was revoked between its
    token's validation and ``watch()`` (the listener had already been called)."""

    def __init__(self, view: RevocationView | None = None) -> None:
        self._watches: dict[int, Watch] = {}
        self._ids = count()
        self._view = view

    def __len__(self) -> int:
        return len(self._watches)

    def watch(self, claims: Mapping[str, Any], on_revoked: Callback) -> Watch:
        """Watch a connection opened with a token of ``claims`` (``sub``, ``sid``, ``jti``,
        ``iat``); ``on_revoked(reason)`` is called once when a revocation ends it."""
        key = next(self._ids)
        watch = Watch(self, key, claims, on_revoked)
        self._watches[key] = watch
        kind = None if self._view is None else _revoked_now(self._view, claims)
        if kind is not None and self._watches.pop(key, None) is not None:
            on_revoked(_REASONS[kind])  # (revoked before the watch began: the listener missed it)
        return watch

    def ended_by(self, revocation: Revocation) -> Iterator[tuple[Watch, str]]:
        """The watched connections ``revocation`` ends, with the reason."""
        for watch in list(self._watches.values()):
            reason = _reason(watch.claims, revocation)
            if reason is not None:
                yield watch, reason

    def revoked(self, revocation: Revocation) -> None:
        """The listener: end (and stop watching) every connection ``revocation`` ends; a
        failing callback does not keep the others from being called."""
        errors: list[Exception] = []
        for watch, reason in self.ended_by(revocation):
            watch.close()
            try:
                watch.on_revoked(reason)
            except Exception as exc:  # (the feed counts listener errors: raise the first)
                errors.append(exc)
        if errors:
            raise errors[0]


_REASONS: dict[str, str] = {
    "session": "session revoked",
    "token": "token revoked",
    "user": "user signed out everywhere",
    "all": "every session revoked",
    "key": "signing key revoked",
}


def _revoked_now(view: RevocationView, claims: Mapping[str, Any]) -> str | None:
    # (a principal's claims carry no kid: a key revocation is judged at validation)
    sid, jti, sub = (str(claims.get(name, "")) for name in ("sid", "jti", "sub"))
    return view.check(sid, jti, sub, int(claims.get("iat", 0)), "")


def _reason(claims: Mapping[str, Any], rev: Revocation) -> str | None:
    kind, value = rev.kind, rev.value
    if kind == "session" and claims.get("sid") == value:
        return "session revoked"
    if kind == "token" and claims.get("jti") == value:
        return "token revoked"
    issued = claims.get("iat", 0)
    if kind == "user" and claims.get("sub") == value and issued < rev.before:
        return "user signed out everywhere"
    if kind == "all" and issued < rev.before:
        return "every session revoked"
    return None


def sse_event(name: str | None, data: Any) -> str:
    """One server-sent event: ``data`` (a string, else JSON) line by line, after ``event:``."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    lines = "".join(f"data: {line}\n" for line in text.split("\n"))
    return (f"event: {name}\n" if name else "") + lines + "\n"
