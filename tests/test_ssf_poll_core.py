"""workers.ssf_poll_core: RFC 8936 request bodies, strict response parsing, the pace."""

from __future__ import annotations

import json
from typing import Any

import pytest

from workers.ssf_poll_core import (
    MAX_BACKOFF,
    MAX_RESPONSE_BYTES,
    MAX_SET_CHARS,
    PollResponse,
    PollResponseError,
    Report,
    next_pace,
    parse_response,
    request_body,
)


def body(report: Report | None, max_events: int = 10) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(request_body(report, max_events))
    return doc


def response(doc: object) -> bytes:
    return json.dumps(doc).encode()


# --- request bodies ------------------------------------------------------------------------


def test_the_first_poll_asks_for_max_events_and_an_immediate_answer() -> None:
    assert body(None, 25) == {"maxEvents": 25, "returnImmediately": True}


def test_delivered_sets_are_acknowledged() -> None:
    assert body(Report(acks=["j1", "j2"]))["ack"] == ["j1", "j2"]


def test_refused_sets_go_in_set_errs_with_their_code_and_description() -> None:
    report = Report()
    report.refused("j3", "invalid_audience", "bad_audience: not for us")
    assert body(report)["setErrs"] == {
        "j3": {"err": "invalid_audience", "description": "bad_audience: not for us"}
    }


def test_transient_failures_are_neither_acknowledged_nor_refused() -> None:
    assert body(Report(transient=["j4"])) == {"maxEvents": 10, "returnImmediately": True}


def test_an_acknowledge_only_request_asks_for_no_events() -> None:
    assert body(Report(acks=["j1"]), 0) == {
        "maxEvents": 0,
        "returnImmediately": True,
        "ack": ["j1"],
    }


def test_a_description_is_made_short_and_printable() -> None:
    report = Report()
    report.refused("j", "invalid_request", "line\nbreak" + "x" * 1000)
    text = body(report)["setErrs"]["j"]["description"]
    assert text.startswith("line break") and len(text) == 256


# --- strict response parsing ---------------------------------------------------------------


def test_a_response_gives_its_sets_in_order_and_more_available() -> None:
    parsed = parse_response(response({"sets": {"b": "t-b", "a": "t-a"}, "moreAvailable": True}), 10)
    assert list(parsed.sets.items()) == [("b", "t-b"), ("a", "t-a")]
    assert parsed.more_available is True


def test_more_available_defaults_to_false_and_unknown_members_are_ignored() -> None:
    parsed = parse_response(response({"sets": {}, "extension": 1}), 10)
    assert parsed == PollResponse({}, False)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"[]", "strict JSON object"),
        (b'{"sets": {}, "sets": {}}', "strict JSON object"),
        (b'{"sets": {"a": "x"}, "moreAvailable": NaN}', "strict JSON object"),
        (b"\xff", "strict JSON object"),
        (b"{}", "sets is missing"),
        (b'{"sets": ["t"]}', "sets is missing or not an object"),
        (b'{"sets": {}, "moreAvailable": "true"}', "moreAvailable"),
        (b'{"sets": {"a": 1}}', "not a string"),
        (b'{"sets": {"a": ""}}', "not a string"),
        (b'{"sets": {"": "t"}}', "jti"),
        (b'{"sets": {"a\\n": "t"}}', "jti"),
    ],
)
def test_a_bad_shape_is_refused(data: bytes, why: str) -> None:
    with pytest.raises(PollResponseError, match=why):
        parse_response(data, 10)


def test_more_sets_than_asked_for_are_refused() -> None:
    with pytest.raises(PollResponseError, match="over the 2 asked"):
        parse_response(response({"sets": {"a": "1", "b": "2", "c": "3"}}), 2)


def test_a_set_over_the_size_limit_is_refused() -> None:
    with pytest.raises(PollResponseError, match="not a string"):
        parse_response(response({"sets": {"a": "x" * (MAX_SET_CHARS + 1)}}), 10)


def test_a_long_jti_is_refused() -> None:
    with pytest.raises(PollResponseError, match="jti"):
        parse_response(response({"sets": {"j" * 257: "t"}}), 10)


def test_a_response_over_the_size_limit_is_refused() -> None:
    with pytest.raises(PollResponseError, match="bytes"):
        parse_response(b" " * (MAX_RESPONSE_BYTES + 1), 10)


# --- the pace ------------------------------------------------------------------------------


def test_more_available_polls_again_at_once() -> None:
    assert next_pace(0, 5.0, Report(), PollResponse({"a": "t"}, True)) == (0, 0.0)


def test_something_to_acknowledge_polls_again_at_once() -> None:
    assert next_pace(0, 5.0, Report(acks=["a"]), PollResponse({"a": "t"})) == (0, 0.0)


def test_nothing_more_waits_the_interval() -> None:
    assert next_pace(3, 5.0, Report(), PollResponse({})) == (0, 5.0)


def test_more_available_without_sets_waits_the_interval() -> None:
    assert next_pace(0, 5.0, Report(), PollResponse({}, True)) == (0, 5.0)


def test_failures_back_off_doubling_up_to_a_minute() -> None:
    failures, waits = 0, []
    for _ in range(9):
        failures, wait = next_pace(failures, 5.0, None)
        waits.append(wait)
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, MAX_BACKOFF, MAX_BACKOFF, MAX_BACKOFF]
    assert next_pace(10_000, 5.0, None) == (10_001, MAX_BACKOFF)


def test_a_poll_whose_every_set_failed_transiently_backs_off() -> None:
    assert next_pace(1, 5.0, Report(transient=["a"]), PollResponse({"a": "t"}, True)) == (2, 2.0)


def test_a_poll_with_one_set_delivered_does_not_back_off() -> None:
    report = Report(acks=["a"], transient=["b"])
    assert next_pace(4, 5.0, report, PollResponse({"a": "t", "b": "u"})) == (0, 0.0)
