"""The worker's decisions, without I/O: inbound entry → script call, or dead letter.

Invariants:

- Every inbound entry ends in exactly one of two places: applied (then acked) or the dead-letter
  stream with a bounded copy of its fields (at most ``DLQ_COPY`` bytes), their size and digest,
  the error and its delivery count (then acked). An entry whose apply failed for a transient
  reason is neither: it stays pending, is re-delivered, and after ``max_deliveries`` deliveries
  goes to the dead-letter stream.
- An entry is judged by the intake it came from (``sessionsvc.revocation.intakes``): a
  publisher's intake may send only its configured types, and its events carry the publisher as
  ``source``.
- Nothing a publisher sends is kept without a bound: sizes are checked before decoding (an entry
  cut by the bounded reader is ``too_large`` at once), ``key.revoke`` must name a kid of a
  configured key ring (a key revocation never expires, so a made-up kid would be kept forever),
  and the time bounds come from settings (``sessionsvc.revocation.events.to_revocation``).
- Applying is idempotent (revocations only grow), so a crash between apply and ack, followed by
  re-delivery to another worker, changes nothing a second time.
- ``session.revoke`` for one of our session ids and ``user.revoke`` without ``before`` run the
  session service's own logout (the session hashes go too): on one Redis its script, in the
  batch; on Redis Cluster (``redis_cluster``) its single-slot steps (``SessionSteps``: the
  revocation first, a logout-everywhere behind the user's fence; ``sessionsvc.sessions.cluster``),
  run one by one. Every other revocation runs the registry's ``apply`` (``APPLY_REVOCATION``).
- An entry whose one field is an identity provider's token (``logout_token``, ``set``) from an
  intake that takes them (the trusted and the idp intake) becomes the op of
  ``workers.idp_entries`` (verified, its jti claimed, applied), run as ``SessionSteps`` are;
  from any other intake it is ``not_allowed``.
- What a publisher's events plant is capped per publisher: every revocation they add or extend
  is charged to the publisher's budget until it expires, and one the script refuses because
  the budget holds ``max_revocations`` live charges (``over_capacity``) is dead-lettered with
  that code. Operators' events and the session service's own revocations are never capped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Final, NamedTuple

from sessionsvc._redis.bounded import Oversized, Truncated, resp_digest
from sessionsvc._redis.scripts import SCRIPTS
from sessionsvc.config import Settings
from sessionsvc.errors import SessionNotFound
from sessionsvc.revocation.events import (
    MAX_BYTES,
    Event,
    EventRejected,
    KeyRevoke,
    Lifetimes,
    SessionRevoke,
    UserRevoke,
    parse_flat,
    to_revocation,
)
from sessionsvc.revocation.intakes import Intake, Intakes
from sessionsvc.revocation.log import OVER_CAPACITY, RevKeys, revocation_args
from sessionsvc.sessions.core import Call, Op, Origin, SessionCore
from sessionsvc.sessions.keys import parse_session_id, user_tag
from sessionsvc.tokens.issuer import new_id
from sessionsvc.tokens.keys import load_jwks

from .idp_entries import FIELDS as IDP_FIELDS
from .idp_entries import IdpEntries, IdpToken

__all__ = [
    "APPLY",
    "DLQ_COPY",
    "META_FIELDS",
    "ORIGINAL",
    "DeadLetter",
    "Entry",
    "Planned",
    "SessionSteps",
    "WorkerCore",
    "configured_kids",
]

APPLY = "apply"
OVER_CAPACITY_REPLY: Final = OVER_CAPACITY.encode()  # replies are raw bytes
_OVER_CAPACITY = (OVER_CAPACITY, OVER_CAPACITY_REPLY)  # a reply, decoded or not
DLQ_COPY: Final = MAX_BYTES
"""At most this many bytes of an entry's fields (names and values) are copied to a dead letter."""
META_FIELDS: Final = (
    "dlq:error",
    "dlq:detail",
    "dlq:intake",
    "dlq:entry",
    "dlq:deliveries",
    "dlq:consumer",
    "dlq:at",
    "dlq:size",
    "dlq:fields",
    "dlq:sha256",
    "dlq:truncated",
)
"""The worker's own fields of a dead letter, first and in this order."""
ORIGINAL: Final = b"orig:"
"""The prefix of every original field's name in a dead letter (``orig:type``, ``orig:sid``…)."""


