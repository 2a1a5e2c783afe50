"""Validators on replicas: ``SESSIONSVC_READ_FROM_REPLICAS`` and its companions, judged (no I/O).

With ``SESSIONSVC_READ_FROM_REPLICAS=true`` a validator's feed (its snapshot, position checks and
the ``XREAD`` tail of the revocation log) reads from a replica instead of the primary:

- on Sentinel (``SESSIONSVC_REDIS_SENTINELS``): a replica the sentinels name (``slave_for``);
- on Redis Cluster (``SESSIONSVC_REDIS_CLUSTER``): a replica of the ``{rev}`` slot (``READONLY``);
- on one Redis: the replica at ``SESSIONSVC_REDIS_REPLICA_URL`` (user, password and TLS as there).

A replica may lag, so there freshness comes from the worker's ticks (``SESSIONSVC_TICK_INTERVAL``):
entries in the log whose ids carry Redis' clock.

Invariants (``ValueError`` naming the variables, never quoting a value):

- On one Redis, reading from replicas needs ``SESSIONSVC_REDIS_REPLICA_URL``; with Sentinel or
  Cluster that URL is refused (the topology names the replicas), as is the URL without the flag.
- The replica URL has the scheme of ``SESSIONSVC_REDIS_URL`` (the TLS settings serve both) and
  passes the same check.
- Ticks are on (``SESSIONSVC_TICK_INTERVAL`` > 0) and at most half ``SESSIONSVC_MAX_STALENESS``:
  a validator on a replica is fresh only up to its newest tick.
"""

from __future__ import annotations

from typing import Final

from sessionsvc.config.redis_url import SCHEMES, check_redis_url

__all__ = ["REPLICA_VARIABLES", "check_replica_settings"]

REPLICA_VARIABLES: Final = {
    "read": "SESSIONSVC_READ_FROM_REPLICAS",
    "url": "SESSIONSVC_REDIS_REPLICA_URL",
    "tick": "SESSIONSVC_TICK_INTERVAL",
}


def _scheme(url: str) -> str:
    return next((s for s in SCHEMES if url.startswith(s)), "")


def check_replica_settings(
    read_from_replicas: bool,
    replica_url: str | None,
    *,
    redis_url: str,
    cluster: bool,
    sentinel: bool,
    tick_interval: float,
    max_staleness: float,
) -> None:
    """Refuse the combinations of the module invariants (``ValueError``)."""
    names = REPLICA_VARIABLES
    if replica_url is not None and not read_from_replicas:
        raise ValueError(f"{names['url']} is set but {names['read']} is not true")
    if not read_from_replicas:
        return
    if cluster or sentinel:
        if replica_url is not None:
            topology = "SESSIONSVC_REDIS_CLUSTER" if cluster else "SESSIONSVC_REDIS_SENTINELS"
            raise ValueError(
                f"{names['url']} is not used with {topology}: the replicas are found there "
                f"(leave {names['url']} unset)"
            )
    elif replica_url is None:
        raise ValueError(
            f"{names['read']}=true on one Redis needs {names['url']} (the replica's URL), or "
            "Sentinel or Cluster settings, whose replicas are found by themselves"
        )
    else:
        check_redis_url(replica_url)  # ValueError: never quotes it
        if _scheme(replica_url) != _scheme(redis_url):
            raise ValueError(
                f"{names['url']} must use the scheme of SESSIONSVC_REDIS_URL (the TLS settings "
                "serve both)"
            )
    if tick_interval <= 0:
        raise ValueError(
            f"{names['read']}=true needs the worker's ticks ({names['tick']} > 0): an empty read "
            "from a replica proves nothing"
        )
    if tick_interval * 2 > max_staleness:
        raise ValueError(
            f"{names['tick']}={tick_interval:g} must be at most half of "
            f"SESSIONSVC_MAX_STALENESS={max_staleness:g} with {names['read']}=true (a validator "
            "on a replica is fresh only up to its newest tick)"
        )
