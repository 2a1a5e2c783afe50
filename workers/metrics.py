"""The worker's Prometheus metrics, in a registry of its own (no module-level state)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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
        self.apply_seconds = Histogram(
            "sessionsvc_worker_apply_seconds",
            "Time to apply one batch (one round trip)",
            buckets=(0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.25, 1.0),
            registry=r,
        )
        self.pending = Gauge(
            "sessionsvc_worker_pending", "Entries delivered to the group but not acked", registry=r
        )
        self.lag = Gauge(
            "sessionsvc_worker_lag", "Entries in the inbound stream not yet delivered", registry=r
        )
        self.dlq_size = Gauge("sessionsvc_worker_dlq_size", "Entries in the DLQ", registry=r)
        self.claimed = Counter(
            "sessionsvc_worker_claimed", "Entries reclaimed from dead consumers", registry=r
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
