"""Redis Sentinel settings: the sentinels' addresses and the monitored service, judged (no I/O).

``SESSIONSVC_REDIS_SENTINELS=host:port,host:port`` names the sentinels, ``SESSIONSVC_REDIS_SERVICE``
the name they monitor the primary under (``sentinel monitor <name> …``). The data nodes' user,
password, database and TLS still come from ``SESSIONSVC_REDIS_URL``; its host and port are not
used (the sentinels name the primary). Sentinels that demand a password of their own get
``SESSIONSVC_REDIS_SENTINEL_USERNAME``/``SESSIONSVC_REDIS_SENTINEL_PASSWORD``.

Invariants:

- Every entry is ``host:port`` (an IPv6 host in brackets), the port 1-65535, no entry twice.
- Sentinels without a service name, a service name without sentinels, Sentinel together with
  ``SESSIONSVC_REDIS_CLUSTER`` and Sentinel with a ``unix://`` URL are refused: each would
  silently do something other than what was written. Messages name the variable, never a value.
"""

from __future__ import annotations

import re
from typing import Any, Final

__all__ = [
    "SENTINEL_VARIABLES",
    "check_sentinel_settings",
    "check_sentinels",
    "parse_sentinels",
    "sentinel_address",
]

SENTINEL_VARIABLES: Final = {
    "sentinels": "SESSIONSVC_REDIS_SENTINELS",
    "service": "SESSIONSVC_REDIS_SERVICE",
}
_ENTRY: Final = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>[0-9]{1,5})")
_FORMAT: Final = "a comma-separated list of host:port (an IPv6 host in brackets)"


def parse_sentinels(value: Any) -> Any:
    """The environment's comma-separated text as a tuple of trimmed entries (empty: none);
    a list or tuple passes unchanged (checked by ``sentinel_address`` later)."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def sentinel_address(entry: str) -> tuple[str, int]:
    """``host:port`` as (host, port); ``ValueError`` (never quoting ``entry``) otherwise."""
    match = _ENTRY.fullmatch(entry)
    if match is None or not 0 < int(match["port"]) < 65536:
        raise ValueError(f"must be {_FORMAT}")
    return match["host"].strip("[]"), int(match["port"])


def check_sentinels(entries: tuple[str, ...]) -> tuple[str, ...]:
    """Every entry a valid address, none twice (``ValueError``)."""
    addresses = [sentinel_address(entry) for entry in entries]
    if len(set(addresses)) != len(addresses):
        raise ValueError("names a sentinel twice")
    return entries


def check_sentinel_settings(
    sentinels: tuple[str, ...], service: str | None, cluster: bool, url: str
) -> None:
    """Refuse the combinations of the module invariants (``ValueError`` naming the variables)."""
    names = SENTINEL_VARIABLES
    if service is not None and not sentinels:
        raise ValueError(f"{names['service']} is set but {names['sentinels']} is not")
    if not sentinels:
        return
    if service is None:
        raise ValueError(
            f"{names['service']} is required with {names['sentinels']} (the name the sentinels "
            "monitor the primary under)"
        )
    if cluster:
        raise ValueError(
            f"{names['sentinels']} and SESSIONSVC_REDIS_CLUSTER=true exclude each other: "
            "Sentinel manages one primary, a Redis Cluster its own failovers"
        )
    if url.startswith("unix://"):
        raise ValueError(
            f"{names['sentinels']} needs a redis:// or rediss:// SESSIONSVC_REDIS_URL (it carries "
            "the data nodes' user, password, database and TLS; the sentinels name the host)"
        )
