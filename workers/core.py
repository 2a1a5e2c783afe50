"""The worker's decisions, without I/O: inbound entry → script call, or dead letter.

Invariants:

- Every inbound entry ends in exactly one of two places: applied (then acked) or the dead-letter
  stream with its original fields, the error and its delivery count (then acked). An entry whose
  apply failed for a transient reason is neither: it stays pending, is re-delivered, and after
  ``max_deliveries`` attempts goes to the dead-letter stream.
- Applying is idempotent (revocations only grow), so a crash between apply and ack, followed by
  re-delivery to another worker, changes nothing a second time.
- ``session.revoke`` for one of our session ids and ``user.revoke`` run the session service's own
  logout scripts (the session hashes go too); every other revocation runs ``APPLY_REVOCATION``.
- State planted by events is capped: a revocation by value carries ``max_revocations`` as its
  cap, and one the script refuses (``over_capacity``) is dead-lettered with that code. The
  session scripts are never capped: a logout must always log out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sessionsvc.config import Settings
from sessionsvc.errors import SessionNotFound
from sessionsvc.events import (
    Event,
    EventRejected,
    Lifetimes,
    SessionRevoke,
    UserRevoke,
    parse_fields,
    to_revocation,
)
from sessionsvc.feed_core import Pairs
from sessionsvc.revoker import OVER_CAPACITY, RevKeys, revocation_args
from sessionsvc.sessions_core import Call, SessionCore
from sessionsvc.tokens import new_id

__all__ = ["APPLY", "DeadLetter", "Planned", "WorkerCore"]

APPLY = "apply"


@dataclass(frozen=True, slots=True)
class Planned:
    """An entry ready to apply: the one script call that applies it (and its original fields,
    for the dead letter if its cap refuses it)."""

    entry_id: str
    event: Event
    call: Call
    pairs: Pairs


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An entry that will never apply."""

    entry_id: str
    pairs: Pairs
    code: str
    detail: str


class WorkerCore:
    """Plans batches of inbound entries into script calls and dead letters."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.lifetimes = Lifetimes.of(settings)
        self.rev_keys = RevKeys(settings.namespace)
        self._rev_all = self.rev_keys.all()
        self.sessions = SessionCore(settings, clock=clock)

    def plan(self, entries: Sequence[tuple[str, Pairs]]) -> tuple[list[Planned], list[DeadLetter]]:
        """Parse each entry; good ones become ``Planned`` calls, bad ones ``DeadLetter``s."""
        planned: list[Planned] = []
        dead: list[DeadLetter] = []
        epoch = new_id()  # the candidate epoch, used only if Redis holds none yet
        for entry_id, pairs in entries:
            try:
                if not pairs:
                    raise EventRejected("malformed", "entry has no fields (deleted while pending)")
                event = parse_fields(pairs)
                planned.append(Planned(entry_id, event, self.call_for(event, epoch), pairs))
            except EventRejected as exc:
                dead.append(DeadLetter(entry_id, pairs, exc.code, exc.detail))
        return planned, dead

    def call_for(self, event: Event, epoch: str) -> Call:
        """The one script call that applies ``event`` (``APPLY`` calls may be batched)."""
        reason = event.reason or event.type
        meta = {"reason": reason, "source": event.source or "", "event_id": event.id or ""}
        if isinstance(event, UserRevoke) and event.before is None:
            try:
                return _first_call(self.sessions.logout_all(event.sub, **meta))
            except ValueError:
                pass  # a sub too long to have sessions (over 128 bytes): revoke it by value alone
        if isinstance(event, SessionRevoke):
            try:
                return _first_call(self.sessions.logout(event.sid, **meta))
            except SessionNotFound:
                pass  # not one of our session ids: revoke it by value alone
        rev = to_revocation(event, self.clock(), self.lifetimes)
        args = revocation_args(
            rev,
            epoch=epoch,
            id=event.id or "",
            source=event.source or "",
            reason=reason,
            at=event.at,
            cap=self.settings.max_revocations,
        )
        return Call(APPLY, self._rev_all, args)

    def over_capacity(self, planned: Planned) -> DeadLetter:
        """The dead letter of an entry its cap refused (the script answered ``OVER_CAPACITY``)."""
        kind = planned.call.args[0]
        detail = (
            f"the revocation state holds max_revocations ({self.settings.max_revocations}) "
            f"{kind} entries: a new {kind} value is refused"
        )
        return DeadLetter(planned.entry_id, planned.pairs, OVER_CAPACITY, detail)

    @staticmethod
    def dead_fields(letter: DeadLetter, deliveries: int, consumer: str, now: float) -> Pairs:
        """The DLQ entry: our metadata first (``dlq:`` names), then the original fields."""
        meta = {
            "dlq:error": letter.code,
            "dlq:detail": letter.detail[:500],
            "dlq:entry": letter.entry_id,
            "dlq:deliveries": str(deliveries),
            "dlq:consumer": consumer,
            "dlq:at": f"{now:.3f}",
        }
        return [(k.encode(), v.encode()) for k, v in meta.items()] + list(letter.pairs)


def _first_call(op: Any) -> Call:
    call: Call = next(op)
    op.close()
    return call
