"""``WorkerOptions``: the worker process's own knobs (the shared ones come from ``Settings``)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

__all__ = ["WorkerOptions"]


@dataclass
class WorkerOptions:
    """Process-level knobs (the shared ones come from ``Settings``)."""

    consumer: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    group: str = "workers"
    batch: int = 500
    block: float = 1.0
    claim_idle: float = 30.0
    max_deliveries: int = 5
    housekeeping: float = 5.0
    heartbeat: float = 1.0
    """Seconds between heartbeats and checks for dead consumers; a consumer whose heartbeat is
    older than three of these (or that has none) is dead: its pending entries are claimed."""
    publisher_rate: float = 1000.0
    """Events per second this worker reads from each publisher's intake (0: no limit); beyond,
    that intake waits (``workers.throttle``)."""
    dlq_max_len: int = 100_000
    """The dead-letter stream keeps about this many letters, the newest (bounded copies: at most
    ~4.5 KB each); older ones are trimmed, counted and logged."""
    max_silence: float = 30.0
    """A loop or chore that has not succeeded for this long (Redis answering) fails liveness."""

    @property
    def heartbeat_ttl(self) -> float:
        """Seconds a heartbeat lives: three beats."""
        return 3 * self.heartbeat
