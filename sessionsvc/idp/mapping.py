"""Who an identity provider's subject is here (pure, no I/O).

A ``UserMapper`` takes the issuer and the subject an identity provider named (``Subject``: the
``sub`` of a logout token, the ``sub_id`` of a security event) and answers the local ``sub``, or
``None`` when there is no local user for it (the event is then acknowledged and counted as
``no_local_user``, never an error). ``default_user`` is the identity: the provider's ``sub`` is
ours. An app whose users differ passes its own (``Worker(..., idp_user=…)``, or
``sessionsvc worker --idp-user-mapper module:function``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TypeAlias

from sessionsvc.errors import ConfigError
from sessionsvc.idp.model import Subject

__all__ = ["UserMapper", "default_user", "load_mapper"]

UserMapper: TypeAlias = Callable[[str, Subject], str | None]


def default_user(issuer: str, subject: Subject) -> str | None:
    """The provider's ``sub`` is the local one: an ``opaque`` id, an ``iss_sub`` of this
    issuer, the ``user`` of a ``complex`` subject. An ``email`` (or an ``iss_sub`` of another
    issuer) names no local user without an app's mapper."""
    if subject.sub is None:
        return None
    if subject.iss is not None and subject.iss != issuer:
        return None
    return subject.sub


def load_mapper(path: str) -> UserMapper:
    """The mapper ``module:function`` names (``ConfigError`` if it is not a callable)."""
    module, _, name = path.partition(":")
    if not module or not name:
        raise ConfigError(f"idp user mapper {path!r}: give it as module:function")
    try:
        found = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"idp user mapper {path!r}: {type(exc).__name__}") from None
    if not callable(found):
        raise ConfigError(f"idp user mapper {path!r} is not callable")
    mapper: UserMapper = found
    return mapper
