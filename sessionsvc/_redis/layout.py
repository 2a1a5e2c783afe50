"""The Redis key layout of revocations and sessions, defined once (pure).

Everything else derives its key names from here: ``RevKeys`` (``sessionsvc.revocation.log``)
and ``SessionKeys`` (``sessionsvc.sessions.keys``) on the Python side, and the scripts through
their generated prelude (``sessionsvc._redis.scripts``): the ``{rev}`` keys a script touches
are declared by name in its KEYS, and the session scripts, which learn sids only from a
user's index, derive a session's key from the index key with ``INDEX`` and ``SESSION`` as
the prelude declares them.

- ``<ns>:{rev}:<name>``: the revocation state and log, one hash slot (``REV_APPLY`` are the
  keys of the one apply path, in the order of its KEYS).
- ``<ns>:{u:<tag>}:idx``: a user's index; ``<ns>:{u:<tag>}:s:<sid>``: a session hash.
"""

from __future__ import annotations

from typing import Final

__all__ = ["INDEX", "REV_APPLY", "SESSION", "rev_key", "user_prefix"]

REV_APPLY: Final = ("sid", "jti", "user", "user:until", "all", "kid", "log", "epoch")
"""The ``{rev}`` keys every script that applies revocations for the worker declares, in order."""
INDEX: Final = "idx"
"""The suffix, after the user prefix, of a user's index (zset sid → absolute expiry)."""
SESSION: Final = "s:"
"""What follows the user prefix in a session hash's key, before the sid."""


def rev_key(namespace: str, name: str) -> str:
    """``<namespace>:{rev}:<name>``."""
    return f"{namespace}:{{rev}}:{name}"


def user_prefix(namespace: str, tag: str) -> str:
    """``<namespace>:{u:<tag>}:``, the prefix of every key of the user with this tag."""
    return f"{namespace}:{{u:{tag}}}:"
