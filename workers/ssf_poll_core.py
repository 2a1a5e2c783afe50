"""RFC 8936 poll delivery's decisions (pure, no I/O): the request, the response, the pace.

- **Request** (§2.2, §2.4): ``maxEvents``, ``returnImmediately: true`` (short polls: a stop
  and the lease never wait on a held request), ``ack`` with the jti of every SET delivered,
  ``setErrs`` with the jti → ``{"err", "description"}`` (RFC 8935 §2.3 codes) of every SET
  refused; a SET that failed transiently is in neither, so the transmitter delivers it again.
  ``maxEvents: 0`` is the acknowledge-only request (§2.4.2).
- **Response** (§2.3): one strict JSON object (``loads_object``) of at most
  ``MAX_RESPONSE_BYTES``; ``sets`` an object of jti → SET string, at most the ``maxEvents``
  asked, each bounded; ``moreAvailable`` a boolean if present; other members are ignored.
- **Pace**: at once when ``moreAvailable`` (with SETs in hand) or when there is something to
  acknowledge, else ``interval``; a failed poll, or one whose every SET failed transiently,
  backs off from 1 s doubling up to 60 s.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Final

from sessionsvc.encoding import StrictDecodeError, loads_object
from sessionsvc.errors import IdpErrorCode

__all__ = [
    "MAX_BACKOFF",
    "MAX_RESPONSE_BYTES",
    "MAX_SET_CHARS",
    "PollResponse",
    "PollResponseError",
    "Report",
    "next_pace",
    "parse_response",
    "request_body",
]

MAX_RESPONSE_BYTES: Final = 1 << 20
MAX_SET_CHARS: Final = 65536
MAX_JTI_CHARS: Final = 256
MAX_DESCRIPTION: Final = 256
BACKOFF_START: Final = 1.0
MAX_BACKOFF: Final = 60.0
_JTI: Final = re.compile(rf"[^\x00-\x1f\x7f]{{1,{MAX_JTI_CHARS}}}")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


class PollResponseError(ValueError):
    """A poll response that is not what §2.3 says; the message never holds a SET."""


@dataclass(frozen=True)
class PollResponse:
    """A parsed poll response: ``sets`` (jti → SET, in the transmitter's order)."""

    sets: dict[str, str]
    more_available: bool = False


@dataclass
class Report:
    """What one response's SETs turned into: the next request carries ``acks`` and
    ``errors`` (jti → (code, description)); ``transient`` ones are redelivered."""

    acks: list[str] = field(default_factory=list)
    errors: dict[str, tuple[IdpErrorCode, str]] = field(default_factory=dict)
    transient: list[str] = field(default_factory=list)

    def refused(self, jti: str, code: IdpErrorCode, description: str) -> None:
        """Record the SET ``jti`` as refused with ``code`` (its description made short and
        printable)."""
        self.errors[jti] = (code, _CONTROL.sub(" ", description)[:MAX_DESCRIPTION])

    @property
    def reportable(self) -> bool:
        """Is there anything to tell the transmitter?"""
        return bool(self.acks or self.errors)

    @property
    def stalled(self) -> bool:
        """Did SETs come and none of them get judged (all transient)?"""
        return bool(self.transient) and not self.reportable


def request_body(report: Report | None, max_events: int) -> bytes:
    """The JSON body of the next poll: ``max_events`` (0: acknowledge only) and what
    ``report`` has to tell (``ack`` and ``setErrs`` only when not empty)."""
    body: dict[str, Any] = {"maxEvents": max_events, "returnImmediately": True}
    if report is not None and report.acks:
        body["ack"] = list(report.acks)
    if report is not None and report.errors:
        body["setErrs"] = {
            jti: {"err": code, "description": text} for jti, (code, text) in report.errors.items()
        }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def parse_response(data: bytes, max_events: int) -> PollResponse:
    """The poll response ``data``, strictly (``PollResponseError`` saying what is wrong)."""
    if len(data) > MAX_RESPONSE_BYTES:
        raise PollResponseError(f"over {MAX_RESPONSE_BYTES} bytes")
    try:
        doc = loads_object(data)
    except StrictDecodeError as exc:
        raise PollResponseError(f"not a strict JSON object ({exc})") from None
    sets, more = doc.get("sets"), doc.get("moreAvailable", False)
    if not isinstance(sets, dict):
        raise PollResponseError("sets is missing or not an object")
    if not isinstance(more, bool):
        raise PollResponseError("moreAvailable is not a boolean")
    if len(sets) > max_events:
        raise PollResponseError(f"{len(sets)} SETs, over the {max_events} asked for")
    for jti, token in sets.items():
        if not _JTI.fullmatch(jti):
            raise PollResponseError("a jti is empty, too long or not printable")
        if not isinstance(token, str) or not 0 < len(token) <= MAX_SET_CHARS:
            raise PollResponseError(f"the SET of a jti is not a string of 1 to {MAX_SET_CHARS}")
    return PollResponse(sets, more)


def next_pace(
    failures: int,
    interval: float,
    report: Report | None,
    response: PollResponse | None = None,
) -> tuple[int, float]:
    """(failures in a row, seconds to wait) after a poll: ``report`` None means it failed
    (no response, or a bad one); ``failures`` counts those and polls that only stalled."""
    if report is None or report.stalled:
        failures += 1
        return failures, min(MAX_BACKOFF, BACKOFF_START * 2 ** min(failures - 1, 16))
    more = response is not None and response.more_available and bool(response.sets)
    return 0, 0.0 if more or report.reportable else interval
