"""Inbound revocation events: the wire contract other systems publish to (pure, no I/O).

A stream entry (``XADD ss:events * type session.revoke sid …``) or a pub/sub message (a JSON
object with the same members) becomes one ``Event`` or an ``EventRejected`` with a stable code:

    too_large      more than 16 fields, or over 4 KiB in all
    malformed      not UTF-8, not a JSON object, or a field name given twice
    unknown_type   ``type`` missing or not one of the five below
    missing_field  a required member is absent
    unknown_field  a member this type does not take
    bad_field      a member with a wrong value (empty, control characters, too long, a time that
                   is not a plain non-negative number of seconds)

Types: ``session.revoke`` (sid), ``user.revoke`` (sub, optional before), ``token.revoke`` (jti,
optional exp), ``all.revoke`` (before), ``key.revoke`` (kid); optional ``id`` (idempotency key),
``source``, ``reason``, ``at`` on all. Times are seconds since the epoch, as an integer or a
decimal with up to 6 fractional digits (strings in streams, numbers or strings in JSON).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError

from sessionsvc._boundary import Rule, map_exceptions
from sessionsvc.encoding import StrictDecodeError, loads_object
from sessionsvc.errors import REJECT_CODES, EventRejected, RejectCode
from sessionsvc.revocation.view import Revocation

if TYPE_CHECKING:
    from sessionsvc.config import Settings

__all__ = [
    "REJECT_CODES",
    "Event",
    "EventRejected",
    "Lifetimes",
    "RejectCode",
    "dumps",
    "encode_fields",
    "parse_fields",
    "parse_flat",
    "parse_message",
    "to_revocation",
]

MAX_FIELDS: Final = 16
MAX_BYTES: Final = 4096
_TIME = re.compile(r"\d{1,12}(\.\d{1,6})?", re.ASCII)  # not "١٢٣" or full-width digits


def _seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("must be seconds since the epoch")
    if isinstance(value, str):
        if not _TIME.fullmatch(value):
            raise ValueError("must be seconds since the epoch, e.g. 1767225600")
        return float(value)
    if not 0 <= value < 1e12:
        raise ValueError("out of range")
    return float(value)


Seconds = Annotated[float, BeforeValidator(_seconds)]
Ident = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")]
Text = Annotated[str, Field(min_length=1, max_length=512, pattern=r"^[^\x00-\x1f\x7f]+$")]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    id: Ident | None = None
    source: Text | None = None
    reason: Text | None = None
    at: Seconds | None = None


class SessionRevoke(_Event):
    """Revoke one session: every token carrying this ``sid``."""

    type: Literal["session.revoke"]
    sid: Ident


class UserRevoke(_Event):
    """Revoke every token of ``sub`` issued before ``before`` (default: when applied)."""

    type: Literal["user.revoke"]
    sub: Ident
    before: Seconds | None = None


class TokenRevoke(_Event):
    """Revoke one token by ``jti``; ``exp`` (if known) bounds how long it is remembered."""

    type: Literal["token.revoke"]
    jti: Ident
    exp: Seconds | None = None


class AllRevoke(_Event):
    """Revoke every token issued before ``before`` (incident response)."""

    type: Literal["all.revoke"]
    before: Seconds


class KeyRevoke(_Event):
    """Revoke every token signed with key ``kid``."""

    type: Literal["key.revoke"]
    kid: Ident


Event = Annotated[
    SessionRevoke | UserRevoke | TokenRevoke | AllRevoke | KeyRevoke, Field(discriminator="type")
]
_EVENT: TypeAdapter[Event] = TypeAdapter(Event)
_CODES: Final[dict[str, RejectCode]] = {
    "missing": "missing_field",
    "extra_forbidden": "unknown_field",
    "union_tag_invalid": "unknown_type",
    "union_tag_not_found": "unknown_type",
}


def _rejected(exc: Exception, what: str) -> EventRejected:
    """The first problem pydantic found, as a stable code and a detail (never the input)."""
    assert isinstance(exc, ValidationError)
    err = exc.errors(include_input=False, include_url=False)[0]
    code = _CODES.get(err["type"], "bad_field")
    where = ".".join(str(p) for p in err["loc"][1:] or err["loc"])
    return EventRejected(code, f"{where}: {err['msg']}" if where else err["msg"])


_MODELS: Final = map_exceptions(rules=(Rule(ValidationError, EventRejected, _rejected, False),))


def _validate(obj: Mapping[str, Any]) -> Event:
    with _MODELS:
        return _EVENT.validate_python(obj)


def parse_fields(pairs: Iterable[tuple[bytes | str, bytes | str]]) -> Event:
    """Parse a stream entry given as (name, value) pairs (bytes or str), in wire order.
    Sizes are checked before anything is decoded."""
    return parse_flat([x for pair in pairs for x in pair])


def parse_flat(flat: Sequence[bytes | str]) -> Event:
    """``parse_fields`` of a flat name, value, … list (as a stream reply holds an entry)."""
    if len(flat) > 2 * MAX_FIELDS:
        raise EventRejected("too_large", f"more than {MAX_FIELDS} fields")
    if len(flat) % 2:
        raise EventRejected("malformed", "a field has no value")
    fields: dict[str, str] = {}
    size = 0
    try:  # decoded inline: this runs for every inbound event
        for i in range(0, len(flat), 2):
            name, value = flat[i], flat[i + 1]
            raw_name = name if isinstance(name, bytes) else name.encode("utf-8", "surrogatepass")
            raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
            size += len(raw_name) + len(raw)  # bytes, before decoding them
            if size > MAX_BYTES:
                raise EventRejected("too_large", f"event is over {MAX_BYTES} bytes")
            key, text = raw_name.decode(), raw.decode()
            if key in fields:
                raise EventRejected("malformed", f"field {key[:40]!r} given twice")
            fields[key] = text
    except UnicodeDecodeError:
        raise EventRejected("malformed", "field is not UTF-8") from None
    return _validate(fields)


def parse_message(data: bytes | str) -> Event:
    """Parse a pub/sub message: one JSON object with the same members as a stream entry."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if len(raw) > MAX_BYTES:
        raise EventRejected("too_large", f"message is over {MAX_BYTES} bytes")
    try:
        obj = loads_object(raw)
    except StrictDecodeError as exc:
        raise EventRejected("malformed", str(exc)) from None
    if len(obj) > MAX_FIELDS:
        raise EventRejected("too_large", f"more than {MAX_FIELDS} members")
    return _validate(obj)


