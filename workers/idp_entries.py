"""Identity providers' tokens in the intakes: verified, claimed once, turned into revocations
(pure: an op yields its Redis steps; the worker runs it).

An entry whose only field is ``logout_token`` (OpenID Connect Back-Channel Logout) or ``set``
(a Security Event Token) becomes an op (``IdpEntries.op``) that answers an ``IdpOutcome``.

Invariants:

- A token is judged as of the time its entry entered the stream (the entry id's milliseconds,
  never later than now): a backlog after an outage is not refused as expired.
- The jti claim (``idp_claim.lua``, by issuer and jti) names the entry that claimed it. This
  entry's claim (``new``), or a claim this same entry holds already (``again``: a redelivery
  after a crash, or the claim the receiver took when it wrote the entry) goes on to apply;
  another entry's claim is a replay (``replayed``, dead-lettered). Everything after the claim
  is idempotent (revocations only grow), so a crash between the claim and the revocations loses
  nothing: the redelivery finds ``again`` and applies.
- Every accepted event becomes ordinary revocations: the session service's own logout of each
  local session recorded for the provider's ``sid`` (``SessionCore.idp_sessions``; one of
  another local user than the token's ``sub`` is left alone), its logout-everywhere for a
  ``sub`` alone, or the apply path (a ``user.revoke`` with ``before``, a ``token.revoke``), with
  ``idp:<issuer>`` as the log's ``source`` and the token's jti as the event id.
- What names nothing here (an unknown event type or credential type, a ``create`` credential
  change, a subject with no local user, an SSF verification event) is acknowledged and
  counted, never an error.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

import structlog

from sessionsvc._redis.durability import Durable
from sessionsvc._redis.run import Call, Op
from sessionsvc._redis.scripts import SCRIPTS
from sessionsvc.config import Settings
from sessionsvc.errors import (
    EventRejected,
    IdpTokenRejected,
    InvalidArgument,
    OverCapacity,
    SessionNotFound,
)
from sessionsvc.idp.logout_token import verify_logout_token
from sessionsvc.idp.mapping import UserMapper
from sessionsvc.idp.model import (
    CREDENTIAL_CHANGE,
    SESSION_REVOKED,
    KeyLookup,
    LogoutRequest,
    SecurityEventToken,
    Subject,
)
from sessionsvc.idp.secevent import verify_set
from sessionsvc.idp.trust import MAX_SET_AGE, Idps
from sessionsvc.revocation.events import Event, TokenRevoke, UserRevoke
from sessionsvc.revocation.intakes import Intakes
from sessionsvc.revocation.log import OVER_CAPACITY, RevKeys
from sessionsvc.sessions.core import Origin, SessionCore
from sessionsvc.sessions.keys import parse_session_id

__all__ = ["FIELDS", "SET_CLAIM_TTL", "IdpEntries", "IdpOutcome", "IdpToken", "claim_digest"]

FIELDS: Final = {"logout_token": "idp.logout_token", "set": "idp.set"}
"""The field of an identity provider's token → the type it is counted under."""
CREDENTIAL_TYPES: Final = frozenset(
    {
        "password",
        "pin",
        "x509",
        "fido2-platform",
        "fido2-roaming",
        "fido-u2f",
        "verifiable-credential",
        "phone-voice",
        "phone-sms",
        "app",
    }
)
"""CAEP 1.0's credential types; a change of any other is acknowledged and ignored (counted)."""
SET_CLAIM_TTL: Final = MAX_SET_AGE + 24 * 3600
"""Seconds a SET's jti is remembered (a SET has no ``exp``): a day longer than the oldest SET
any issuer accepts (``max_set_age``), so none can be replayed."""
RECEIVED_LEEWAY: Final = 300
"""Seconds of leeway added when a token a receiver judged already is judged again."""
CLAIM: Final = SCRIPTS["idp_claim"]
log = structlog.get_logger("workers.idp")


@dataclass(frozen=True, slots=True)
class IdpToken:
    """What a planned identity-provider entry is counted as (``type``: ``FIELDS``' values)."""

    type: str


@dataclass(frozen=True, slots=True)
class IdpOutcome:
    """How an identity provider's token ended: ``applied`` (``ended`` local sessions ended),
    ``ignored`` (acknowledged: nothing here to revoke) or ``refused`` (dead-lettered)."""

    status: Literal["applied", "ignored", "refused"]
    reason: str
    detail: str = ""
    ended: int = 0


