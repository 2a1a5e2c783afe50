"""The revocation worker: consume inbound events, apply them, dead-letter bad input.

One loop: ``XREADGROUP`` a batch (own pending entries first after a restart, then new ones),
apply every good entry in one pipelined round trip, then dead-letter and ``XACK`` in a second
(a small batch inline, its ``XACK`` riding with the next read). Every ``housekeeping`` seconds the
chores of ``workers.housekeeping`` (reclaim, prune, trim, heartbeat, gauges). SIGTERM/SIGINT
finish the current batch, acknowledge it and return 0.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import redis
import structlog
from redis.exceptions import ResponseError

from sessionsvc.config import Settings
from sessionsvc.feed_core import Pairs, raw_entries
from sessionsvc.hotconn import HotConnection
from sessionsvc.redisconn import blocking_client
from sessionsvc.revoker import OVER_CAPACITY

from .core import DeadLetter, Planned, WorkerCore
from .health import HealthState
from .housekeeping import Housekeeping
from .metrics import WorkerMetrics
from .options import WorkerOptions
from .scripts import ScriptRunner

__all__ = ["Worker", "WorkerOptions"]

log = structlog.get_logger("workers")


INLINE_BATCH = 32
APPLY_ATTEMPTS = 6  # 50 ms doubling: about 1.6 s of retries before XAUTOCLAIM takes over
Batch = tuple[list[Planned], list[DeadLetter], dict[str, int]]
_OVER_CAPACITY = (OVER_CAPACITY, OVER_CAPACITY.encode())  # the reply, decoded or not


class Worker:
    """Consumes ``<ns>:events`` in group ``workers``; ``run()`` returns after ``stop()``."""

    def __init__(
        self,
        settings: Settings,
        options: WorkerOptions | None = None,
        *,
        metrics: WorkerMetrics | None = None,
        health: HealthState | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.options = opts = options or WorkerOptions()
        self.core = WorkerCore(settings, clock)
        self.metrics = metrics or WorkerMetrics()
        self.health = health or HealthState()
        self.clock = clock
        ns = settings.namespace
        self.stream, self.dlq = f"{ns}:events", f"{ns}:dlq"
        self.client = blocking_client(settings, opts.block, f"sessionsvc-worker:{opts.consumer}")
        self.scripts = ScriptRunner(self.client)  # thread-safe (pooled): applier, housekeeping
        # the reader thread's own connection: XREADGROUP, and a small batch applied inline
        self._hot = HotConnection(self.client)
        self._inline = ScriptRunner(self.client, self._hot)
        self._acks: list[str] = []  # applied inline, acknowledged with the next read
        self._stop = threading.Event()
        self._batches: queue.Queue[Batch | None] = queue.Queue(maxsize=2)
        self._next_housekeeping = 0.0
        self.housekeeping = Housekeeping(
            self.client,
            self.scripts,
            self.core,
            opts,
            self.metrics,
            dead_letter=lambda letters, counts: self._finish(
                letters, [letter.entry_id for letter in letters], counts
            ),
            retry=self.process,
            clock=clock,
        )

    def stop(self) -> None:
        """Ask ``run`` to return after the batch in hand (safe from a signal handler)."""
        self._stop.set()

    def run(self) -> int:
        """Consume until ``stop()``; Redis outages are retried with backoff. Returns 0.

        Reading and planning (Python work) run here while a second thread applies the previous
        batch (Redis work): the two overlap. Batches are applied in the order they were read.
        """
        applier = threading.Thread(target=self._apply_loop, name="worker-apply", daemon=True)
        applier.start()
        try:
            self._consume()
        finally:
            self._batches.put(None)
            applier.join()
            self._flush_acks()
            self._hot.close()
            self.client.close()
        log.info("worker_stopped", consumer=self.options.consumer)
        return 0

    def _consume(self) -> None:
        # After a restart under the same consumer name, walk our own pending entries once,
        # from "0" forward (an entry that keeps failing is left for XAUTOCLAIM to count and
        # dead-letter; re-reading from "0" would spin on it forever), then read new ones.
        backoff, own_pending = 0.05, "0"
        while not self._stop.is_set():
            try:
                if not self.health.ready:
                    self._ensure_group()
                entries = self._read(own_pending or ">")
                if own_pending:
                    own_pending = entries[-1][0] if entries else ""
                if entries:
                    self._submit(entries)
                self.health.beat()
                if self.clock() >= self._next_housekeeping:
                    self.housekeep()
                backoff = 0.05
            except Exception as exc:  # the worker must outlive any one failure
                redis_error = isinstance(exc, redis.RedisError)
                self.health.ready = self.health.ready and not redis_error
                self.health.beat()  # the loop is alive, retrying: liveness holds, readiness not
                self.metrics.errors.inc()
                log.warning(
                    "worker_error",
                    error=type(exc).__name__,
                    retry_in=backoff,
                    exc_info=not redis_error,
                )
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 2.0)

    def _submit(self, entries: Sequence[tuple[str, Pairs]]) -> None:
        """A small batch while no batch is queued or being applied is applied right here (no
        thread hand-off: lowest latency); otherwise, or when that apply fails on a Redis error,
        it is queued behind the batch in hand (overlap: throughput; the applier retries)."""
        planned, dead = self.core.plan(entries)
        if len(entries) <= INLINE_BATCH and self._batches.unfinished_tasks == 0:
            try:
                self._apply(planned, dead, {}, inline=True)
                return
            except redis.RedisError as exc:
                log.warning("worker_apply_retry", error=type(exc).__name__, entries=len(entries))
        self._batches.put((planned, dead, {}))

    def _apply_loop(self) -> None:
        while (batch := self._batches.get()) is not None:
            self._apply_retrying(batch)
            self._batches.task_done()

    def _apply_retrying(self, batch: Batch) -> None:
        """Apply ``batch``, retrying Redis errors (50 ms doubling, APPLY_ATTEMPTS in all) from
        memory: a re-read would count as a delivery, and deliveries decide the dead letter.
        After that the entries stay pending, for XAUTOCLAIM after ``claim_idle``."""
        error: Exception | None = None
        for attempt in range(APPLY_ATTEMPTS):
            if attempt:  # a sleep, not _stop.wait: a stopping worker still finishes its batches
                time.sleep(0.05 * 2 ** (attempt - 1))
            try:
                self._apply(*batch)
                return
            except redis.RedisError as exc:
                error = exc
            except Exception as exc:  # a bug: the batch stays pending, reclaimed later
                error = exc
                break
        self.metrics.errors.inc()
        log.warning("worker_apply_error", error=type(error).__name__, entries=len(batch[0]))

    def _ensure_group(self) -> None:
        try:
            self.client.xgroup_create(self.stream, self.options.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self.scripts.load_all()
        self.health.ready = True
        log.info("worker_ready", stream=self.stream, group=self.options.group)

    def _read(self, start: str) -> list[tuple[str, Pairs]]:
        o = self.options
        block = ("BLOCK", int(o.block * 1000)) if start == ">" else ()
        read = ("XREADGROUP", "GROUP", o.group, o.consumer, "COUNT", o.batch, *block)
        read += ("STREAMS", self.stream, start)
        if not self._acks:
            return raw_entries(self._hot(*read))
        acked, reply = self._hot.many(("XACK", self.stream, o.group, *self._acks), read)
        self._ack_done(acked)
        if isinstance(reply, Exception):
            raise reply
        return raw_entries(reply)

    def _ack_done(self, reply: Any) -> None:
        """The deferred acks were answered; an error leaves those entries pending (they were
        applied: a re-delivery re-applies them, which changes nothing)."""
        if isinstance(reply, Exception):
            log.warning("worker_ack_failed", entries=len(self._acks), error=str(reply)[:200])
        self._acks = []

    def _flush_acks(self) -> None:
        if self._acks:
            try:
                self._ack_done(self._hot("XACK", self.stream, self.options.group, *self._acks))
            except redis.RedisError as exc:  # Redis away: the entries stay pending (see above)
                self._ack_done(exc)

    def process(
        self,
        entries: Sequence[tuple[str, Pairs]],
        deliveries: dict[str, int] | None = None,
    ) -> None:
        """Apply a batch now: one round trip for every apply, one for dead letters and acks."""
        self._apply(*self.core.plan(entries), deliveries or {})

    def _apply(
        self,
        planned: Sequence[Planned],
        dead: Sequence[DeadLetter],
        deliveries: dict[str, int],
        *,
        inline: bool = False,
    ) -> None:
        started = time.perf_counter()
        results = (self._inline if inline else self.scripts).run([p.call for p in planned])
        self.metrics.apply_seconds.observe(time.perf_counter() - started)
        letters = list(dead)
        ack = [letter.entry_id for letter in dead]
        counts: Counter[tuple[str, str]] = Counter()
        for item, result in zip(planned, results, strict=True):
            if isinstance(result, Exception):  # stays pending: retried, then dead-lettered
                counts[item.event.type, "error"] += 1
                log.warning("worker_apply_failed", entry=item.entry_id, error=str(result)[:200])
            elif result in _OVER_CAPACITY:  # refused by its cap: will never apply
                letters.append(self.core.over_capacity(item))
                ack.append(item.entry_id)
                counts[item.event.type, OVER_CAPACITY] += 1
            else:
                ack.append(item.entry_id)
                counts[item.event.type, "applied"] += 1
        if inline and not letters:
            self._acks += ack  # one write with the next XREADGROUP: no round trip of its own
        else:
            self._finish(letters, ack, deliveries)
        for labels, count in counts.items():  # once the batch is done: a retry counts once
            self.metrics.events.labels(*labels).inc(count)

    def _finish(
        self, dead: Sequence[DeadLetter], ack: list[str], deliveries: dict[str, int]
    ) -> None:
        """Dead-letter ``dead`` and acknowledge ``ack`` in one MULTI/EXEC: all or nothing, so a
        dead letter Redis refuses (e.g. over maxmemory: EXECABORT) is not acknowledged, and a
        retry after a lost reply writes no second copy of one it took. (Redis Cluster, later:
        ``ss:events`` and ``ss:dlq`` must then share a slot.)"""
        if not ack:
            return
        pipe = self.client.pipeline(transaction=bool(dead))
        now = self.clock()
        for letter in dead:
            fields = WorkerCore.dead_fields(
                letter, deliveries.get(letter.entry_id, 1), self.options.consumer, now
            )
            flat = [x for pair in fields for x in pair]  # every original field, duplicates too
            pipe.execute_command("XADD", self.dlq, "*", *flat)  # type: ignore[no-untyped-call]
        pipe.xack(self.stream, self.options.group, *ack)
        pipe.execute()
        for letter in dead:
            if letter.code != OVER_CAPACITY:  # (counted by its event type in _apply)
                self.metrics.events.labels("invalid", "dead_letter").inc()
            log.warning("worker_dead_letter", entry=letter.entry_id, error=letter.code)

    def housekeep(self) -> None:
        """Reclaim, dead-letter the hopeless, prune, trim, heartbeat, gauges (``Housekeeping``)."""
        self._next_housekeeping = self.clock() + self.options.housekeeping
        self.housekeeping.run()