def encode_fields(event: Event) -> dict[str, str]:
    """The stream fields of ``event`` (what ``Publisher`` XADDs), absent options left out."""
    values = event.model_dump(exclude_none=True, exclude={"type"})
    meta = ("id", "source", "reason", "at")
    order = [n for n in values if n not in meta] + [n for n in meta if n in values]
    out: dict[str, str] = {"type": event.type}
    for name in order:
        value = values[name]
        out[name] = _format_seconds(value) if isinstance(value, float) else str(value)
    return out


def _format_seconds(value: float) -> str:
    """Seconds as the stream contract writes them (an integer, or up to six decimals); a JSON
    number with more decimals is rounded, never left as ``1767225600.`` (which parses to no
    time)."""
    return f"{value:.6f}".rstrip("0").rstrip(".")


def dumps(event: Event) -> str:
    """``event`` as the JSON text of a pub/sub message."""
    return json.dumps(encode_fields(event), separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Lifetimes:
    """How long tokens live (seconds): decides how long a revocation must be remembered.

    The one definition of these bounds (the worker, the session service and the validators'
    snapshot horizon all use it). A token is accepted at most ``ttl + 2 * leeway`` after the real
    moment it was issued: its ``exp - iat`` is at most its ttl (validators refuse longer-lived
    tokens), the issuing node's clock may be up to ``leeway`` ahead (its ``iat`` too), and
    validators accept it up to ``leeway`` past its ``exp``. No revocation needs to be kept longer
    than that after the moment it matches tokens from, and none may be: the state a publisher can
    plant is bounded by the settings, not by the event.
    """

    access_ttl: int
    refresh_ttl: int
    leeway: int

    @classmethod
    def of(cls, settings: Settings) -> Lifetimes:
        """The lifetimes of ``settings``."""
        return cls(settings.access_ttl, settings.refresh_ttl, settings.leeway)

    @property
    def longest(self) -> int:
        """How long after it was issued any token (access or refresh) can still be accepted."""
        return max(self.access_ttl, self.refresh_ttl) + 2 * self.leeway

    @property
    def longest_access(self) -> int:
        """How long after it was issued an access token can still be accepted: what a session
        revocation must cover (a refresh needs the session hash, which revoking a session of
        ours deletes; a foreign sid has no session at all)."""
        return self.access_ttl + 2 * self.leeway


def to_revocation(event: Event, now: float, lifetimes: Lifetimes) -> Revocation:
    """The ``Revocation`` an event asks for, kept exactly as long as a token could match it.

    ``until`` is bounded by the settings (``Lifetimes``), whatever the event says: a session
    ``now + longest_access``; a token ``min(exp + leeway, now + longest)``; a user or everything
    ``before + longest`` (the apply script clamps ``before`` to Redis' clock and moves ``until``
    with it). A ``before`` later than ``now`` + leeway is refused (it would also reject tokens
    not yet issued); ``user.revoke`` without ``before`` means "every token issued until now".
    """
    longest = lifetimes.longest
    if isinstance(event, SessionRevoke):
        return Revocation("session", event.sid, until=now + lifetimes.longest_access)
    if isinstance(event, TokenRevoke):
        until = now + longest
        if event.exp is not None:
            until = min(event.exp + lifetimes.leeway, until)
        return Revocation("token", event.jti, until=until)
    if isinstance(event, KeyRevoke):
        return Revocation("key", event.kid)
    before = now if event.before is None else event.before
    if before > now + lifetimes.leeway:
        raise EventRejected("bad_field", "before: lies in the future")
    if isinstance(event, UserRevoke):
        return Revocation("user", event.sub, before=before, until=before + longest)
    return Revocation("all", before=before, until=before + longest)