class Entry(NamedTuple):
    """One inbound stream entry as read: ``fields`` is the flat name, value, … list (a
    ``Truncated`` list when the bounded reader cut it: see ``sessionsvc._redis.bounded``). A named
    tuple: one is made for every inbound event."""

    stream: str
    id: str
    fields: list[Any]

    def measure(self) -> tuple[int, int, str]:
        """(bytes of names and values, number of fields, SHA-256) of the whole entry."""
        f = self.fields
        if isinstance(f, Truncated):
            return f.size, f.count // 2, f.sha256
        return sum(len(x) for x in f), len(f) // 2, resp_digest(f)


@dataclass(frozen=True, slots=True)
class SessionSteps:
    """On Redis Cluster, the session service's logout of an event (``sessions.cluster``: a few
    single-slot steps, so not in a batch): ``make()`` builds the op afresh for each attempt;
    ``script`` names the one-Redis script whose reply it answers (``logout``, ``logout_all``);
    ``target`` the sid or sub (the same logout twice in one batch runs once: same intake, same
    budget)."""

    script: str
    target: str
    make: Callable[[], Op[Any]]


class Planned(NamedTuple):
    """An entry ready to apply: the one script call that applies it (on a cluster, for a
    logout, its ``SessionSteps``), or ``None`` for a revocation that had expired before it
    was applied (it can reject no valid token: nothing is written, not even a log entry, and
    the entry is acknowledged)."""

    entry: Entry
    event: Event | IdpToken
    call: Call | SessionSteps | None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An entry that will never apply."""

    entry: Entry
    code: str
    detail: str


def configured_kids(settings: Settings) -> frozenset[str]:
    """The kids of the configured access and refresh key rings (what ``key.revoke`` may name)."""
    kids: set[str] = set()
    for name, source in (("access", settings.access_jwks), ("refresh", settings.refresh_jwks)):
        if source is not None:
            kids |= load_jwks(source.get_secret_value(), ring=name).keys.keys()
    return frozenset(kids)


class WorkerCore:
    """Plans batches of inbound entries into script calls and dead letters."""

    def __init__(
        self,
        settings: Settings,
        clock: Callable[[], float] = time.time,
        *,
        kids: frozenset[str] | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.intakes = Intakes.of(settings)
        self.kids = configured_kids(settings) if kids is None else kids
        self.lifetimes = Lifetimes.of(settings)
        self.rev_keys = RevKeys(settings.namespace)
        # every APPLY call has the same KEYS (a batch shares them): the {rev} keys, then one
        # budget per publisher, which an event names by its index (1-based, as in Lua)
        publishers = sorted(self.intakes.publishers)
        rev = SCRIPTS[APPLY].rev_keys(settings.namespace)
        self._apply_keys = rev + [self.rev_keys.budget(p) for p in publishers]
        self._budget_index = {p: len(rev) + 1 + i for i, p in enumerate(publishers)}
        self.sessions = SessionCore(settings, clock=clock, plain=True)  # (confirmed: scripts)
        self.idp: IdpEntries | None = None
        """Identity providers' tokens (the worker sets it: it holds their keys)."""

    def plan(self, entries: Sequence[Entry]) -> tuple[list[Planned], list[DeadLetter]]:
        """Judge each entry; good ones become ``Planned`` calls, bad ones ``DeadLetter``s."""
        planned: list[Planned] = []
        dead: list[DeadLetter] = []
        epoch = new_id()  # the candidate epoch, used only if Redis holds none yet
        for entry in entries:
            try:
                if (token := self.idp_token(entry)) is not None:
                    planned.append(token)
                    continue
                event = self.judge(entry)
                intake = self.intakes.by_stream[entry.stream]
                planned.append(Planned(entry, event, self.call_for(event, epoch, intake)))
            except EventRejected as exc:
                dead.append(DeadLetter(entry, exc.code, exc.detail))
        return planned, dead

    def idp_token(self, entry: Entry) -> Planned | None:
        """An identity provider's token as a planned op, or None for any other entry
        (``EventRejected`` for a token this entry's intake may not send)."""
        fields = entry.fields
        if isinstance(fields, Truncated) or len(fields) != 2:
            return None
        name = fields[0].decode("ascii", "replace") if isinstance(fields[0], bytes) else fields[0]
        if name not in IDP_FIELDS:
            return None
        intake = self.intakes.by_stream[entry.stream]
        if not intake.tokens:
            raise EventRejected(
                "not_allowed", f"intake {intake.name!r} may not send identity-provider tokens"
            )
        value = fields[1]
        if isinstance(value, Oversized):
            raise EventRejected("too_large", f"{name}: over {len(value)} bytes")
        try:
            token = value.decode("ascii") if isinstance(value, bytes) else str(value)
        except UnicodeDecodeError:
            raise EventRejected("malformed", f"{name}: not a compact JWT") from None
        if self.idp is None:
            raise EventRejected("not_allowed", "this worker takes no identity-provider tokens")
        op = partial(self.idp.op, name, token, entry.stream, entry.id)
        target = f"{entry.stream} {entry.id}"
        return Planned(entry, IdpToken(IDP_FIELDS[name]), SessionSteps("idp", target, op))

    def judge(self, entry: Entry) -> Event:
        """The event ``entry`` carries as its intake may apply it, or ``EventRejected``."""
        if isinstance(entry.fields, Truncated):
            size, count, _ = entry.measure()
            raise EventRejected("too_large", f"event is {size} bytes in {count} fields")
        if not entry.fields:
            raise EventRejected("malformed", "entry has no fields (deleted while pending)")
        event = self.intakes.by_stream[entry.stream].admit(parse_flat(entry.fields))
        if isinstance(event, KeyRevoke) and event.kid not in self.kids:
            raise EventRejected(
                "unknown_key", "kid: not in the configured access or refresh key ring"
            )
        return event

    def call_for(
        self, event: Event, epoch: str, intake: Intake | None = None, *, owner: str | None = None
    ) -> Call | SessionSteps | None:
        """The one script call that applies ``event`` (``APPLY`` calls may be batched; on a
        cluster a logout's ``SessionSteps``), or ``None`` when the revocation has expired
        already. A publisher's event (``intake`` owned by one) is charged to that publisher's
        budget; ``owner`` names another budget (an identity provider's: its call then has a
        KEY of its own, so it is run alone, never batched)."""
        reason = event.reason or event.type
        owner = owner or (intake.owner if intake is not None else None)
        budget = self.rev_keys.budget(owner) if owner else None
        cap = self.settings.max_revocations if owner else 0
        origin = Origin(event.source or "", event.id or "", budget, cap)
        steps = self.settings.redis_cluster
        if isinstance(event, UserRevoke) and event.before is None:
            try:
                user_tag(event.sub)
            except ValueError:
                pass  # a sub too long to have sessions (over 128 bytes): revoke it by value alone
            else:
                op = partial(
                    self.sessions.logout_all, event.sub, reason=reason, origin=origin, clamp=True
                )
                if steps:
                    return SessionSteps("logout_all", event.sub, op)
                return _first_call(op())
        if isinstance(event, SessionRevoke):
            try:
                parse_session_id(event.sid)
            except SessionNotFound:
                pass  # not one of our session ids: revoke it by value alone
            else:
                end = partial(self.sessions.logout, event.sid, reason=reason, origin=origin)
                if steps:
                    return SessionSteps("logout", event.sid, end)
                return _first_call(end())
        now = self.clock()
        rev = to_revocation(event, now, self.lifetimes)
        if rev.until <= now:  # e.g. token.revoke exp=1: no token it could match is still valid
            return None
        keys, index = self._apply_keys, self._budget_index.get(owner or "", 0)
        if owner and not index:  # a budget no publisher has: its key goes after theirs
            keys, index = [*keys, self.rev_keys.budget(owner)], len(keys) + 1
        args = revocation_args(
            rev,
            epoch=epoch,
            id=event.id or "",
            source=event.source or "",
            reason=reason,
            at=event.at,
            cap=cap,
            budget=index,
        )
        return Call(APPLY, keys, args)

    @staticmethod
    def refused(call: Call | SessionSteps, result: Any) -> bool:
        """Did the script refuse this call because the publisher's budget is full?"""
        if result is OVER_CAPACITY_REPLY or call.script == APPLY:
            return bool(result == OVER_CAPACITY_REPLY)
        if call.script == "logout":
            return isinstance(result, list) and len(result) > 1 and result[1] in _OVER_CAPACITY
        if call.script == "logout_all":
            return isinstance(result, list) and len(result) > 2 and result[2] in _OVER_CAPACITY
        return False

    def over_capacity(self, planned: Planned) -> DeadLetter:
        """The dead letter of an entry its publisher's full budget refused."""
        detail = (
            f"the publisher's revocations still in force reached max_revocations "
            f"({self.settings.max_revocations}): no more until some expire"
        )
        return DeadLetter(planned.entry, OVER_CAPACITY, detail)

    @staticmethod
    def dead_fields(letter: DeadLetter, deliveries: int, consumer: str, now: float) -> list[Any]:
        """The DLQ entry, flat: our ``META_FIELDS`` first (always all of them, in that order),
        then the original fields as far as ``DLQ_COPY`` bytes go (the value that crosses the
        bound is cut: ``dlq:truncated`` is then ``1``), each name prefixed with ``ORIGINAL``
        so that no original field can pass for one of ours, even to a client that folds the
        fields into a dict; ``dlq:size``, ``dlq:fields`` and ``dlq:sha256`` describe the whole
        original."""
        entry = letter.entry
        size, count, digest = entry.measure()
        copy, cut = _bounded_copy(entry.fields)
        meta = {
            "dlq:error": letter.code,
            "dlq:detail": letter.detail[:500],
            "dlq:intake": entry.stream,
            "dlq:entry": entry.id,
            "dlq:deliveries": str(deliveries),
            "dlq:consumer": consumer,
            "dlq:at": f"{now:.3f}",
            "dlq:size": str(size),
            "dlq:fields": str(count),
            "dlq:sha256": digest,
            "dlq:truncated": "1" if cut else "0",
        }
        originals = [ORIGINAL + x if i % 2 == 0 else x for i, x in enumerate(copy)]
        return [x for pair in meta.items() for x in pair] + originals


def _bounded_copy(fields: Sequence[Any]) -> tuple[list[bytes], bool]:
    """The first ``DLQ_COPY`` bytes of a flat field list (names and values, in order; only the
    value that crosses the bound is cut), and whether anything of the original is missing."""
    out: list[bytes] = []
    budget, cut = DLQ_COPY, isinstance(fields, Truncated) or len(fields) % 2 == 1
    for i in range(0, len(fields) - 1, 2):
        name, value = fields[i], fields[i + 1]
        cut = cut or isinstance(name, Oversized) or isinstance(value, Oversized)
        room = budget - len(name)
        if room < 0 or len(value) > room:
            if room >= 0:
                out += [bytes(name), bytes(value[:room])]
            return out, True
        out += [bytes(name), bytes(value)]
        budget = room - len(value)
    return out, cut


def _first_call(op: Any) -> Call:
    call: Call = next(op)
    op.close()
    return call
