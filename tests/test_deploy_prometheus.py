"""``deploy/prometheus/``: every ``sessionsvc_*`` metric the alert rules name is one that the
validator collector or the worker exports (promtool itself checks the files in ``.ci/run``)."""

from __future__ import annotations

import re
from pathlib import Path

from sessionsvc.metrics import exposed_names
from workers.metrics import WorkerMetrics

DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "prometheus"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def worker_names() -> set[str]:
    """The sample names of the worker's registry (labelled families have no samples yet)."""
    names = set()
    for family in WorkerMetrics().registry.collect():
        names.update(family.name + suffix for suffix in SUFFIXES[family.type])
    return names


def named_in(path: Path) -> set[str]:
    return set(re.findall(r"\bsessionsvc_[a-z_]+", path.read_text(encoding="utf-8")))


def test_the_alert_rules_name_only_exported_metrics() -> None:
    unknown = named_in(DEPLOY / "alerts.yml") - exposed_names() - worker_names()
    assert not unknown, f"alerts.yml names metrics nobody exports: {sorted(unknown)}"


def test_the_alert_tests_name_only_exported_metrics() -> None:
    unknown = named_in(DEPLOY / "alerts_test.yml") - exposed_names() - worker_names()
    assert not unknown, f"alerts_test.yml names metrics nobody exports: {sorted(unknown)}"
