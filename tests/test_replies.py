"""Reply parsers shared by the feed, the direct check and the worker (pure)."""

from __future__ import annotations

import math

import pytest
import redis

from sessionsvc.revocation.replies import raise_errors, raw_entries, scored_ids


def test_raw_entries_keep_wire_order_and_duplicates() -> None:
    resp2 = [[b"ss:events", [[b"1-0", [b"type", b"a", b"type", b"b"]], [b"2-0", None]]]]
    resp3 = {b"ss:events": [[b"1-0", [b"type", b"a", b"type", b"b"]], [b"2-0", None]]}
    expected = [("1-0", [(b"type", b"a"), (b"type", b"b")]), ("2-0", [])]
    assert raw_entries(resp2) == raw_entries(resp3) == expected
    assert raw_entries(None) == raw_entries([]) == raw_entries({}) == []


def test_scored_ids_read_resp2_and_resp3() -> None:
    assert scored_ids([b"S1", b"10.5", b"S2", b"inf"]) == [("S1", 10.5), ("S2", math.inf)]
    assert scored_ids([[b"S1", 10.5], [b"S2", math.inf]]) == [("S1", 10.5), ("S2", math.inf)]


def test_raise_errors_raises_the_first_error_in_place() -> None:
    assert raise_errors([b"a", None]) == [b"a", None]
    with pytest.raises(redis.ResponseError, match="NOPERM"):
        raise_errors([b"a", redis.ResponseError("NOPERM"), ValueError("later")])
