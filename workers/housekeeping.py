"""The worker's chores, run by its reader thread between reads.

Every ``heartbeat`` seconds (1 s):

- **Heartbeat** ``<ns>:{rev}:worker:<consumer>``, expiring after three beats, written by a
  thread of its own (``Worker``) as long as the reader loop has turned within ``BEAT_GRACE``
  seconds (a busy loop, a slow apply, a Redis stall do not make a live worker look dead; a hung
  one stops beating). A worker writes its first one before its first read, so a starting
  worker is never taken for dead.
- **Failover**: a consumer of any intake that holds pending entries and has no live heartbeat is
  dead; its entries are claimed at once (applying is idempotent: an early claim costs only
  repeated work). Entries delivered ``max_deliveries`` times already are dead-lettered
  (``apply_failed``) instead: an entry that crashes whoever reads it (the kernel's OOM killer
  raises nothing) is counted by ``XPENDING``, not by the crashing process.

Every ``tick_interval`` seconds (``SESSIONSVC_TICK_INTERVAL``, 1 s; 0: never):

- **Tick**: a ``kind tick`` entry in the revocation log (and the epoch if there is none yet,
  ``sessionsvc.revocation.ticks``): validators reading a replica are fresh up to the newest one
  they have read. It fails on its own: a full Redis refuses it, the other chores still run.

Every ``housekeeping`` seconds (5 s):

- **Reclaim** entries idle longer than ``claim_idle`` on any consumer (a lost reply, failed
  retries), the same way.
- **Prune and trim the log**: ``housekeep.lua`` drops expired revocations and log entries older
  than ``log_retention`` (one worker per period, under a lock), keeping the ``trimmed`` marker.
- **Trim the intakes** below every group's oldest unacknowledged entry, and the dead-letter
  stream to its newest ``dlq_max_len`` letters (counted, logged); the gauges.
- **Inbound lag**: the age of the oldest inbound event not yet applied, as the gauge and in
  ``<ns>:{rev}:inbound`` (``<reported at> <oldest event time or ->``) for validators.
- **Forget dead consumers** that hold nothing any more (``forget.lua``: ``XGROUP DELCONSUMER``
  only if the consumer holds no pending entry at that moment).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from typing import Any

import structlog

from sessionsvc._redis.scripts import SCRIPTS
from sessionsvc.encoding import as_text
from sessionsvc.revocation.replies import stream_id
from sessionsvc.revocation.ticks import tick_commands

from .core import WorkerCore
from .health import HealthState
from .metrics import WorkerMetrics
from .options import WorkerOptions
from .reader import IntakeReader, unreachable
from .scripts import ScriptRunner

__all__ = ["BEAT_GRACE", "Housekeeping", "Recover"]

BEAT_GRACE = 10.0
"""Seconds the reader loop may go without turning before this worker stops beating."""

log = structlog.get_logger("workers.housekeeping")

Recover = Callable[[str, list[tuple[str, int]], int, str], None]
"""``recover(stream, [(entry id, deliveries)], min_idle_ms, reason)``: claim and apply, or
dead-letter the hopeless (the worker's)."""


@dataclass(eq=False)
class Housekeeping:
    """The chores of one worker; ``tick()`` runs what is due."""

    reader: IntakeReader
    scripts: ScriptRunner
    core: WorkerCore
    options: WorkerOptions
    metrics: WorkerMetrics
    _: KW_ONLY
    health: HealthState
    recover: Recover
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self.client = self.reader.client
        self.intakes = self.core.intakes
        keys = self.core.rev_keys
        self.heartbeat_key = keys.key(f"worker:{self.options.consumer}")
        self.inbound_key = keys.key("inbound")
        self._next_beat = self._next_slow = self._next_tick = 0.0
        self._own_recovered = False

    def start(self) -> None:
        """Before a read after (re)connecting: the heartbeat; before the process's first read
        also our own pending entries (a restart under the same name: claimed and applied, or
        dead-lettered by their delivery count). Not after a reconnect: the entries then pending
        on us are in hand, and claiming them again would burn their deliveries."""
        self.heartbeat()
        if self._own_recovered:
            return
        for stream in self.intakes.streams:
            self._recover_all(stream, self.options.consumer, "own", 0)
        self._own_recovered = True

    def tick(self) -> None:
        """Run the chores that are due; a failure is reported to ``health``, never raised."""
        now, interval = self.clock(), self.core.settings.tick_interval
        if interval > 0 and now >= self._next_tick:
            self._next_tick = now + interval
            self._chore("tick", self.write_tick)
        if now < self._next_beat:
            return
        self._next_beat = now + self.options.heartbeat
        self._chore("housekeeping", lambda: self._every_beat(now))

    def _every_beat(self, now: float) -> None:
        self.claim_from_dead()
        if now >= self._next_slow:
            self._next_slow = now + self.options.housekeeping
            self.run()

    def _chore(self, name: str, chore: Callable[[], None]) -> None:
        try:
            chore()
        except Exception as exc:  # the worker outlives any one failure; health tells
            down = unreachable(self.client, exc)
            self.health.failed(name, type(exc).__name__, redis_down=down)
            self.metrics.errors.inc()
            log.warning(f"worker_{name}_error", error=type(exc).__name__, exc_info=not down)
            return
        self.health.succeeded(name)

    def write_tick(self) -> None:
        """Append a tick to the revocation log (the epoch first, if there is none)."""
        pipe = self.client.pipeline(transaction=False)
        for command in tick_commands(self.core.rev_keys):
            pipe.execute_command(*command)
        pipe.execute()

    def heartbeat(self) -> None:
        """Tell the other workers that this one is alive (for three beats): extend the key's
        life (allowed even when Redis is over ``maxmemory``: a full Redis must not make every
        worker look dead to the others), write it when it is missing."""
        ttl_ms = int(self.options.heartbeat_ttl * 1000)
        if not self.client.pexpire(self.heartbeat_key, ttl_ms):
            self.client.set(self.heartbeat_key, f"{self.clock():.3f}", px=ttl_ms)

    def claim_from_dead(self) -> None:
        """Claim what consumers without a live heartbeat hold, on every intake: only entries
        idle for a heartbeat's lifetime, so that of two workers seeing the same dead consumer
        only the first takes them (a claim makes an entry idle no more)."""
        idle_ms = int(self.options.heartbeat_ttl * 1000)
        for stream, name in self._dead_consumers(holding=True):
            self._recover_all(stream, name, "dead", idle_ms)

    def run(self) -> None:
        """The slow chores: reclaim idle entries, prune and trim, gauges, inbound lag, forget.
        Each runs whatever happened to the one before it (a full Redis refuses some and not
        others); the first failure is raised once all have run."""
        failure: Exception | None = None
        for chore in (
            self.reclaim_idle,
            self.prune_and_trim,
            self.trim_intakes,
            self.report_lag,
            self.forget_dead,
        ):
            try:
                chore()
            except Exception as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

    def reclaim_idle(self) -> None:
        """Claim entries idle past ``claim_idle`` on any consumer, on every intake."""
        idle_ms = int(self.options.claim_idle * 1000)
        for stream in self.intakes.streams:
            self.recover(stream, self.reader.pending(stream, idle_ms=idle_ms), idle_ms, "idle")

    def prune_and_trim(self) -> None:
        """``housekeep.lua``: forget expired revocations, trim the log to ``log_retention``."""
        o, now, keys = self.options, self.clock(), self.core.rev_keys
        min_id = f"{int((now - self.core.settings.log_retention) * 1000)}-0"
        call = SCRIPTS["housekeep"].call(
            {"trimmed": keys.trimmed, "lock": keys.key("housekeeping")},
            {"now": f"{now:.6f}", "min_id": min_id, "lock_ms": str(int(o.housekeeping * 1000))},
            rev=SCRIPTS["housekeep"].rev_keys(self.core.settings.namespace),
        )
        done = self.scripts.run([call])[0]
        if isinstance(done, Exception):
            raise done
        if isinstance(done, list):
            self.metrics.pruned.inc(int(done[0]))

    def forget_dead(self) -> None:
        """Remove dead consumers that hold nothing from the groups (``forget.lua``)."""
        dead = self._dead_consumers(holding=False)
        group = self.options.group
        forget = SCRIPTS["forget"]
        calls = [forget.call({"stream": s}, {"group": group, "consumer": n}) for s, n in dead]
        for result in self.scripts.run(calls):
            if isinstance(result, Exception):
                raise result

    def trim_intakes(self) -> None:
        """Trim every intake below every group's oldest unacknowledged entry; the gauges."""
        for intake in self.intakes.all:
            floor: tuple[int, int] | None = None
            groups: Any = self.client.xinfo_groups(intake.stream)
            for g in groups:
                candidates = [g["last-delivered-id"]]
                if int(g["pending"]):
                    summary: Any = self.client.xpending(intake.stream, g["name"])
                    if summary["min"] is not None:  # acknowledged meanwhile
                        candidates.append(summary["min"])
                for cid in candidates:
                    key = stream_id(cid)
                    floor = key if floor is None or key < floor else floor
                if as_text(g["name"]) == self.options.group:
                    self.metrics.pending.labels(intake.name).set(int(g["pending"]))
                    self.metrics.lag.labels(intake.name).set(int(g.get("lag") or 0))
            if floor is not None:  # everything below every group's floor is acknowledged
                self.client.xtrim(intake.stream, minid=f"{floor[0]}-{floor[1]}")
        dlq, keep = self.intakes.dlq, self.options.dlq_max_len
        dropped = int(self.client.xtrim(dlq, maxlen=keep, approximate=False))
        if dropped:  # the bound on what bad input may plant: the oldest letters go
            self.metrics.dlq_trimmed.inc(dropped)
            log.warning("worker_dlq_trimmed", letters=dropped, kept=self.options.dlq_max_len)
        self.metrics.dlq_size.set(int(self.client.xlen(self.intakes.dlq)))

    def report_lag(self) -> float:
        """Measure and publish the age of the oldest inbound event not yet applied."""
        call = SCRIPTS["oldest"].call(
            {}, {"group": self.options.group}, more_keys=self.intakes.streams
        )
        reply = self.scripts.run([call])[0]
        if isinstance(reply, Exception):
            raise reply
        now = self.clock()
        times = [stream_id(i)[0] / 1000 for i in reply if i]
        oldest = min(times) if times else None
        lag = max(0.0, now - oldest) if oldest is not None else 0.0
        self.metrics.inbound_lag.set(lag)
        self.client.set(self.inbound_key, f"{now:.3f} {'-' if oldest is None else f'{oldest:.3f}'}")
        return lag

    def _recover_all(self, stream: str, consumer: str, reason: str, min_idle_ms: int) -> None:
        start = "-"
        while rows := self.reader.pending(stream, consumer=consumer, start=start):
            self.recover(stream, rows, min_idle_ms, reason)
            start = f"({rows[-1][0]}"

    def _dead_consumers(self, *, holding: bool) -> list[tuple[str, str]]:
        """(stream, consumer) of the consumers without a live heartbeat that hold pending
        entries (``holding``) or hold none (not ``holding``), this worker excluded."""
        found: list[tuple[str, str]] = []
        pipe = self.client.pipeline(transaction=False)
        for stream in self.intakes.streams:
            pipe.xinfo_consumers(stream, self.options.group)
        for stream, consumers in zip(self.intakes.streams, pipe.execute(), strict=True):
            for c in consumers:
                name = as_text(c["name"])
                if name != self.options.consumer and (int(c["pending"]) > 0) == holding:
                    found.append((stream, name))
        if not found:
            return []
        keys = [self.core.rev_keys.key(f"worker:{name}") for _, name in found]
        beats: list[Any] = self.client.mget(keys)
        return [pair for pair, beat in zip(found, beats, strict=True) if beat is None]
