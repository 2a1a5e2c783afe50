"""Where revocation events come in, and what each intake may send (pure, no I/O).

Redis ACLs cannot restrict a command's arguments: whoever may ``XADD`` to a stream may also trim
it (``MAXLEN 0``) or exhaust its ids (``XADD key 18446744073709551615-18446744073709551615``). So
isolation comes from the key layout: **every publisher writes a stream (and a channel) of its
own**, which no one else writes but the workers (forwarding that publisher's pub/sub messages),
and the worker reads them all. A publisher can only ever hurt its own queue.

- **trusted**: stream and channel ``<ns>:events``, written by administrators and operators (the
  CLI); every event type; ``source`` as sent.
- **forwarded**: stream ``{<ns>:events}:pubsub``, written only by workers (what they hear on the
  trusted channel); every event type; ``source`` as sent.
- **idp**: stream ``{<ns>:events}:idp.tokens`` (a ``.``: no publisher's name), written only
  by workers (the identity providers' tokens their receivers and pollers took in);
  identity-provider tokens only, no other event.
- **publisher P**: stream and channel ``{<ns>:events}:P``, written by P only (and by workers
  forwarding what P publishes); the event types configured for P; ``source`` is P.

Identity providers' tokens (a field ``logout_token`` or ``set``, verified by the issuer's keys,
not by who wrote them) are taken from the trusted and the idp intakes only (``tokens``).

Every intake key, the dead-letter stream ``{<ns>:events}:dlq``, the pub/sub dedup keys and the
identity-provider jti claims (``{<ns>:events}:idp.jti:<digest>``) share
one hash slot (the tag ``{<ns>:events}`` hashes like the key ``<ns>:events``), so the worker's
dead-letter + acknowledge transaction stays in one slot on Redis Cluster too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from sessionsvc.config import EVENT_TYPES, Settings
from sessionsvc.revocation.events import Event, EventRejected

__all__ = ["FORWARDED", "IDP", "TRUSTED", "Intake", "Intakes"]

TRUSTED: Final = "trusted"
FORWARDED: Final = "pubsub"
IDP: Final = "idp"


@dataclass(frozen=True, slots=True)
class Intake:
    """One inbound stream: its key, its pub/sub channel (if any) and what it may send."""

    name: str
    """``trusted``, ``pubsub`` or the publisher's name."""
    stream: str
    channel: str | None
    types: frozenset[str]
    owner: str | None
    """The publisher that owns this intake: it is every event's ``source``."""
    tokens: bool = False
    """Does this intake take identity providers' tokens (``logout_token``, ``set``)?"""

    def admit(self, event: Event) -> Event:
        """``event`` as this intake may apply it (``source`` = the owner), or ``EventRejected``:
        ``not_allowed`` for a type this intake may not send, ``bad_field`` for a ``source``
        that is not the owner."""
        if event.type not in self.types:
            raise EventRejected(
                "not_allowed", f"intake {self.name!r} may not send {event.type} events"
            )
        if self.owner is None or event.source == self.owner:
            return event
        if event.source is not None:
            raise EventRejected(
                "bad_field", f"source: the intake's owner ({self.owner!r}) is the source; omit it"
            )
        return event.model_copy(update={"source": self.owner})


class Intakes:
    """Every intake of a namespace: the trusted one, the forwarded one, one per publisher."""

    def __init__(self, namespace: str, publishers: dict[str, Iterable[str]]) -> None:
        base = f"{namespace}:events"
        self.tag = f"{{{base}}}"
        self.dlq = f"{self.tag}:dlq"
        everything = frozenset(EVENT_TYPES)
        self.trusted = Intake(TRUSTED, base, base, everything, None, tokens=True)
        self.forwarded = Intake(FORWARDED, f"{self.tag}:pubsub", None, everything, None)
        self.idp = Intake(IDP, f"{self.tag}:idp.tokens", None, frozenset(), None, tokens=True)
        self.publishers = {
            name: Intake(name, f"{self.tag}:{name}", f"{self.tag}:{name}", frozenset(types), name)
            for name, types in sorted(publishers.items())
        }
        self.all = [self.trusted, self.forwarded, self.idp, *self.publishers.values()]
        self.by_stream = {i.stream: i for i in self.all}
        self.by_channel = {i.channel: i for i in self.all if i.channel is not None}

    @classmethod
    def of(cls, settings: Settings) -> Intakes:
        """The intakes ``settings`` configure (namespace, ``SESSIONSVC_PUBLISHERS``)."""
        return cls(settings.namespace, dict(settings.publishers))

    @property
    def streams(self) -> list[str]:
        """Every intake stream, in reading order."""
        return [i.stream for i in self.all]

    def publisher_stream(self, name: str) -> str:
        """The stream publisher ``name`` writes (whether or not this config lists it)."""
        return f"{self.tag}:{name}"

    def dedup_key(self, digest: str) -> str:
        """The key that makes one pub/sub message forwarded once, whoever heard it."""
        return f"{self.tag}:dedup:{digest}"

    def idp_claim_key(self, digest: str) -> str:
        """The key that holds who claimed an identity provider's token (by issuer and jti)."""
        return f"{self.tag}:idp.jti:{digest}"

    def forward_target(self, channel: str) -> Intake:
        """The intake a message heard on ``channel`` is forwarded into."""
        intake = self.by_channel[channel]
        return self.forwarded if intake is self.trusted else intake
