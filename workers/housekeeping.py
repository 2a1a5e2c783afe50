"""The worker's periodic chores, every ``--housekeeping`` seconds.

- **Reclaim**: entries idle longer than ``claim_idle`` on any consumer (a dead worker's, or ours
  after a lost reply or failed retries) are claimed (``XAUTOCLAIM``); those delivered more than
  ``max_deliveries`` times become ``apply_failed`` dead letters, the rest are applied again.
- **Prune and trim the log**: ``housekeep.lua`` drops expired revocations and log entries older
  than ``log_retention`` (one worker per period, under a lock), keeping the ``trimmed`` marker.
- **Trim the inbound stream** below every group's oldest unacknowledged entry.
- **Heartbeat** (``<ns>:{rev}:worker:<consumer>``) and the gauges: pending, lag, DLQ size.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis

from sessionsvc.feed_core import Pairs, raw_entries, stream_id
from sessionsvc.sessions_core import Call

from .core import DeadLetter, WorkerCore
from .metrics import WorkerMetrics
from .options import WorkerOptions
from .scripts import ScriptRunner

__all__ = ["Housekeeping"]

Counts = dict[str, int]


def _raw(response: Any, **_options: Any) -> Any:
    return response


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Housekeeping:
    """Runs the chores on ``client``; what to do with reclaimed entries is the caller's."""

    def __init__(
        self,
        client: redis.Redis,
        scripts: ScriptRunner,
        core: WorkerCore,
        options: WorkerOptions,
        metrics: WorkerMetrics,
        *,
        dead_letter: Callable[[list[DeadLetter], Counts], None],
        retry: Callable[[list[tuple[str, Pairs]], Counts], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        client.set_response_callback("XAUTOCLAIM", _raw)  # fields in wire order, duplicates too
        self.scripts = scripts
        self.core = core
        self.options = options
        self.metrics = metrics
        self.dead_letter = dead_letter
        self.retry = retry
        self.clock = clock
        ns = core.settings.namespace
        self.stream, self.dlq = f"{ns}:events", f"{ns}:dlq"

    def run(self) -> None:
        """Reclaim, dead-letter the hopeless, prune, trim, heartbeat, gauges."""
        o, now, keys = self.options, self.clock(), self.core.rev_keys
        self.reclaim()
        script_keys = [*keys.all(), keys.trimmed, keys.key("housekeeping")]
        min_id = f"{int((now - self.core.settings.log_retention) * 1000)}-0"
        lock_ms = str(int(o.housekeeping * 1000))
        args = [f"{now:.6f}", min_id, lock_ms]
        done = self.scripts.run([Call("housekeep", script_keys, args)])[0]
        if isinstance(done, list):
            self.metrics.pruned.inc(int(done[0]))
        self.trim_inbound()
        heartbeat = keys.key(f"worker:{o.consumer}")
        self.client.set(heartbeat, f"{now:.3f}", ex=max(1, int(o.housekeeping * 3)))

    def reclaim(self) -> None:
        """Claim entries idle past ``claim_idle``; dead-letter or retry them."""
        o = self.options
        reply: Any = self.client.xautoclaim(
            self.stream, o.group, o.consumer, int(o.claim_idle * 1000), "0-0", count=o.batch
        )
        claimed = raw_entries([[self.stream, reply[1]]]) if reply and reply[1] else []
        if not claimed:
            return
        self.metrics.claimed.inc(len(claimed))
        pending = self.client.xpending_range(
            self.stream, o.group, claimed[0][0], claimed[-1][0], len(claimed), o.consumer
        )
        counts = {_text(p["message_id"]): int(p["times_delivered"]) for p in pending}
        hopeless = [(i, f) for i, f in claimed if counts.get(i, 1) > o.max_deliveries]
        again = [(i, f) for i, f in claimed if counts.get(i, 1) <= o.max_deliveries]
        if hopeless:
            self.dead_letter(
                [
                    DeadLetter(i, f, "apply_failed", f"failed {counts[i] - 1} deliveries")
                    for i, f in hopeless
                ],
                counts,
            )
        if again:
            self.retry(again, counts)

    def trim_inbound(self) -> None:
        """Trim the inbound stream below every group's oldest unacknowledged entry; gauges."""
        groups: Any = self.client.xinfo_groups(self.stream)
        floor: tuple[int, int] | None = None
        for g in groups:
            candidates = [g["last-delivered-id"]]
            if int(g["pending"]):
                summary: Any = self.client.xpending(self.stream, g["name"])
                if summary["min"] is not None:  # acknowledged meanwhile (another thread/worker)
                    candidates.append(summary["min"])
            for cid in candidates:
                key = stream_id(cid)
                floor = key if floor is None or key < floor else floor
            if _text(g["name"]) == self.options.group:
                self.metrics.pending.set(int(g["pending"]))
                self.metrics.lag.set(int(g.get("lag") or 0))
        if floor is not None:  # everything below every group's floor is acknowledged by all
            self.client.xtrim(self.stream, minid=f"{floor[0]}-{floor[1]}")
        self.metrics.dlq_size.set(int(self.client.xlen(self.dlq)))
