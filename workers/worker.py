"""The revocation worker: consume every intake, apply, dead-letter bad input, fail over fast.

One loop (the reader thread): ``XREADGROUP`` a batch from every intake stream at once (over the
bounded connection: ``workers.reader``), apply every good entry in one pipelined round trip,
then dead-letter and ``XACK`` in a second (a small batch inline, its ``XACK`` riding with the next
read; larger ones handed to the applier thread, so reading and applying overlap). Between reads
the chores of ``workers.housekeeping`` (heartbeat and failover every second; reclaim, prune,
trim, gauges and inbound lag every ``housekeeping`` seconds). SIGTERM/SIGINT finish the current
batch, acknowledge it and return 0. Every part reports to ``HealthState`` (``workers.health``).
An entry is acknowledged only once its apply holds at ``SESSIONSVC_DURABILITY`` (``replica``: a
replica confirmed it; else ``NotConfirmed``, retried like any Redis error: it stays pending);
at ``aof`` the worker refuses to start (``ConfigError``) against a server without AOF.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from redis.exceptions import ResponseError

from sessionsvc._redis.bounded import BoundedConnection
from sessionsvc._redis.clients import REDIS_ERRORS, blocking_client, is_cluster
from sessionsvc._redis.durability import Durable
from sessionsvc._redis.run import run
from sessionsvc._redis.scripts import Call
from sessionsvc.config import Settings
from sessionsvc.errors import (
    ConfigError,
    IdpKeysUnavailable,
    OverCapacity,
    RevocationNotDurable,
    StoreUnavailable,
)
from sessionsvc.idp.keys import IssuerKeyring
from sessionsvc.idp.mapping import UserMapper, default_user
from sessionsvc.idp.trust import Idps, load_idps
from sessionsvc.revocation.log import OVER_CAPACITY
from sessionsvc.tokens.issuer import new_id

from .core import OVER_CAPACITY_REPLY, DeadLetter, Entry, Planned, SessionSteps, WorkerCore
from .health import HealthState
from .housekeeping import BEAT_GRACE, Housekeeping
from .idp_entries import IdpEntries, IdpOutcome
from .kids import ConfiguredKids
from .metrics import WorkerMetrics
from .options import WorkerOptions
from .reader import IntakeReader, unreachable
from .scripts import NotConfirmed, ScriptRunner

__all__ = ["Worker", "WorkerOptions"]

log = structlog.get_logger("workers.worker")

INLINE_BATCH = 32
APPLY_ATTEMPTS = 6  # 50 ms doubling: about 1.6 s of retries before a reclaim takes over
Batch = tuple[list[Planned], list[DeadLetter], dict[str, int]]


class Worker:
    """Consumes every intake (``sessionsvc.revocation.intakes``); ``run()`` returns after
    ``stop()``."""

    def __init__(
        self,
        settings: Settings,
        options: WorkerOptions | None = None,
        *,
        metrics: WorkerMetrics | None = None,
        health: HealthState | None = None,
        clock: Callable[[], float] = time.time,
        idp_user: UserMapper = default_user,
    ) -> None:
        self.settings = settings
        self.options = opts = options or WorkerOptions()
        self.configured = ConfiguredKids(settings)  # the kids key.revoke may name
        self.core = WorkerCore(settings, clock, kids=self.configured.kids)
        # identity providers (SESSIONSVC_IDPS): their keys, and what their tokens become
        idps = settings.idps
        self.idps: Idps = load_idps(None if idps is None else idps.get_secret_value())
        if len(self.idps) > 1 and idp_user is default_user:
            raise ConfigError(
                "SESSIONSVC_IDPS trusts several identity providers: their sub values are not one "
                "namespace, so give a mapper to local users (--idp-user-mapper), else one "
                "provider could log out the users of another"
            )
        self.idp_keys = IssuerKeyring(self.idps)
        self.core.idp = IdpEntries(  # (its keys never wait on a fetch: apply is never held up)
            settings,
            self.idps,
            self.idp_keys.without_waiting(),
            user=idp_user,
            apply=lambda event, owner: self.core.call_for(event, new_id(), owner=owner),
            clock=clock,
        )
        self.intakes = self.core.intakes
        self.metrics = metrics or WorkerMetrics()
        self.health = health or HealthState(max_silence=opts.max_silence)
        self.metrics.watch(self.health)
        self.clock = clock
        # the loop turns at least once per heartbeat, and per tick (housekeeping writes them)
        block = min(opts.block, opts.heartbeat, settings.tick_interval or opts.heartbeat)
        self.client = blocking_client(settings, block, f"sessionsvc-worker:{opts.consumer}")
        # revocations confirmed as SESSIONSVC_DURABILITY says (a replica: WAIT, then the ack)
        durable = Durable.of(settings)
        self.scripts = ScriptRunner(self.client, durable=durable)  # thread-safe: applier, chores
        self.reader = IntakeReader(self.client, self.intakes, opts)
        # the reader thread's own connection for applies: on a cluster one to the {rev} slot
        self._apply_conn = (
            BoundedConnection(self.client, key=self.core.rev_keys.log)
            if is_cluster(self.client)
            else self.reader.conn
        )
        self._inline = ScriptRunner(self.client, self._apply_conn, durable)
        self._stop = threading.Event()
        self._batches: queue.Queue[Batch | None] = queue.Queue(maxsize=2)
        self.health.busy = lambda: self._batches.unfinished_tasks > 0
        self.chores = Housekeeping(
            self.reader,
            self.scripts,
            self.core,
            opts,
            self.metrics,
            health=self.health,
            recover=self.recover,
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
        beater = threading.Thread(target=self._beat_loop, name="worker-heartbeat", daemon=True)
        applier.start()
        beater.start()
        self.configured.start()  # JWKS files re-read: a rotated-in key can be revoked at once
        self.idp_keys.warm()  # identity providers' keys fetched before their first token
        try:
            self._consume()
        finally:
            self._stop.set()  # (also when the loop died of an error: the beater must end)
            self.configured.stop()
            self.idp_keys.close()
            self._batches.put(None)
            applier.join()
            beater.join()
            self.reader.flush_acks()
            self.reader.close()
            self._apply_conn.close()
            self.client.close()
        log.info("worker_stopped", consumer=self.options.consumer)
        return 0

    def _consume(self) -> None:
        backoff = 0.05
        while not self._stop.is_set():
            self.health.beat()
            try:
                if not self.health.started:
                    self._start()
                self.core.kids = self.configured.kids  # (the watcher thread's latest)
                entries = self.reader.read()
                if entries:
                    self._submit(entries)
                self.health.succeeded("consume")
                backoff = 0.05
            except ConfigError:  # (SESSIONSVC_DURABILITY=aof against a server without AOF)
                raise
            except Exception as exc:  # the worker must outlive any one failure
                down = unreachable(self.client, exc)
                self.health.failed("consume", type(exc).__name__, redis_down=down)
                self.health.started = self.health.started and not isinstance(exc, REDIS_ERRORS)
                self.metrics.errors.inc()
                log.warning(
                    "worker_error", error=type(exc).__name__, retry_in=backoff, exc_info=not down
                )
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            self.chores.tick()

    def _beat_loop(self) -> None:
        """The heartbeat, every ``heartbeat`` seconds, while the reader loop is alive (it turned
        within ``BEAT_GRACE`` seconds): other workers take a consumer without one for dead."""
        while not self._stop.wait(self.options.heartbeat):
            if not self.health.started:
                continue  # _start writes the first one, before the first read
            if self.health.clock() - self.health.last_beat > BEAT_GRACE:
                continue  # the loop is stuck: let the others take its entries
            try:
                self.chores.heartbeat()
            except REDIS_ERRORS as exc:  # the loop's own errors tell the rest
                log.debug("worker_heartbeat_failed", error=type(exc).__name__)

    def _start(self) -> None:
        """AOF on where the settings ask for it, groups on every intake, scripts loaded, the
        first heartbeat, our own pending."""
        if self.settings.durability == "aof":
            self.scripts.check_aof(self.intakes.trusted.stream)  # ConfigError: the worker stops
        self.reader.ensure_groups()
        self.scripts.load_all()
        self.chores.start()
        self.health.started = True
        log.info("worker_ready", intakes=self.intakes.streams, group=self.options.group)

    def _submit(self, entries: Sequence[Entry]) -> None:
        """A small batch while no batch is queued or being applied is applied right here (no
        thread hand-off: lowest latency); otherwise, or when that apply fails on a Redis error,
        it is queued behind the batch in hand (overlap: throughput; the applier retries)."""
        planned, dead = self.core.plan(entries)
        if len(entries) <= INLINE_BATCH and self._batches.unfinished_tasks == 0:
            try:
                self._apply(planned, dead, {}, inline=True)
                return
            except REDIS_ERRORS as exc:
                log.warning("worker_apply_retry", error=type(exc).__name__, entries=len(entries))
        self._batches.put((planned, dead, {}))

    def _apply_loop(self) -> None:
        while (batch := self._batches.get()) is not None:
            self._apply_retrying(batch)
            self._batches.task_done()

    def _apply_retrying(self, batch: Batch) -> None:
        """Apply ``batch``, retrying Redis errors (50 ms doubling, APPLY_ATTEMPTS in all) from
        memory: a re-read would count as a delivery, and deliveries decide the dead letter.
        After that the entries stay pending, for a reclaim after ``claim_idle``."""
        error: Exception | None = None
        for attempt in range(APPLY_ATTEMPTS):
            if attempt:  # a sleep, not _stop.wait: a stopping worker still finishes its batches
                time.sleep(0.05 * 2 ** (attempt - 1))
            try:
                self._apply(*batch)
                return
            except REDIS_ERRORS as exc:
                error = exc
            except Exception as exc:  # a bug: the batch stays pending, reclaimed later
                error = exc
                break
        self.metrics.errors.inc()
        down = error is not None and unreachable(self.client, error)
        self.health.failed("apply", type(error).__name__, redis_down=down)
        log.warning("worker_apply_error", error=type(error).__name__, entries=len(batch[0]))

    def process(self, entries: Sequence[Entry], deliveries: dict[str, int] | None = None) -> None:
        """Apply a batch now: one round trip for every apply, one for dead letters and acks."""
        self._apply(*self.core.plan(entries), deliveries or {})

    def recover(
        self, stream: str, rows: list[tuple[str, int]], min_idle_ms: int, reason: str
    ) -> None:
        """Claim the pending entries ``rows`` (id, deliveries so far) and apply them. Those
        delivered ``max_deliveries`` times already become ``apply_failed`` dead letters unread
        (an entry that kills whoever reads it is counted here, not by that reader); those
        delivered more than once are claimed and applied one at a time, so that such an entry
        burns only its own deliveries, not those of the entries that came with it."""
        limit = self.options.max_deliveries
        counts = dict(rows)
        hopeless = [i for i, n in rows if n >= limit]
        if hopeless and (entries := self._claim(stream, hopeless, min_idle_ms, reason)):
            letters = [
                DeadLetter(e, "apply_failed", f"not applied in {counts[e.id]} deliveries")
                for e in entries
            ]
            self._finish(letters, [], {e.id: counts[e.id] + 1 for e in entries})
        once = [i for i, n in rows if n < 2]
        groups = [once] if once else []
        groups += [[i] for i, n in rows if 2 <= n < limit]
        for ids in groups:
            if entries := self._claim(stream, ids, min_idle_ms, reason):
                self.process(entries, {e.id: counts[e.id] + 1 for e in entries})

    def _claim(self, stream: str, ids: list[str], min_idle_ms: int, reason: str) -> list[Entry]:
        entries = self.reader.claim(stream, ids, min_idle_ms)
        if len(entries) < len(ids) and min_idle_ms == 0:  # (with a min-idle: or taken)
            gone = len(ids) - len(entries)  # deleted by the intake's writer before applied
            self.metrics.deleted.inc(gone)
            log.warning("worker_entries_deleted", intake=stream, entries=gone)
        self.metrics.claimed.labels(reason).inc(len(entries))
        return entries

    def _apply(
        self,
        planned: Sequence[Planned],
        dead: Sequence[DeadLetter],
        deliveries: dict[str, int],
        *,
        inline: bool = False,
    ) -> None:
        started = time.perf_counter()
        calls = [p.call for p in planned if type(p.call) is Call]
        results = (self._inline if inline else self.scripts).run(calls)
        stepped = self._all_steps(planned)
        self.metrics.apply_seconds.observe(time.perf_counter() - started)
        dead = list(dead)
        ack: list[Entry] = []
        counts: Counter[tuple[str, str]] = Counter()
        idp: Counter[tuple[str, str, str]] = Counter()
        refused = self.core.refused
        replies, steps = iter(results), iter(stepped)
        for item in planned:
            if item.call is None:  # expired before it was applied: nothing to write
                ack.append(item.entry)
                counts[item.event.type, "expired"] += 1
                continue
            result = next(steps) if type(item.call) is SessionSteps else next(replies)
            if type(result) is IdpOutcome:  # an identity provider's token
                counts[item.event.type, result.status] += 1
                if result.status == "refused":
                    dead.append(DeadLetter(item.entry, f"idp_{result.reason}", result.detail))
                else:
                    ack.append(item.entry)
                idp[item.event.type, result.status, result.reason] += 1
            elif isinstance(result, Exception):  # stays pending: retried, then dead-lettered
                counts[item.event.type, "error"] += 1
                log.warning("worker_apply_failed", entry=item.entry.id, error=str(result)[:200])
            elif (result == OVER_CAPACITY_REPLY or type(result) is list) and refused(
                item.call, result
            ):  # its publisher's budget is full
                dead.append(self.core.over_capacity(item))
                counts[item.event.type, OVER_CAPACITY] += 1
            else:
                ack.append(item.entry)
                counts[item.event.type, "applied"] += 1
        if inline and not dead:
            for entry in ack:  # one write with the next XREADGROUP: no round trip of its own
                self.reader.acks.setdefault(entry.stream, []).append(entry.id)
        else:
            self._finish(dead, ack, deliveries)
        results += stepped
        failed = [r for r in results if isinstance(r, Exception)]
        if len(failed) < len(results) or not results:
            self.health.succeeded("apply")
        if failed:  # (after any success: degraded, not wedged, while some apply)
            self.health.failed("apply", type(failed[0]).__name__, redis_down=False)
        for labels, count in counts.items():  # once the batch is done: a retry counts once
            self.metrics.events.labels(*labels).inc(count)
        for idp_labels, count in idp.items():
            self.metrics.idp.labels(*idp_labels).inc(count)

    def _all_steps(self, planned: Sequence[Planned]) -> list[Any]:
        """The replies of the batch's ``SessionSteps``, in order; the same logout from the
        same intake twice in a batch (a publisher's flood of one sid) runs once."""
        once: dict[tuple[str, str, str], Any] = {}
        out = []
        for item in planned:
            if type(item.call) is SessionSteps:
                key = (item.entry.stream, item.call.script, item.call.target)
                if key not in once:
                    once[key] = self._steps(item.call)
                out.append(once[key])
        return out

    def _steps(self, steps: SessionSteps) -> Any:
        """Run a logout's single-slot steps (Redis Cluster); its reply, or a script's error as
        the result (the entry stays pending). A Redis that fails otherwise fails the batch, as
        a batch's own failure does (retried from memory: every step is idempotent)."""
        try:
            return run(self.client, steps.make())
        except IdpKeysUnavailable as exc:  # (an issuer's keys: the entry stays pending)
            return exc
        except OverCapacity:  # (a cluster logout of a publisher's event its budget refused)
            return OVER_CAPACITY_REPLY
        except RevocationNotDurable as exc:  # (replica: applied, unconfirmed; stays pending)
            timeout = self.settings.durability_timeout
            raise NotConfirmed(steps.script, exc.acknowledged, exc.wanted, timeout) from None
        except StoreUnavailable as exc:
            cause = exc.redis_error
            if isinstance(cause, ResponseError):
                return cause
            if isinstance(cause, REDIS_ERRORS):
                raise cause from None
            raise

    def _finish(
        self, dead: Sequence[DeadLetter], ack: Sequence[Entry], deliveries: dict[str, int]
    ) -> None:
        """Dead-letter ``dead`` and acknowledge them and ``ack`` in one MULTI/EXEC: all or
        nothing, so a dead letter Redis refuses (e.g. over maxmemory: EXECABORT) is not
        acknowledged, and a retry after a lost reply writes no second copy of one it took.
        (Every intake and the DLQ share one hash slot: the transaction holds on a cluster.)"""
        by_stream: defaultdict[str, list[str]] = defaultdict(list)
        for entry in [*(letter.entry for letter in dead), *ack]:
            by_stream[entry.stream].append(entry.id)
        if not by_stream:
            return
        pipe = self.client.pipeline(transaction=bool(dead))
        now = self.clock()
        for letter in dead:
            fields = WorkerCore.dead_fields(
                letter, deliveries.get(letter.entry.id, 1), self.options.consumer, now
            )
            pipe.execute_command(  # type: ignore[no-untyped-call, unused-ignore]
                "XADD", self.intakes.dlq, "MAXLEN", "~", self.options.dlq_max_len, "*", *fields
            )
        for stream, ids in by_stream.items():
            pipe.xack(stream, self.options.group, *ids)
        pipe.execute()
        for letter in dead:
            if letter.code != OVER_CAPACITY and not letter.code.startswith("idp_"):
                # (those are counted under their event type in _apply)
                self.metrics.events.labels("invalid", "dead_letter").inc()
            self.metrics.dead_letters.labels(letter.code).inc()
            log.warning(
                "worker_dead_letter",
                intake=letter.entry.stream,
                entry=letter.entry.id,
                error=letter.code,
            )
