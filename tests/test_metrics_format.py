"""``sessionsvc.metrics`` without Redis: the families' names and HELP, the counters the validator
keeps for them, labels of several validators, registration, readiness of a local view."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ManualClock, make_settings
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from tokens_harness import reason

from sessionsvc import ConfigError, Revocation, Settings, Validator
from sessionsvc.metrics import (
    FAMILIES,
    Reading,
    ValidatorCollector,
    exposed_names,
    install,
    ready,
)
from sessionsvc.metrics.families import PREFIX, build


def registry_of(collector: ValidatorCollector) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)
    return registry


def sample(
    registry: CollectorRegistry, name: str, validator: str = "default", **labels: str
) -> float | None:
    return registry.get_sample_value(PREFIX + name, {"validator": validator, **labels})


def a_reading(**overrides: object) -> Reading:
    values: dict[str, object] = {
        "following": True,
        "stale": False,
        "staleness_seconds": 0.25,
        "max_staleness_seconds": 15.0,
        "view_entries": dict.fromkeys(("session", "token", "user", "key", "all"), 0),
        "rejections": {},
        "stale_accepts": 0,
        "cache_entries": 0,
        "cache_max_entries": 100,
        "cache_misses": 0,
        "applied_entries": 0,
        "bad_entries": 0,
        "reconnects": 0,
        "bootstraps": 1,
        "feed_errors": 0,
        "listener_errors": 0,
        "ticks": 0,
        "key_reloads": 0,
        "key_reload_failures": 0,
        "inbound_lag_seconds": 0.0,
        "inbound_report_age_seconds": 1.0,
    }
    values.update(overrides)
    return Reading(**values)  # type: ignore[arg-type]


def test_every_family_has_the_prefix_a_type_and_help(validator: Validator) -> None:
    text = generate_latest(registry_of(ValidatorCollector(validator))).decode()
    families = list(text_string_to_metric_families(text))
    assert len(families) == len(FAMILIES) + 2  # and view_entries, rejections
    for family in families:
        assert family.name.startswith(PREFIX)
        assert family.type in ("gauge", "counter")
        assert family.documentation.strip()


def test_the_sample_names_are_exposed_names() -> None:
    names = {s.name for metric in build([("v", a_reading())]) for s in metric.samples}
    assert names == exposed_names()


def test_a_missing_inbound_report_has_no_sample() -> None:
    metrics = {m.name: m for m in build([("v", a_reading(inbound_lag_seconds=None))])}
    assert metrics[PREFIX + "inbound_lag_seconds"].samples == []


def test_staleness_before_the_first_snapshot_is_infinite() -> None:
    metrics = {m.name: m for m in build([("v", a_reading(staleness_seconds=math.inf))])}
    assert metrics[PREFIX + "staleness_seconds"].samples[0].value == math.inf


def test_a_rejection_is_counted_by_its_reason(validator: Validator) -> None:
    registry = registry_of(ValidatorCollector(validator))
    assert reason(validator, "not-a-token") == "malformed"
    assert sample(registry, "rejections_total", reason="malformed") == 1.0
    assert sample(registry, "rejections_total", reason="revoked") == 0.0


def test_an_unhashable_token_is_counted_as_malformed(validator: Validator) -> None:
    assert reason(validator, ["not", "a", "string"]) == "malformed"
    assert validator.rejections["malformed"] == 1


def test_a_revoked_cached_token_is_counted_as_revoked(
    validator: Validator, make_token: Callable[..., str]
) -> None:
    token = make_token()
    validator.validate(token)
    validator.revoke(Revocation("session", "sid-1"))
    assert reason(validator, token) == "revoked"
    assert validator.rejections["revoked"] == 1


def test_a_cache_hit_is_not_a_miss(validator: Validator, make_token: Callable[..., str]) -> None:
    registry = registry_of(ValidatorCollector(validator))
    token = make_token()
    validator.validate(token)
    validator.validate(token)
    assert sample(registry, "cache_misses_total") == 1.0
    assert sample(registry, "cache_entries") == 1.0


def test_view_entries_are_reported_by_kind(validator: Validator) -> None:
    registry = registry_of(ValidatorCollector(validator))
    validator.revoke(Revocation("session", "s1"))
    validator.revoke(Revocation("session", "s2"))
    validator.revoke(Revocation("user", "bob", before=10.0))
    validator.revoke(Revocation("all", before=10.0))
    counts = {
        kind: sample(registry, "view_entries", kind=kind)
        for kind in ("session", "token", "user", "key", "all")
    }
    assert counts == {"session": 2.0, "token": 0.0, "user": 1.0, "key": 0.0, "all": 1.0}


def test_each_validator_is_one_label_value(settings: Settings) -> None:
    api, admin = Validator(settings), Validator(settings)
    registry = registry_of(ValidatorCollector({"api": api, "admin": admin}))
    api.revoke(Revocation("token", "j1"))
    assert sample(registry, "view_entries", "api", kind="token") == 1.0
    assert sample(registry, "view_entries", "admin", kind="token") == 0.0


def test_a_removed_validator_is_no_longer_reported(validator: Validator) -> None:
    collector = ValidatorCollector(validator)
    registry = registry_of(collector)
    collector.remove("default")
    assert sample(registry, "following") is None


def test_a_name_taken_twice_is_refused(validator: Validator) -> None:
    collector = ValidatorCollector(validator)
    with pytest.raises(ConfigError, match="already reported"):
        collector.add(validator)


@pytest.mark.parametrize("name", ["", "a b", "redis://x", "x" * 65])
def test_a_name_that_is_no_short_identifier_is_refused(validator: Validator, name: str) -> None:
    with pytest.raises(ConfigError):
        ValidatorCollector({name: validator})


def test_install_registers_with_the_given_registry(validator: Validator) -> None:
    registry = CollectorRegistry()
    install(validator, registry)
    assert sample(registry, "max_staleness_seconds") == validator.settings.max_staleness


def test_a_second_collector_on_one_registry_is_refused(validator: Validator) -> None:
    registry = CollectorRegistry()
    install(validator, registry)
    with pytest.raises(ValueError, match="Duplicated"):
        install({"other": validator}, registry)


def test_a_local_view_is_fresh_and_not_following(validator: Validator) -> None:
    registry = registry_of(ValidatorCollector(validator))
    assert (sample(registry, "following"), sample(registry, "stale")) == (0.0, 0.0)


def test_a_local_view_is_ready(validator: Validator) -> None:
    assert ready(validator) == (True, "ready")


def test_a_validator_past_its_freshness_is_not_ready(
    validator: Validator, clock: ManualClock
) -> None:
    validator.stale_after = clock.now - 1  # as the feed leaves it once closed
    ok, why = ready(validator)
    assert not ok and why.startswith("not ready")


def test_the_scrape_holds_no_token_or_secret(clock: ManualClock) -> None:
    password = "s3cret-Redis-pw"
    v = Validator(make_settings(redis_url=f"redis://:{password}@127.0.0.1:1/0"), clock=clock)
    token = "eyJhbGciOiJFZERTQSJ9.e30.c2ln"
    reason(v, token)
    text = generate_latest(registry_of(ValidatorCollector(v))).decode()
    assert token not in text and password not in text


def test_every_metric_is_in_the_operations_guide() -> None:
    guide = (Path(__file__).resolve().parent.parent / "docs" / "operations.md").read_text()
    missing = [name for name in exposed_names() if f"`{name}" not in guide]
    assert not missing, f"not in docs/operations.md: {sorted(missing)}"
