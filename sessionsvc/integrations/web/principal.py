"""Who a request is (``Principal``) and what a route requires of it (``Requirement``) (pure).

Scopes come from the ``scope`` claim (a space-separated string, RFC 9068 §2.2.3, or a list);
a required claim is present when the token has it (and, given a value, when it equals it or,
for a list claim such as ``roles``, contains it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sessionsvc.integrations.web.statuses import insufficient
from sessionsvc.integrations.web.transport import Transport

__all__ = ["Principal", "Requirement"]


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated request: ``sub``, ``sid``, the read-only ``claims``, the transport."""

    sub: str
    sid: str
    claims: Mapping[str, Any]
    transport: Transport

    @property
    def scopes(self) -> frozenset[str]:
        """The token's scopes."""
        return _scopes(self.claims.get("scope"))


@dataclass(frozen=True, slots=True)
class Requirement:
    """What a route requires: every scope in ``scopes``; every claim in ``claims`` (a name, or a
    name → value that must match)."""

    scopes: tuple[str, ...] = ()
    claims: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, scopes: tuple[str, ...] | list[str] | str = (), claims: Any = ()) -> Requirement:
        """From ``scopes`` (a list or a space-separated string) and ``claims`` (names, or a
        mapping of name → required value)."""
        names = tuple(scopes.split()) if isinstance(scopes, str) else tuple(scopes)
        wanted = dict(claims) if isinstance(claims, Mapping) else dict.fromkeys(claims, ...)
        return cls(names, wanted)

    def check(self, principal: Principal) -> None:
        """``Problem(403)`` unless ``principal`` meets this requirement."""
        missing = [s for s in self.scopes if s not in principal.scopes]
        if missing:
            raise insufficient(missing)
        for name, value in self.claims.items():
            if not _has(principal.claims, name, value):
                raise insufficient((), f"claim {name}")


def _scopes(value: object) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list | tuple):
        return frozenset(v for v in value if isinstance(v, str))
    return frozenset()


def _has(claims: Mapping[str, Any], name: str, value: Any) -> bool:
    if name not in claims:
        return False
    if value is ...:
        return True
    actual = claims[name]
    if isinstance(actual, list | tuple) and not isinstance(value, list | tuple):
        return value in actual
    return bool(actual == value)
