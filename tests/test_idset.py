"""sessionsvc.revocation.idset: compact expiring ids."""

from __future__ import annotations

import math

from sessionsvc.revocation.idset import ExpiringIds

NOW = 1_800_000_000  # a whole minute


def test_added_id_is_held() -> None:
    ids = ExpiringIds()
    assert ids.add("a", NOW) is True
    assert "a" in ids
    assert "b" not in ids
    assert len(ids) == 1


def test_re_adding_is_not_new() -> None:
    ids = ExpiringIds()
    ids.add("a", NOW)
    assert ids.add("a", NOW + 600) is False
    assert ids.until("a") == NOW + 600


def test_earlier_until_never_shortens() -> None:
    ids = ExpiringIds()
    ids.add("a", NOW + 600)
    ids.add("a", NOW)
    assert ids.until("a") == NOW + 600


def test_until_rounds_up_to_the_minute() -> None:
    ids = ExpiringIds()
    ids.add("a", NOW + 0.5)
    assert ids.until("a") == NOW + 60


def test_prune_forgets_only_the_expired() -> None:
    ids = ExpiringIds()
    ids.add("old", NOW)
    ids.add("new", NOW + 120)
    assert ids.prune(NOW) == 1
    assert "old" not in ids
    assert "new" in ids


def test_forever_survives_any_prune() -> None:
    ids = ExpiringIds()
    ids.add("k", math.inf)
    assert ids.prune(math.inf) == 0
    assert ids.until("k") == math.inf


def test_merge_is_a_union_keeping_later_untils() -> None:
    ours, theirs = ExpiringIds(), ExpiringIds()
    ours.add("a", NOW)
    theirs.add("a", NOW + 60)
    theirs.add("b", NOW)
    assert ours.merge(theirs) == 1
    assert ours.until("a") == NOW + 60
    assert "b" in ours


def test_equal_sets_compare_equal() -> None:
    a, b = ExpiringIds(), ExpiringIds()
    a.add("x", NOW)
    b.add("x", NOW)
    assert a == b
