"""Validator-side observability: Prometheus metrics and a readiness verdict.

::

    from prometheus_client import REGISTRY
    from sessionsvc.metrics import install, ready

    install(validator)                       # or install({"api": a, "admin": b}, registry)
    ok, reason = ready(validator)            # for /readyz: 503 with ``reason`` when not ok

``ValidatorCollector`` (``collector``) reads every validator's live state when scraped
(``readings``) and reports the ``sessionsvc_validator_*`` families (``families``), each labelled
``validator``. ``ready`` (``readiness``) is False exactly while the validator is stale. The
metrics and alert rules are described in ``docs/operations.md`` ("Validator metrics").
"""

from sessionsvc.metrics.collector import DEFAULT_NAME, ValidatorCollector, install
from sessionsvc.metrics.families import FAMILIES, exposed_names
from sessionsvc.metrics.readiness import Readiness, ready
from sessionsvc.metrics.readings import Reading, read

__all__ = [
    "DEFAULT_NAME",
    "FAMILIES",
    "Readiness",
    "Reading",
    "ValidatorCollector",
    "exposed_names",
    "install",
    "read",
    "ready",
]
