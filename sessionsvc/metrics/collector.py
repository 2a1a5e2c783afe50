"""``ValidatorCollector``: the validators of a process as Prometheus metrics, read at scrape time.

Decision: **one collector per registry, one ``validator`` label value per validator.** A
registry refuses two collectors that expose the same names, so a process with several
validators (an API's and an admin console's, say) names them in one collector:
``ValidatorCollector({"api": api, "admin": admin})``, or ``add`` them later. Names are short
identifiers chosen by the application (``[A-Za-z0-9_.-]``, at most 64): a label never carries a
URL, a token or anything read from a request.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from sessionsvc.errors import ConfigError
from sessionsvc.metrics.families import build
from sessionsvc.metrics.readings import read

if TYPE_CHECKING:
    from sessionsvc.validator import Validator

__all__ = ["DEFAULT_NAME", "ValidatorCollector", "install"]

DEFAULT_NAME = "default"
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class ValidatorCollector(Collector):
    """Reports ``sessionsvc_validator_*`` for each validator it holds, from their live state
    when scraped (nothing is counted on the validation path by the collector itself)."""

    def __init__(self, validators: Validator | Mapping[str, Validator] | None = None) -> None:
        self._lock = threading.Lock()
        self._validators: dict[str, Validator] = {}
        if isinstance(validators, Mapping):
            for name, validator in validators.items():
                self.add(validator, name)
        elif validators is not None:
            self.add(validators)

    def add(self, validator: Validator, name: str = DEFAULT_NAME) -> None:
        """Report ``validator`` under ``validator="<name>"``; a name already taken or not a
        short identifier is a ``ConfigError``."""
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ConfigError("a validator's metrics name is 1-64 of [A-Za-z0-9_.-]")
        with self._lock:
            if name in self._validators:
                raise ConfigError(f"a validator named {name!r} is already reported")
            self._validators[name] = validator

    def remove(self, name: str) -> None:
        """Stop reporting the validator named ``name`` (its series then end)."""
        with self._lock:
            self._validators.pop(name, None)

    def collect(self) -> Iterator[Metric]:
        """Every family, one sample per validator (called by the registry at each scrape)."""
        with self._lock:
            held = list(self._validators.items())
        return build((name, read(validator)) for name, validator in held)

    def describe(self) -> Iterator[Metric]:
        """The families without samples: what a registry checks for duplicate names."""
        return build(())


def install(
    validator: Validator | Mapping[str, Validator],
    registry: CollectorRegistry = REGISTRY,
) -> ValidatorCollector:
    """Register a ``ValidatorCollector`` of ``validator`` (or of named validators) with
    ``registry`` (prometheus_client's default one unless given) and return it."""
    collector = ValidatorCollector(validator)
    registry.register(collector)
    return collector
