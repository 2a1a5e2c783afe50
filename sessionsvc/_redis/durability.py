"""Durability levels (pure): what an acknowledged revocation survives, and how it is confirmed.

``SESSIONSVC_DURABILITY`` (``docs/operations.md``, "Durability"):

- ``none``: nothing is checked or waited for; Redis' own persistence decides. The cores yield
  their one call as always (``Durable.of`` is ``None``: no cost at all on the hot path).
- ``aof``: before its first write, a core reads ``INFO persistence`` and refuses to go on
  (``ConfigError`` naming the setting) unless ``aof_enabled:1``. On Redis Cluster that is the
  ``INFO`` of the primary serving ``{rev}`` (``Replicated``'s routing: the barrier key's slot),
  not of whichever node the client picks; ``verify(key)`` checks another slot's primary. With
  ``appendfsync everysec`` a primary crash (power, kernel) loses up to about a second of
  acknowledged writes; a crash of the redis-server process alone loses none (the OS holds what
  was written). ``WAITAOF`` (Redis 7.2+) would bound that second too; it is not used (Redis 7.0
  is supported).
- ``replica``: a revocation's call goes in one pipeline on one connection with a barrier write
  and ``WAIT 1 <timeout>`` (``Replicated``): the script, then ``SET <ns>:{rev}:durable``, then
  ``WAIT``. ``WAIT`` confirms the connection's own last write: the barrier makes that write
  this one even when the script changed nothing (a retry of a revocation already in force, which
  another connection wrote), so a confirmed ``WAIT`` always covers the state the caller is told
  about. Fewer than one replica in time: ``RevocationNotDurable`` (applied on the primary, not
  acknowledged; a retry is safe: the scripts are idempotent). On Redis Cluster the three go on
  one connection to the primary serving the effect's first key (``sessionsvc._redis.pinned``):
  ``{rev}`` for an apply, the intake's slot for a publisher's ``XADD`` (whose barrier is left
  out: an ``XADD`` always writes, ``applied(writes=True)``), so ``WAIT`` counts the replicas of
  the primary that took the revocation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final, Literal, get_args

from sessionsvc._redis import layout
from sessionsvc._redis.run import Call, Command, Op, Replicated
from sessionsvc.config import Settings
from sessionsvc.encoding import as_text
from sessionsvc.errors import ConfigError, RevocationNotDurable

__all__ = ["BARRIER", "LEVELS", "Durable", "Level", "aof_enabled", "check_aof"]

Level = Literal["none", "aof", "replica"]
LEVELS: Final[tuple[str, ...]] = get_args(Level)
BARRIER: Final = "durable"
"""The ``{rev}`` key of the barrier write (``<ns>:{rev}:durable``: a constant, expiring)."""
BARRIER_TTL_MS: Final = 60_000
REPLICAS: Final = 1
INFO_PERSISTENCE: Final = ("INFO", "persistence")


def aof_enabled(info: Mapping[str, Any] | bytes | str) -> bool:
    """Does an ``INFO persistence`` reply (parsed by redis-py, or raw text) say AOF is on?"""
    if isinstance(info, Mapping):
        return str(info.get("aof_enabled", "0")) == "1"
    lines = as_text(info).splitlines()
    return any(line.strip() == "aof_enabled:1" for line in lines)


def check_aof(info: Mapping[str, Any] | bytes | str) -> None:
    """``ConfigError`` unless ``info`` (``INFO persistence``) says AOF is on."""
    if not aof_enabled(info):
        raise ConfigError(
            "SESSIONSVC_DURABILITY=aof: the Redis server has AOF off (INFO persistence: "
            "aof_enabled is not 1); turn it on (appendonly yes, appendfsync everysec) or choose "
            "another SESSIONSVC_DURABILITY (replica, or none to accept losing revocations)"
        )


class Durable:
    """The confirmations of the ``aof`` or ``replica`` level, for the cores' ops.

    ``applied(effect)`` runs a revocation's effect (a script call, or an intake's ``XADD``)
    confirmed as the level says and returns its reply; ``written(effect)`` runs a write that
    acknowledges no revocation (a login) with the ``aof`` check only."""

    __slots__ = ("_barrier", "_checked", "_tail", "level", "timeout")

    def __init__(self, level: Level, namespace: str, timeout: float) -> None:
        if level == "none":
            raise ValueError("Durable is for the aof and replica levels (none: Durable.of)")
        self.level, self.timeout = level, timeout
        self._checked = level != "aof"
        self._barrier = layout.rev_key(namespace, BARRIER)  # (on a cluster: {rev}'s primary)
        barrier = ("SET", self._barrier, "1", "PX", BARRIER_TTL_MS)
        wait = ("WAIT", REPLICAS, max(1, math.ceil(timeout * 1000)))
        self._tail = (barrier, wait) if level == "replica" else ()

    @classmethod
    def of(cls, settings: Settings) -> Durable | None:
        """The confirmations ``settings`` ask for; ``None`` at ``none`` (the plain path)."""
        if settings.durability == "none":
            return None
        return cls(settings.durability, settings.namespace, settings.durability_timeout)

    def applied(
        self, effect: Call | Command, what: str = "the revocation", *, writes: bool = False
    ) -> Op[Any]:
        """Run ``effect`` (a revocation); its reply once the level holds for it, else
        ``RevocationNotDurable`` (``what`` names it in the message). ``writes``: the effect
        always writes (an ``XADD``), so no barrier is needed (a publisher may not write one)."""
        if not self._checked:
            yield from self.verify()
        if not self._tail:
            return (yield effect)
        replies = yield Replicated(effect, self._tail[-1:] if writes else self._tail)
        return self.confirmed(replies, what)

    def written(self, effect: Call | Command) -> Op[Any]:
        """Run ``effect`` (a write that acknowledges no revocation); the ``aof`` check first."""
        if not self._checked:
            yield from self.verify()
        return (yield effect)

    def verify(self, key: str | None = None) -> Op[None]:
        """``INFO persistence``: ``ConfigError`` unless AOF is on (once; the ``aof`` level). On
        Redis Cluster the ``INFO`` of the primary serving ``key``'s slot (default: ``{rev}``)."""
        replies = yield Replicated(Command(INFO_PERSISTENCE), (), key=key or self._barrier)
        check_aof(replies[0])
        self._checked = True

    def confirmed(self, replies: list[Any], what: str = "the revocation") -> Any:
        """The first reply of a ``Replicated`` (the revocation's) if its ``WAIT`` (the last)
        counted enough replicas, else ``RevocationNotDurable``."""
        acks = int(replies[-1])
        if acks < REPLICAS:
            raise RevocationNotDurable(what, acks, REPLICAS, self.timeout)
        return replies[0]

    @property
    def barrier(self) -> str:
        """The barrier's key (``<ns>:{rev}:durable``): on a cluster, its slot's primary is
        where the revocations are applied, confirmed and checked."""
        return self._barrier

    @property
    def tail(self) -> tuple[tuple[Any, ...], ...]:
        """The commands that follow a revocation on its connection (barrier, ``WAIT``)."""
        return self._tail
