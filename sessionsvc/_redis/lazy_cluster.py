"""``LazyRedisCluster``: redis-py's sync cluster client, connecting on first use.

``redis.Redis`` connects when a command needs a connection; ``redis.cluster.RedisCluster``
reads the slot map (and sends ``COMMAND``) when it is built, so a ``SessionService`` or a
``Publisher`` built while no node of the cluster answers would fail to be built at all, and an
app would not start while its Redis is away. ``LazyRedisCluster`` keeps the arguments and builds
itself on the first attribute it lacks (the first command): until a node answers, each
operation fails as ``StoreUnavailable`` (the boundary maps the cluster client's error), as on
one Redis. Once built it is a plain ``RedisCluster``: present attributes never come through
``__getattr__``, so a command costs nothing more.

Invariant: a missing attribute is only ever looked up under the lock, so a thread that meets an
object another thread is still building waits for it (the attributes already present are
whole objects).
"""

from __future__ import annotations

import threading
from typing import Any

import redis.cluster

__all__ = ["LazyRedisCluster"]


class LazyRedisCluster(redis.cluster.RedisCluster):
    """A ``RedisCluster`` that reads the slot map on first use, not when built."""

    def __init__(self, **kwargs: Any) -> None:  # (from_url passes url=…: every argument named)
        self.__dict__["_lazy_kwargs"] = kwargs
        self.__dict__["_lazy_lock"] = threading.RLock()
        self.__dict__["_lazy_built"] = False

    def __getattr__(self, name: str) -> Any:
        if name.startswith(("_lazy", "__")):
            raise AttributeError(name)
        with self._lazy_lock:
            if not self._lazy_built:
                super().__init__(**self._lazy_kwargs)  # a failure: built again next time
                self.__dict__["_lazy_built"] = True
        return object.__getattribute__(self, name)

    @property
    def built(self) -> bool:
        """Whether the client has read its slot map (a node answered once)."""
        return bool(self.__dict__["_lazy_built"])

    def close(self) -> None:
        """Close the client's connections (none yet if it was never used)."""
        if self.built:
            super().close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} built={self.built}>"
