"""The pub/sub intake: events PUBLISHed on ``<ns>:events`` are forwarded into the stream.

Pub/sub is fire-and-forget: a message published while no worker is subscribed, or during a
reconnect, is lost — the stream is the durable intake, pub/sub a convenience. Every worker
subscribes; a digest-keyed ``SET NX`` kept 2 seconds makes exactly one of them forward each
message, so the consumer group then applies it once like any other entry. A message that does not
parse goes to the dead-letter stream with the raw text.
Two byte-identical messages published within those 2 seconds count as one (the second is
counted in ``sessionsvc_worker_pubsub_duplicates``); give each message a unique ``id`` to avoid
even that, or use the stream.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import redis
import structlog

from sessionsvc._scripts import source
from sessionsvc.config import Settings
from sessionsvc.events import EventRejected, encode_fields, parse_message
from sessionsvc.redisconn import blocking_client

from .metrics import WorkerMetrics

__all__ = ["PubSubForwarder"]

log = structlog.get_logger("workers.pubsub")
FORWARD = source("forward")
DEDUP_SECONDS = 2  # covers every worker hearing one PUBLISH; see the module docstring


class PubSubForwarder:
    """Subscribes to the events channel in a daemon thread and forwards into the stream."""

    def __init__(self, settings: Settings, metrics: WorkerMetrics) -> None:
        ns = settings.namespace
        self.channel = self.stream = f"{ns}:events"
        self.dlq = f"{ns}:dlq"
        self.metrics = metrics
        self.client = blocking_client(settings, 1.0, "sessionsvc-worker-pubsub")
        self._forward = self.client.register_script(FORWARD)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pubsub-forwarder", daemon=True)

    def start(self) -> PubSubForwarder:
        """Subscribe in the background."""
        self._thread.start()
        return self

    def close(self) -> None:
        """Unsubscribe and stop (within a second)."""
        self._stop.set()
        self._thread.join(timeout=5)
        self.client.close()

    def handle(self, data: bytes) -> None:
        """Forward one message (or dead-letter it)."""
        try:
            event = parse_message(data)
        except EventRejected as exc:
            self.client.xadd(
                self.dlq,
                {
                    "dlq:error": exc.code,
                    "dlq:detail": exc.detail[:500],
                    "dlq:source": "pubsub",
                    "message": data,
                },
            )
            self.metrics.events.labels("invalid", "dead_letter").inc()
            log.warning("pubsub_dead_letter", error=exc.code)
            return
        digest = hashlib.sha256(data).hexdigest()[:32]
        dedup = f"{{{self.stream}}}:dedup:{digest}"
        flat = [x for pair in encode_fields(event).items() for x in pair]
        if self._forward(keys=[self.stream, dedup], args=[DEDUP_SECONDS, *flat]) is None:
            self.metrics.pubsub_duplicates.inc()

    def _run(self) -> None:
        backoff = 0.05
        while not self._stop.is_set():
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
            try:
                pubsub.subscribe(self.channel)
                backoff = 0.05
                while not self._stop.is_set():
                    message: Any = pubsub.get_message(timeout=1.0)
                    if message is not None and message["type"] == "message":
                        self.handle(message["data"])
            except redis.RedisError as exc:
                log.warning("pubsub_disconnected", error=type(exc).__name__, retry_in=backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 2.0)
            finally:
                pubsub.close()
