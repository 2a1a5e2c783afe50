"""The Redis key layout of revocations and sessions, defined once (pure).

Everything else derives its key names from here: ``RevKeys`` (``sessionsvc.revocation.log``)
and ``SessionKeys`` (``sessionsvc.sessions.keys``) on the Python side, and the scripts through
their generated prelude (``sessionsvc._redis.scripts``): the ``{rev}`` keys a script touches
are declared by name in its KEYS, and the session scripts, which learn sids only from a
user's index, derive a session's key from the index key with ``INDEX`` and ``SESSION`` as
the prelude declares them.

- ``<ns>:{rev}:<name>``: the revocation state and log, one hash slot (``REV_APPLY`` are the
  keys of the one apply path, in the order of its KEYS).
- ``<ns>:{u:<tag>}:idx``: a user's index; ``<ns>:{u:<tag>}:s:<sid>``: a session hash;
  ``<ns>:{u:<tag>}:login_fail``: the login attempts on a user name (``LOGIN_FAIL``);
  ``<ns>:{u:<tag>}:fence``: on Redis Cluster, the user's logout-everywhere fence (``FENCE``).
- ``<ns>:{ip:<address>}:login_fail``: the login attempts from one client address (an IPv4
  address, or an IPv6 /64 as ``2001:db8:1:2::/64``; ``ip_prefix``). Nothing else lives under
  ``{ip:…}``.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "FENCE",
    "INDEX",
    "LOGIN_FAIL",
    "REV_APPLY",
    "SESSION",
    "ip_prefix",
    "rev_key",
    "user_prefix",
]

REV_APPLY: Final = ("sid", "jti", "user", "user:until", "all", "kid", "log", "epoch")
"""The ``{rev}`` keys every script that applies revocations for the worker declares, in order."""
INDEX: Final = "idx"
"""The suffix, after the user prefix, of a user's index (zset sid → absolute expiry)."""
SESSION: Final = "s:"
"""What follows the user prefix in a session hash's key, before the sid."""
FENCE: Final = "fence"
"""The suffix, after the user prefix, of a user's fence (Redis Cluster: a logout-everywhere
under way and the latest one's cutoff; ``sessionsvc.sessions.cluster``)."""
LOGIN_FAIL: Final = "login_fail"
"""The suffix, after a user's or a client address's prefix, of its login-attempt counter."""


def rev_key(namespace: str, name: str) -> str:
    """``<namespace>:{rev}:<name>``."""
    return f"{namespace}:{{rev}}:{name}"


def user_prefix(namespace: str, tag: str) -> str:
    """``<namespace>:{u:<tag>}:``, the prefix of every key of the user with this tag."""
    return f"{namespace}:{{u:{tag}}}:"


def ip_prefix(namespace: str, address: str) -> str:
    """``<namespace>:{ip:<address>}:``, the prefix of the keys of one client address."""
    return f"{namespace}:{{ip:{address}}}:"
