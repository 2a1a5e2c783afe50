"""Publishers of revocation events: ``Publisher`` (redis-py) and ``AsyncPublisher`` (asyncio).

They XADD to an intake stream (durable; the worker applies it), exactly as any other system
would with ``redis-cli``: the publisher intake ``{<ns>:events}:<name>`` of ``SESSIONSVC_PUBLISHER``
(or the ``intake`` argument), else the trusted intake ``<ns>:events`` (see
``sessionsvc.revocation.intakes``).
Each method validates the event with the same models and intake rules the worker uses, so a bad
call fails here with ``EventRejected`` instead of in the DLQ. Every method returns the stream
entry id (at ``SESSIONSVC_DURABILITY=replica`` once a replica confirmed the XADD, else
``RevocationNotDurable``). The events are built once, in ``PublisherCore`` (pure ops); the two
publishers run them (``sessionsvc._redis.run``; a Redis error is ``StoreUnavailable``) with
methods declared once.
"""

from __future__ import annotations

import time
from typing import Any, Generic, TypeVar

from sessionsvc._redis.clients import AsyncClient, SyncClient, async_client, sync_client
from sessionsvc._redis.durability import Durable
from sessionsvc._redis.run import Command, Op
from sessionsvc._redis.shells import Awaiting, Blocking, operation
from sessionsvc.config import EVENT_TYPES, Settings, check_publisher_names, load_settings
from sessionsvc.encoding import as_text
from sessionsvc.revocation.events import Lifetimes, encode_fields, parse_fields, to_revocation
from sessionsvc.revocation.intakes import Intake, Intakes
from sessionsvc.revocation.log import format_number

__all__ = ["AsyncPublisher", "Publisher", "PublisherCore", "event_fields"]

Client = TypeVar("Client", SyncClient, AsyncClient)


def event_fields(type_: str, **members: object) -> dict[str, str]:
    """Validated stream fields for one event (``None`` members left out)."""
    pairs = [("type", type_)] + [(k, _wire(v)) for k, v in members.items() if v is not None]
    return encode_fields(parse_fields(pairs))


def _intake(settings: Settings, name: str | None) -> Intake:
    """The intake a publisher writes: its own (``name``), or the trusted one."""
    name = settings.publisher if name is None else name
    intakes = Intakes.of(settings)
    if not name:
        return intakes.trusted
    check_publisher_names([name])  # not one of our own intakes (pubsub, dlq, dedup)
    stream = intakes.publisher_stream(name)  # this process may not know the worker's policies
    return intakes.publishers.get(name) or Intake(
        name, stream, stream, frozenset(EVENT_TYPES), name
    )


def _prepare(fields: dict[str, str], intake: Intake, settings: Settings) -> dict[str, str]:
    """The worker's own checks (the intake's rules; a ``before`` in the future is refused),
    before any I/O; the fields to write."""
    event = intake.admit(parse_fields(fields.items()))
    to_revocation(event, time.time(), Lifetimes.of(settings))
    return encode_fields(event)


def _wire(value: object) -> str:
    if isinstance(value, float) and not isinstance(value, bool):
        try:
            return format_number(value)
        except ValueError:  # negative or NaN: left for the model to refuse (EventRejected)
            return str(value)
    return str(value)


class PublisherCore:
    """The five events, validated and written as one XADD each (pure: ops for the runners)."""

    def __init__(self, settings: Settings, intake: Intake) -> None:
        self.settings, self.intake = settings, intake  # (``self, /``: ``meta`` may hold any name)
        # ``replica``: the XADD goes with its WAIT; ``aof`` is checked by the worker, which
        # applies the intake on the same server (a publisher's ACL has no INFO)
        durable = Durable.of(settings)
        self._durable = durable if durable is not None and durable.tail else None

    def _xadd(self, fields: dict[str, str]) -> Op[str]:
        fields = _prepare(fields, self.intake, self.settings)  # before any I/O
        flat = [part for pair in fields.items() for part in pair]
        command, d = Command(("XADD", self.intake.stream, "*", *flat)), self._durable
        entry_id = (
            (yield command)
            if d is None
            else (yield from d.applied(command, "the event", writes=True))
        )
        return as_text(entry_id)

    def revoke_session(self, /, sid: str, **meta: Any) -> Op[str]:
        """Revoke one session (``reason``, ``source``, ``id``, ``at`` optional)."""
        return self._xadd(event_fields("session.revoke", sid=sid, **meta))

    def revoke_user(self, /, sub: str, *, before: float | None = None, **meta: Any) -> Op[str]:
        """Revoke every token of ``sub`` issued before ``before`` (default: when applied)."""
        return self._xadd(event_fields("user.revoke", sub=sub, before=before, **meta))

    def revoke_token(self, /, jti: str, *, exp: float | None = None, **meta: Any) -> Op[str]:
        """Revoke one token by ``jti``; pass its ``exp`` so the entry can be forgotten then."""
        return self._xadd(event_fields("token.revoke", jti=jti, exp=exp, **meta))

    def revoke_all(self, /, *, before: float, **meta: Any) -> Op[str]:
        """Revoke every token issued before ``before`` (incident response)."""
        return self._xadd(event_fields("all.revoke", before=before, **meta))

    def revoke_key(self, /, kid: str, **meta: Any) -> Op[str]:
        """Revoke every token signed with key ``kid``."""
        return self._xadd(event_fields("key.revoke", kid=kid, **meta))


class _Publisher(Generic[Client]):
    """What both publishers share: settings, the intake, the core, the client, the methods."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        client: Client | None = None,
        intake: str | None = None,
    ) -> None:
        self.settings = settings = settings or load_settings()
        self.intake = _intake(settings, intake)
        self.stream = self.intake.stream
        self.core = PublisherCore(settings, self.intake)
        self._client: Client = client if client is not None else self._connect(settings)

    def _connect(self, settings: Settings) -> Client:
        raise NotImplementedError

    revoke_session = operation(PublisherCore.revoke_session)
    revoke_user = operation(PublisherCore.revoke_user)
    revoke_token = operation(PublisherCore.revoke_token)
    revoke_all = operation(PublisherCore.revoke_all)
    revoke_key = operation(PublisherCore.revoke_key)


class Publisher(_Publisher[SyncClient], Blocking):
    """Publishes revoke events to an intake stream with a redis-py client."""

    def _connect(self, settings: Settings) -> SyncClient:
        return sync_client(settings)

    def close(self) -> None:
        """Release the connection pool."""
        self._client.close()


class AsyncPublisher(_Publisher[AsyncClient], Awaiting):
    """``Publisher`` for asyncio applications (``redis.asyncio``)."""

    def _connect(self, settings: Settings) -> AsyncClient:
        return async_client(settings)

    async def aclose(self) -> None:
        """Release the connection pool."""
        await self._client.aclose()
