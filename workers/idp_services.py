"""The worker's identity-provider services: the receiver (``--receiver-port``) and one poller
per transmitter with a ``poll`` endpoint (``SESSIONSVC_IDPS``), started beside the loop.

The receiver is a listener of its own, never the health and metrics one: identity providers
must reach it, and must not reach ``/metrics``. What both take in goes through
``IdpReceiverIntake`` into the idp intake, where the worker applies it like any entry.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from .idp_intake import IdpReceiverIntake
from .receiver import ReceiverCore
from .receiver_http import ReceiverServer
from .ssf_poll import Poller
from .worker import Worker

__all__ = ["IdpServices"]


@dataclass
class IdpServices:
    """The receiver and pollers of one worker; ``close()`` stops them all."""

    intake: IdpReceiverIntake
    receiver: ReceiverServer | None = None
    pollers: list[Poller] = field(default_factory=list)

    @classmethod
    def start(
        cls, worker: Worker, *, host: str = "127.0.0.1", port: int | None = None
    ) -> IdpServices:
        """Start the receiver on ``host:port`` (None: no receiver) and the pollers."""
        intake = IdpReceiverIntake(worker.settings, worker.idps, worker.idp_keys, worker.client)
        services = cls(intake)
        metrics = worker.metrics

        def observe(route: str, outcome: str, reason: str) -> None:
            metrics.receiver.labels(route, outcome, reason).inc()

        if port is not None:
            core = ReceiverCore(intake, observe=observe)
            # (512 connections: the worker's other sockets share its file-descriptor limit)
            services.receiver = ReceiverServer(core, host, port, max_connections=512)
            services.receiver.start()
        for trust in worker.idps:
            if trust.poll is None:
                continue
            digest = hashlib.sha256(trust.poll.url.encode()).hexdigest()[:32]
            poller = Poller(
                trust.issuer,
                trust.poll,
                partial(intake.polled, trust.issuer),
                ca_file=trust.ca_file,
                redis=worker.client,
                lease_key=f"{worker.intakes.tag}:idp.poll:{digest}",
                health=None,  # a transmitter that is away must not restart the worker: it logs
            )
            poller.start()
            services.pollers.append(poller)
        return services

    @property
    def port(self) -> int | None:
        """The receiver's port (None without a receiver)."""
        return None if self.receiver is None else self.receiver.port

    def close(self) -> None:
        """Stop the pollers and the receiver."""
        for poller in self.pollers:
            poller.stop()
        if self.receiver is not None:
            self.receiver.close()

    def __enter__(self) -> IdpServices:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
