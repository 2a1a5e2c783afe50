"""The worker's Prometheus metrics, in a registry of its own (no module-level state)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .health import CHORES, HealthState

__all__ = ["WorkerMetrics"]


@dataclass
class WorkerMetrics:
    """Counters, gauges and histograms exported on ``/metrics``."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.events = Counter(
            "sessionsvc_worker_events",
            "Inbound events by type and result",
            ["type", "result"],
            registry=r,
        )
        self.dead_letters = Counter(
            "sessionsvc_worker_dead_letters",
            "Entries dead-lettered, by code (too_large, not_allowed, unknown_key, …)",
            ["code"],
            registry=r,
        )
        self.apply_seconds = Histogram(
            "sessionsvc_worker_apply_seconds",
            "Time to apply one batch (one round trip)",
            buckets=(0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.25, 1.0),
            registry=r,
        )
        self.pending = Gauge(
            "sessionsvc_worker_pending",
            "Entries delivered to the group but not acked, per intake",
            ["intake"],
            registry=r,
        )
        self.lag = Gauge(
            "sessionsvc_worker_lag",
            "Entries in an intake not yet delivered to the group",
            ["intake"],
            registry=r,
        )
        self.inbound_lag = Gauge(
            "sessionsvc_worker_inbound_lag_seconds",
            "Age of the oldest inbound event not yet applied (0: none waiting)",
            registry=r,
        )
        self.dlq_size = Gauge("sessionsvc_worker_dlq_size", "Entries in the DLQ", registry=r)
        self.dlq_trimmed = Counter(
            "sessionsvc_worker_dlq_trimmed",
            "Oldest dead letters trimmed to keep the DLQ at --dlq-max-len",
            registry=r,
        )
        self.claimed = Counter(
            "sessionsvc_worker_claimed",
            "Entries claimed from other consumers (dead: heartbeat lapsed; idle: claim_idle) "
            "or re-read after a restart (own)",
            ["reason"],
            registry=r,
        )
        self.deleted = Counter(
            "sessionsvc_worker_deleted",
            "Pending entries their intake's writer deleted before they were applied",
            registry=r,
        )
        self.pubsub_duplicates = Counter(
            "sessionsvc_worker_pubsub_duplicates",
            "Pub/sub messages another worker already forwarded (or identical within 2 s)",
            registry=r,
        )
        self.pruned = Counter(
            "sessionsvc_worker_pruned", "Expired state entries pruned", registry=r
        )
        self.errors = Counter(
            "sessionsvc_worker_redis_errors", "Errors, Redis or other (each retried)", registry=r
        )
        self._up = Gauge("sessionsvc_worker_up", "1 while the probe passes", ["probe"], registry=r)
        self._since = Gauge(
            "sessionsvc_worker_seconds_since_success",
            "Seconds since each part of the worker last succeeded",
            ["chore"],
            registry=r,
        )

    def watch(self, health: HealthState) -> None:
        """Export ``health`` (computed when scraped, so a hung loop cannot leave it green)."""
        self._up.labels("live").set_function(lambda: float(health.alive()))
        self._up.labels("ready").set_function(lambda: float(health.ready))
        for chore in CHORES:
            self._since.labels(chore).set_function(lambda c=chore: health.since_success(c))  # type: ignore[misc]