def claim_digest(issuer: str, jti: str) -> str:
    """The claim key's digest of an issuer's jti."""
    return hashlib.sha256(f"{issuer}\n{jti}".encode()).hexdigest()[:32]


def entry_time(entry_id: str) -> float:
    """Seconds since the epoch when the entry entered its stream."""
    return int(entry_id.split("-", 1)[0]) / 1000


class IdpEntries:
    """Turns identity providers' tokens into ops (``op``). ``apply(event, owner)`` is the
    worker's apply path: the one call of an ordinary event, charged to ``owner``'s budget."""

    def __init__(
        self,
        settings: Settings,
        idps: Idps,
        keys: KeyLookup,
        *,
        user: UserMapper,
        apply: Callable[[Event, str], Call | object | None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings, self.idps, self.keys, self.user = settings, idps, keys, user
        self.intakes = Intakes.of(settings)
        self.rev_keys = RevKeys(settings.namespace)
        self.sessions = SessionCore(settings, clock=clock)  # confirms its own ops
        self.durable = Durable.of(settings)
        self._apply = apply
        self.clock = clock

    def op(self, field: str, token: str, stream: str, entry_id: str) -> Op[IdpOutcome]:
        """Verify ``token`` as of its entry's time, claim its jti for the entry, apply it."""
        at = min(entry_time(entry_id), self.clock())
        # a receiver verified what is in the idp intake (only workers write it): its signature
        # is not checked again (a key rotated away since cannot lose a logout the provider was
        # told we took), and its times with RECEIVED_LEEWAY more (the receiver's host clock
        # and Redis' may differ)
        received = stream == self.intakes.idp.stream
        keys = None if received else self.keys
        leeway = self.settings.leeway + (RECEIVED_LEEWAY if received else 0)
        try:
            if field == "logout_token":
                req = verify_logout_token(token, self.idps, keys, at, leeway=leeway)
                issuer, jti, ttl = req.issuer, req.jti, max(req.exp - at, 0) + leeway
            else:
                tok = verify_set(token, self.idps, keys, at, leeway=leeway)
                issuer, jti, ttl = tok.issuer, tok.jti, SET_CLAIM_TTL
        except IdpTokenRejected as exc:
            return IdpOutcome("refused", exc.reason, exc.detail)
        key = self.intakes.idp_claim_key(claim_digest(issuer, jti))
        ms = str(max(1000, int(ttl * 1000)))
        held = yield CLAIM.call({"claim": key}, {"entry": f"{stream} {entry_id}", "ttl_ms": ms})
        if (held.decode() if isinstance(held, bytes) else held) == "replayed":
            return IdpOutcome("refused", "replayed", "this token's jti was received before")
        # an issuer's revocations are charged to a budget of its own, capped as a publisher's
        owner = f"idp.{claim_digest(issuer, '')[:16]}"
        budget = self.rev_keys.budget(owner)
        origin = Origin(f"idp:{issuer}"[:512], jti[:256], budget, self.settings.max_revocations)
        try:
            if field == "logout_token":
                return (yield from self._logout(req, origin))
            return (yield from self._event(tok, origin, owner))
        except OverCapacity as exc:
            return IdpOutcome("refused", OVER_CAPACITY, str(exc))
        except InvalidArgument as exc:  # (a value the session layer cannot take)
            return IdpOutcome("refused", "bad_subject", str(exc)[:200])

    def _local(self, issuer: str, subject: Subject) -> str | None:
        """The app's mapper; one that fails maps to no one (logged, never a crash)."""
        try:
            return self.user(issuer, subject)
        except Exception as exc:  # (the app's code)
            log.warning("idp_user_mapper_failed", issuer=issuer, error=type(exc).__name__)
            raise _MapperFailed from None

    def _logout(self, req: LogoutRequest, origin: Origin) -> Op[IdpOutcome]:
        try:
            subject = None if req.sub is None else Subject("iss_sub", req.sub, req.issuer)
            local = None if subject is None else self._local(req.issuer, subject)
        except _MapperFailed:
            return IdpOutcome("refused", "mapper_failed", "the app's user mapper failed")
        if subject is not None and local is None:  # a user named, none of ours: nothing
            return IdpOutcome("ignored", "no_local_user")
        if req.sid is not None:
            return (yield from self._end_sessions(req.issuer, req.sid, local, origin))
        return (yield from self._end_user(local, origin, "backchannel_logout"))

    def _event(self, tok: SecurityEventToken, origin: Origin, owner: str) -> Op[IdpOutcome]:
        if tok.verification is not None:
            return IdpOutcome("ignored", "verification")
        if not tok.events:
            return IdpOutcome("ignored", "unknown_event", ", ".join(tok.ignored)[:200])
        event, subject = tok.events[0], tok.events[0].subject
        if subject is None:
            return IdpOutcome("ignored", "no_subject")
        if event.type == CREDENTIAL_CHANGE:
            if event.change_type == "create":  # enrolling a credential logs no one out
                return IdpOutcome("ignored", "credential_created")
            if event.credential_type not in CREDENTIAL_TYPES:
                return IdpOutcome("ignored", "unknown_credential_type")
        elif event.type != SESSION_REVOKED:
            return IdpOutcome("ignored", "unknown_event", event.type[:200])
        if subject.format == "jwt_id":  # one of our tokens, by its jti
            if subject.iss != self.settings.issuer or subject.jti is None:
                return IdpOutcome("ignored", "not_our_token")
            token = TokenRevoke(type="token.revoke", jti=subject.jti, source=origin.source)
            return (yield from self._revoke(token, owner, "token"))
        named = subject.sub is not None or subject.email is not None
        try:
            local = self._local(tok.issuer, subject) if named else None
        except _MapperFailed:
            return IdpOutcome("refused", "mapper_failed", "the app's user mapper failed")
        if named and local is None:  # a user named, none of ours: nothing
            return IdpOutcome("ignored", "no_local_user")
        if event.type == SESSION_REVOKED:
            if subject.sid is not None:
                return (yield from self._end_sessions(tok.issuer, subject.sid, local, origin))
            return (yield from self._end_user(local, origin, "session_revoked"))
        if local is None:
            return IdpOutcome("ignored", "no_local_user")
        before = min(event.event_time or tok.iat, self.clock())
        user = UserRevoke(
            type="user.revoke",
            sub=local,
            before=before,
            source=origin.source,
            reason="credential_change",
            id=origin.event_id,
        )
        return (yield from self._revoke(user, owner, "user"))

    def _end_sessions(
        self, issuer: str, idp_sid: str, local: str | None, origin: Origin
    ) -> Op[IdpOutcome]:
        """Log out every local session recorded for the provider's session (of ``local`` only,
        when the token names a user too)."""
        ended = 0
        for sid in (yield from self.sessions.idp_sessions(issuer, idp_sid)):
            try:
                owner = parse_session_id(sid)[0]
            except SessionNotFound:
                continue
            if local is not None and owner != local:
                continue
            if (yield from self.sessions.logout(sid, reason="idp_logout", origin=origin)):
                ended += 1
        return IdpOutcome("applied", "session", ended=ended)

    def _end_user(self, local: str | None, origin: Origin, reason: str) -> Op[IdpOutcome]:
        if local is None:
            return IdpOutcome("ignored", "no_local_user")
        try:
            ended = yield from self.sessions.logout_all(
                local, reason=reason, origin=origin, clamp=True
            )
        except InvalidArgument:  # a sub too long to have sessions here
            return IdpOutcome("ignored", "no_local_user")
        return IdpOutcome("applied", "user", ended=ended)

    def _revoke(self, event: Event, owner: str, what: str) -> Op[IdpOutcome]:
        try:
            call = self._apply(event, owner)
        except (EventRejected, ValueError) as exc:
            return IdpOutcome("refused", "bad_subject", str(exc)[:200])
        if isinstance(call, Call):
            d = self.durable
            reply = (yield call) if d is None else (yield from d.applied(call))
            if reply in (OVER_CAPACITY, OVER_CAPACITY.encode()):
                return IdpOutcome("refused", OVER_CAPACITY, "the issuer's budget is full")
        return IdpOutcome("applied", what)


class _MapperFailed(Exception):
    """The app's mapper raised (logged where it happened)."""
