"""The pub/sub intake: messages PUBLISHed on an intake's channel are forwarded into a stream.

Each channel has a subscription of its own (a connection and a thread): Redis disconnects a
subscriber whose output buffer overflows (a 50 MB PUBLISH does it), and that must cost the
publisher who sent it its own channel for a moment, not everyone's.

Channels: the trusted ``<ns>:events`` (forwarded into ``{<ns>:events}:pubsub``, a stream only
workers write) and each publisher's ``{<ns>:events}:<name>`` (forwarded into that publisher's own
stream, where the worker judges it like anything the publisher XADDs:
``sessionsvc.revocation.intakes``).

Pub/sub is fire-and-forget: a message published while no worker is subscribed, or during a
reconnect, is lost — the streams are the durable intakes, pub/sub a convenience. Every worker
subscribes; a digest-keyed key kept 2 seconds makes exactly one of them forward each message
(the digest covers the channel and the bytes), so the consumer group then applies it once like
any other entry. A message that does not parse, or that its intake refuses (a publisher that
exhausted its own stream's ids), goes to the dead-letter stream with a bounded copy.
Two byte-identical messages published on one channel within those 2 seconds count as one (the
second is counted in ``sessionsvc_worker_pubsub_duplicates``); give each message a unique ``id``
to avoid even that, or use the stream.
"""

from __future__ import annotations

import hashlib
import threading
import time

import redis
import structlog
from redis.exceptions import ResponseError

from sessionsvc._redis.bounded import BoundedConnection, Oversized
from sessionsvc._redis.clients import REDIS_ERRORS, blocking_client
from sessionsvc._redis.scripts import SCRIPTS, run
from sessionsvc.config import Settings
from sessionsvc.encoding import as_text
from sessionsvc.revocation.events import MAX_BYTES, EventRejected, encode_fields, parse_message
from sessionsvc.revocation.intakes import Intakes

from .core import DLQ_COPY
from .health import HealthState
from .metrics import WorkerMetrics
from .reader import unreachable

__all__ = ["PubSubForwarder"]

log = structlog.get_logger("workers.pubsub")
FORWARD = SCRIPTS["forward"]
DEAD_LETTER_ONCE = SCRIPTS["dead_letter_once"]
DEDUP_SECONDS = 2  # covers every worker hearing one PUBLISH; see the module docstring


