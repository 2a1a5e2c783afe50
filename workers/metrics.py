"""The worker's Prometheus metrics, in a registry of its own (no module-level state)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .health import CHORES, HealthState

__all__ = ["WorkerMetrics"]


@dataclass
class WorkerMetrics:
    """Counters, gauges and histograms exported on ``/metrics``."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        # every name is sessionsvc_worker_<name>
        r, ns, sub = self.registry, "sessionsvc", "worker"
        counter = partial(Counter, namespace=ns, subsystem=sub, registry=r)
        gauge = partial(Gauge, namespace=ns, subsystem=sub, registry=r)
        self.events = counter("events", "Inbound events by type and result", ["type", "result"])
        self.idp = counter(
            "idp_tokens",
            "Identity providers' tokens by type (idp.logout_token, idp.set), outcome "
            "(applied, ignored, refused) and reason",
            ["type", "outcome", "reason"],
        )
        self.receiver = counter(
            "receiver_requests",
            "Requests to the identity-provider receiver by route, outcome and reason",
            ["route", "outcome", "reason"],
        )
        self.dead_letters = counter(
            "dead_letters",
            "Entries dead-lettered, by code (too_large, not_allowed, unknown_key, …)",
            ["code"],
        )
        self.apply_seconds = Histogram(
            "apply_seconds",
            "Time to apply one batch (one round trip)",
            namespace=ns,
            subsystem=sub,
            registry=r,
            buckets=(0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.25, 1.0),
        )
        self.pending = gauge(
            "pending", "Entries delivered to the group but not acked, per intake", ["intake"]
        )
        self.lag = gauge("lag", "Entries in an intake not yet delivered to the group", ["intake"])
        self.inbound_lag = gauge(
            "inbound_lag_seconds",
            "Age of the oldest inbound event not yet applied (0: none waiting)",
        )
        self.dlq_size = gauge("dlq_size", "Entries in the DLQ")
        self.dlq_trimmed = counter(
            "dlq_trimmed", "Oldest dead letters trimmed to keep the DLQ at --dlq-max-len"
        )
        self.claimed = counter(
            "claimed",
            "Entries claimed from other consumers (dead: heartbeat lapsed; idle: claim_idle) "
            "or re-read after a restart (own)",
            ["reason"],
        )
        self.deleted = counter(
            "deleted", "Pending entries their intake's writer deleted before they were applied"
        )
        self.pubsub_duplicates = counter(
            "pubsub_duplicates",
            "Pub/sub messages another worker already forwarded (or identical within 2 s)",
        )
        self.pruned = counter("pruned", "Expired state entries pruned")
        self.errors = counter("redis_errors", "Errors, Redis or other (each retried)")
        self._up = gauge("up", "1 while the probe passes", ["probe"])
        self._since = gauge(
            "seconds_since_success",
            "Seconds since each part of the worker last succeeded",
            ["chore"],
        )

    def watch(self, health: HealthState) -> None:
        """Export ``health`` (computed when scraped, so a hung loop cannot leave it green)."""
        self._up.labels("live").set_function(lambda: float(health.alive()))
        self._up.labels("ready").set_function(lambda: float(health.ready))
        for chore in CHORES:
            self._since.labels(chore).set_function(lambda c=chore: health.since_success(c))  # type: ignore[misc]
