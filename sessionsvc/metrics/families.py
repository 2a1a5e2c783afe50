"""The ``sessionsvc_validator_*`` metric families, built from ``Reading``\\ s (pure).

Every family carries the label ``validator`` (the name the application gave the validator), so
one collector reports every validator of a process. ``FAMILIES`` is the one list of names, types
and HELP texts: the collector, the docs table and the alert-rule test all follow it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from sessionsvc.errors import REASONS
from sessionsvc.metrics.readings import VIEW_KINDS, Reading

__all__ = ["FAMILIES", "PREFIX", "Family", "build", "exposed_names"]

PREFIX = "sessionsvc_validator_"
LABEL = "validator"


@dataclass(frozen=True, slots=True)
class Family:
    """One metric family: ``name`` without the prefix (a counter's without ``_total``), its
    type, HELP text, and how a reading gives its value (or ``None``: no sample)."""

    name: str
    kind: str  # "gauge" or "counter"
    help: str
    value: Callable[[Reading], float | None]


def _flag(value: bool) -> float:
    return 1.0 if value else 0.0


FAMILIES: tuple[Family, ...] = (
    Family(
        "following",
        "gauge",
        "1 while the validator follows the revocation log (start() or astart() was called)",
        lambda r: _flag(r.following),
    ),
    Family(
        "stale",
        "gauge",
        "1 while the view is older than MAX_STALENESS: the staleness policy applies",
        lambda r: _flag(r.stale),
    ),
    Family(
        "staleness_seconds",
        "gauge",
        "Seconds since the revocation view was last proven current (+Inf before the first "
        "snapshot, 0 when not following)",
        lambda r: r.staleness_seconds,
    ),
    Family(
        "max_staleness_seconds",
        "gauge",
        "MAX_STALENESS: the staleness past which the validator is stale",
        lambda r: r.max_staleness_seconds,
    ),
    Family(
        "stale_accepts",
        "counter",
        "Tokens accepted while stale (STALENESS_POLICY=fail_open only)",
        lambda r: r.stale_accepts,
    ),
    Family(
        "cache_entries",
        "gauge",
        "Entries in the verified-token cache",
        lambda r: r.cache_entries,
    ),
    Family(
        "cache_max_entries",
        "gauge",
        "CACHE_SIZE: the verified-token cache's bound (0: no cache)",
        lambda r: r.cache_max_entries,
    ),
    Family(
        "cache_misses",
        "counter",
        "Tokens verified in full (parse, signature, claims): cache misses; hits are not "
        "counted (no cost on the warm path)",
        lambda r: r.cache_misses,
    ),
    Family(
        "feed_applied_entries",
        "counter",
        "Revocation-log entries applied while tailing (snapshot entries not counted)",
        lambda r: r.applied_entries,
    ),
    Family(
        "feed_bad_entries",
        "counter",
        "Revocation-log entries that could not be decoded (skipped)",
        lambda r: r.bad_entries,
    ),
    Family(
        "feed_reconnects",
        "counter",
        "Redis errors after which the feed reconnected",
        lambda r: r.reconnects,
    ),
    Family(
        "feed_bootstraps",
        "counter",
        "Snapshots loaded: 1 after a start; more after Redis lost its data, a failover lost "
        "writes, or the log was trimmed past this validator",
        lambda r: r.bootstraps,
    ),
    Family(
        "feed_errors",
        "counter",
        "Feed failures other than Redis errors (each logged as feed_error and retried)",
        lambda r: r.feed_errors,
    ),
    Family(
        "listener_errors",
        "counter",
        "Exceptions raised by revocation listeners (add_listener), caught",
        lambda r: r.listener_errors,
    ),
    Family(
        "feed_ticks",
        "counter",
        "The workers' tick entries read from the revocation log",
        lambda r: r.ticks,
    ),
    Family(
        "key_reloads",
        "counter",
        "Key rings replaced by a reload of their JWKS file or URL",
        lambda r: r.key_reloads,
    ),
    Family(
        "key_reload_failures",
        "counter",
        "JWKS contents refused on reload (unreadable, corrupt, refused by the key policy): the "
        "ring in use stayed (counted once per distinct content)",
        lambda r: r.key_reload_failures,
    ),
    Family(
        "inbound_lag_seconds",
        "gauge",
        "Age of the oldest inbound event the workers had not applied, as they last reported "
        "it (no sample before any report)",
        lambda r: r.inbound_lag_seconds,
    ),
    Family(
        "inbound_report_age_seconds",
        "gauge",
        "Age of the workers' latest inbound-lag report (growing: no worker is reporting)",
        lambda r: r.inbound_report_age_seconds,
    ),
)
VIEW_HELP = "Revocations held in the view, by kind (all: 1 while a global cutoff is in force)"
REJECTIONS_HELP = "Tokens rejected, by reason (TokenRejected.reason)"


def build(readings: Iterable[tuple[str, Reading]]) -> Iterator[Metric]:
    """The families for ``(validator name, reading)`` pairs; empty families if there are none
    (``describe``)."""
    pairs = list(readings)
    for family in FAMILIES:
        metric = _family(family.kind, family.name, family.help, [LABEL])
        for name, reading in pairs:
            value = family.value(reading)
            if value is not None:
                metric.add_metric([name], float(value))
        yield metric
    view = GaugeMetricFamily(PREFIX + "view_entries", VIEW_HELP, labels=[LABEL, "kind"])
    rejected = CounterMetricFamily(PREFIX + "rejections", REJECTIONS_HELP, labels=[LABEL, "reason"])
    for name, reading in pairs:
        for kind in VIEW_KINDS:
            view.add_metric([name, kind], float(reading.view_entries[kind]))
        for reason in sorted(REASONS):
            rejected.add_metric([name, reason], float(reading.rejections.get(reason, 0)))
    yield view
    yield rejected


def exposed_names() -> frozenset[str]:
    """Every sample name the families expose (counters with ``_total``): for checking rules."""
    names = {PREFIX + "view_entries", PREFIX + "rejections_total"}
    for family in FAMILIES:
        suffix = "_total" if family.kind == "counter" else ""
        names.add(PREFIX + family.name + suffix)
    return frozenset(names)


def _family(
    kind: str, name: str, help_text: str, labels: list[str]
) -> CounterMetricFamily | GaugeMetricFamily:
    if kind == "counter":
        return CounterMetricFamily(PREFIX + name, help_text, labels=labels)
    return GaugeMetricFamily(PREFIX + name, help_text, labels=labels)
