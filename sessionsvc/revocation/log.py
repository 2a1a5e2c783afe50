"""The one apply path: a revocation becomes a state change plus a log entry, in one script.

``APPLY_REVOCATION`` (the registry's ``apply`` script: ``apply.lua`` + ``apply_main.lua``, see
``sessionsvc._redis.scripts``) runs on the ``{rev}`` slot:
it updates the revocation state and appends the entry to the revocation log ``ss:{rev}:log``
atomically, only when the state changed (re-applying is harmless: ``until`` and ``before`` only
grow, nothing is removed). The session scripts embed the same ``apply.lua`` text, so logout,
logout-everywhere, refresh-reuse detection and eviction write exactly what the worker writes.

The apply script writes nothing before its log append (which can fail), clamps an event's
``before`` to Redis' clock, and refuses (``OVER_CAPACITY``) a revocation a publisher's event
would add once that publisher's budget is full: see the header of
``sessionsvc/_redis/lua/apply.lua``.

Everything here is pure: key names (``RevKeys``, from ``sessionsvc._redis.layout``),
``Revocation`` → script arguments (by the names of ``REVOCATION``), and log entry → the
``Revocation`` it carries (what a validator tailing the log applies to its view).

Log entries have flat string fields ``kind value before until`` and, when known,
``id source reason at``. Numbers are decimal strings (integers plainly, fractions with six
decimals, infinity as ``inf``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, cast

from sessionsvc._redis import layout
from sessionsvc._redis.scripts import REVOCATION, SCRIPTS
from sessionsvc.encoding import as_text
from sessionsvc.revocation.view import KINDS, Kind, Revocation

__all__ = [
    "APPLY_REVOCATION",
    "META_FIELDS",
    "OVER_CAPACITY",
    "RevKeys",
    "decode_entry",
    "entry_meta",
    "format_number",
    "parse_number",
    "revocation_args",
]

APPLY_REVOCATION: Final = SCRIPTS["apply"].text
OVER_CAPACITY: Final = "over_capacity"
"""What the apply scripts answer, instead of a log id, for a revocation refused because the
publisher's budget is full."""
META_FIELDS: Final = ("id", "source", "reason", "at")


@dataclass(frozen=True, slots=True)
class RevKeys:
    """The keys of the revocation state and log, all under the one hash tag ``{rev}``."""

    namespace: str = "ss"

    def key(self, name: str) -> str:
        """``<namespace>:{rev}:<name>``."""
        return layout.rev_key(self.namespace, name)

    @property
    def log(self) -> str:
        """The revocation log stream every validator tails."""
        return self.key("log")

    @property
    def epoch(self) -> str:
        """A random id set once (SET NX); a changed epoch means Redis lost its data."""
        return self.key("epoch")

    @property
    def trimmed(self) -> str:
        """The largest log entry id trimmed away (a follower behind it must re-bootstrap)."""
        return self.key("trimmed")

    def budget(self, publisher: str) -> str:
        """The budget of a publisher: what its events planted, charged until it expires."""
        return self.key(f"budget:{publisher}")

    def all(self) -> list[str]:
        """The {rev} keys of the worker's apply scripts (``layout.REV_APPLY``), in order."""
        return [self.key(n) for n in layout.REV_APPLY]


def format_number(value: float) -> str:
    """A timestamp as the scripts and the log write it: ``1800000000``, ``…000.250000``, ``inf``."""
    if value == math.inf:
        return "inf"
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"not a usable timestamp: {value!r}")
    if value == int(value):
        return str(int(value))
    return f"{value:.6f}"


def parse_number(text: str) -> float:
    """Inverse of ``format_number``; ``ValueError`` for anything else (nan, negative, junk)."""
    if text in ("inf", "+inf"):
        return math.inf
    value = float(text)  # ValueError on junk
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"not a usable timestamp: {text!r}")
    return value


def revocation_args(
    rev: Revocation,
    *,
    epoch: str,
    id: str = "",
    source: str = "",
    reason: str = "",
    at: float | None = None,
    cap: int = 0,
    budget: int = 0,
) -> list[str]:
    """ARGV of ``APPLY_REVOCATION`` for ``rev`` (``epoch``: a fresh random candidate). ``budget``
    is the index in the call's KEYS of a publisher's budget (0: none) and ``cap`` the live
    charges it may hold: a revocation that would add one more is refused, and the script
    answers ``OVER_CAPACITY`` instead of a log id."""
    return REVOCATION.build(
        kind=rev.kind,
        value=rev.value,
        before=format_number(rev.before),
        till=format_number(rev.until),
        epoch=epoch,
        id=id,
        source=source,
        reason=reason,
        at="" if at is None else format_number(at),
        cap=str(cap),
        budget=str(budget),
    )


def _fields(fields: Mapping[bytes, bytes] | Mapping[str, str]) -> dict[str, str]:
    items = cast("Mapping[bytes | str, bytes | str]", fields).items()
    return {as_text(k): as_text(v) for k, v in items}


def decode_entry(fields: Mapping[bytes, bytes] | Mapping[str, str]) -> Revocation:
    """The ``Revocation`` a log entry carries (bytes or str fields); ``ValueError`` if malformed."""
    f = _fields(fields)
    kind = f.get("kind", "")
    if kind not in KINDS:
        raise ValueError(f"log entry has unknown kind {kind!r}")
    try:
        before = parse_number(f.get("before", "0"))
        until = parse_number(f.get("until", "inf"))
    except ValueError:
        raise ValueError("log entry before/until are not timestamps") from None
    return Revocation(cast("Kind", kind), f.get("value", ""), before=before, until=until)


def entry_meta(fields: Mapping[bytes, bytes] | Mapping[str, str]) -> dict[str, str]:
    """The optional ``id source reason at`` fields of a log entry that are present."""
    f = _fields(fields)
    return {name: f[name] for name in META_FIELDS if name in f}
