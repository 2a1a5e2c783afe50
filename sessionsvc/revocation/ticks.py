"""Tick entries of the revocation log: the worker's proof of time for validators on replicas (pure).

A tick is a log entry ``kind tick`` that the worker appends every ``tick_interval`` seconds
(``workers.housekeeping``). Its id, like every log entry's, carries the primary's clock (``XADD
*``), and the log is one ordered stream: a follower that has read an entry with id time *T* has
read every revocation the primary appended before *T*. On a replica, which may lag, that is the
only proof of freshness there is (an empty read there proves nothing); on the primary the feed's
reads prove it as before and ticks are simply skipped.

Invariants:

- A tick changes no revocation state: every reader skips it (the feed without counting it as a
  bad entry, the snapshot reads only its id); trimming by age treats it as any entry.
- The tick commands also ``SET NX`` the epoch: a replica's snapshot needs one (it cannot write
  it itself), even before the first revocation.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any, Final

from sessionsvc.revocation.log import RevKeys
from sessionsvc.revocation.replies import stream_id

__all__ = ["TICK", "entry_time", "is_tick", "tick_commands"]

TICK: Final = b"tick"
"""The ``kind`` of a tick entry."""


def tick_commands(keys: RevKeys) -> list[tuple[Any, ...]]:
    """The commands of one tick, to send in order (one slot, ``{rev}``): the epoch if none
    exists yet, then the entry."""
    return [
        ("SET", keys.epoch, secrets.token_hex(8), "NX"),
        ("XADD", keys.log, "*", "kind", TICK.decode()),
    ]


def is_tick(pairs: Sequence[tuple[bytes, bytes]]) -> bool:
    """Whether a log entry's fields (``raw_entries`` pairs) are a tick's."""
    return any(k == b"kind" and v == TICK for k, v in pairs)


def entry_time(entry_id: bytes | str) -> float:
    """The primary's clock (seconds) when it appended the entry with this id."""
    return stream_id(entry_id)[0] / 1000