class PubSubForwarder:
    """Subscribes to every intake channel, each in a daemon thread of its own, and forwards
    into the intakes' streams."""

    def __init__(
        self,
        settings: Settings,
        metrics: WorkerMetrics,
        health: HealthState | None = None,
        *,
        dlq_max_len: int = 100_000,
    ) -> None:
        self.intakes = Intakes.of(settings)
        self.channels = sorted(self.intakes.by_channel)
        self.metrics = metrics
        self.health = health or HealthState()
        self.dlq_max_len = dlq_max_len
        self.client = blocking_client(settings, 1.0, "sessionsvc-worker-pubsub")
        self._stop = threading.Event()
        self._failing: dict[str, str] = {}  # channel -> error: one failing channel is enough
        self._threads = [
            threading.Thread(target=self._run, args=(ch,), name=f"pubsub:{ch}", daemon=True)
            for ch in self.channels
        ]

    def start(self) -> PubSubForwarder:
        """Subscribe in the background."""
        for thread in self._threads:
            thread.start()
        return self

    def close(self) -> None:
        """Unsubscribe and stop (within a second)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self.client.close()

    def handle(self, channel: bytes | str, data: bytes) -> None:
        """Forward one message heard on ``channel`` (or dead-letter it, once)."""
        name = as_text(channel)
        target = self.intakes.forward_target(name)
        digest = hashlib.sha256(name.encode() + b"\0" + _digest_input(data)).hexdigest()[:32]
        dedup = self.intakes.dedup_key(digest)
        try:
            if isinstance(data, Oversized) or len(data) > MAX_BYTES:
                raise EventRejected("too_large", f"message is over {MAX_BYTES} bytes")
            fields = encode_fields(parse_message(data))
        except EventRejected as exc:
            self._dead_letter(name, data, dedup, exc.code, exc.detail)
            return
        flat = [x for pair in fields.items() for x in pair]
        try:
            call = FORWARD.call(
                {"stream": target.stream, "dedup": dedup},
                {"ttl": str(DEDUP_SECONDS)},
                more_argv=flat,
            )
            forwarded = run(self.client.execute_command, call)
        except ResponseError as exc:  # e.g. the publisher exhausted its own stream's ids
            detail = f"{target.stream}: {str(exc)[:200]}"
            self._dead_letter(name, data, f"{dedup}:dlq", "intake_failed", detail)
            return
        if forwarded is None:
            self.metrics.pubsub_duplicates.inc()

    def _dead_letter(self, channel: str, data: bytes, dedup: str, code: str, detail: str) -> None:
        length = getattr(data, "length", len(data))
        digest = getattr(data, "sha256", None) or hashlib.sha256(data).hexdigest()
        fields: dict[str, str | bytes] = {
            "dlq:error": code,
            "dlq:detail": detail[:500],
            "dlq:source": "pubsub",
            "dlq:channel": channel,
            "dlq:at": f"{time.time():.3f}",
            "dlq:size": str(length),
            "dlq:sha256": digest,
            "dlq:truncated": "1" if length > DLQ_COPY else "0",
            "message": bytes(data[:DLQ_COPY]),
        }
        flat = [x for pair in fields.items() for x in pair]
        call = DEAD_LETTER_ONCE.call(
            {"dlq": self.intakes.dlq, "dedup": dedup},
            {"ttl": str(DEDUP_SECONDS), "max_len": str(self.dlq_max_len)},
            more_argv=flat,
        )
        if run(self.client.execute_command, call) is None:
            return  # another worker heard it too and dead-lettered it already
        self.metrics.events.labels("invalid", "dead_letter").inc()
        self.metrics.dead_letters.labels(code).inc()
        log.warning("pubsub_dead_letter", channel=channel, error=code)

    def _run(self, channel: str) -> None:
        backoff = 0.05
        while not self._stop.is_set():
            conn = BoundedConnection(self.client, key=channel)  # 50 MB cost its first 4 KiB
            try:
                conn.send("SUBSCRIBE", channel)
                self._listen(conn, channel)
                backoff = 0.05
            except Exception as exc:  # the forwarder must outlive any one failure
                down = unreachable(self.client, exc)
                self._failing[channel] = type(exc).__name__
                self.health.failed("pubsub", f"{channel}: {type(exc).__name__}", redis_down=down)
                log.warning(
                    "pubsub_disconnected",
                    channel=channel,
                    error=type(exc).__name__,
                    retry_in=backoff,
                    exc_info=not isinstance(exc, REDIS_ERRORS),
                )
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 2.0)
            finally:
                conn.close()

    def _listen(self, conn: BoundedConnection, channel: str) -> None:
        """Forward what arrives; a ``PING`` after each quiet second proves the subscription."""
        subscribed, pinged = False, False
        while not self._stop.is_set():
            message = conn.next_message(timeout=1.0)
            if message is None:
                if pinged:  # no pong within a second and a socket timeout: not alive
                    raise redis.TimeoutError("no answer to PING")
                conn.send("PING")
                pinged = True
                continue
            kind = as_text(message[0]) if isinstance(message, list) and message else ""
            if kind == "message" and len(message) == 3:
                self.handle(message[1], message[2])
            elif kind == "subscribe":
                subscribed = True
            elif kind == "pong" or message == b"PONG":  # (RESP3: a plain reply, as on a cluster)
                pinged = False
            elif isinstance(message, Exception):  # e.g. NOPERM for the channel
                raise message
            if subscribed:
                self._failing.pop(channel, None)
                if not self._failing:  # the chore succeeds only while every channel does
                    self.health.succeeded("pubsub")


def _digest_input(data: bytes) -> bytes:
    """What identifies a message: its bytes, or for an oversized one its length and digest."""
    if isinstance(data, Oversized):
        return b"oversized:%d:%s" % (data.length, data.sha256.encode())
    return bytes(data)
