"""``Poller``: polls one transmitter's RFC 8936 endpoint for SETs, delivers and acknowledges them.

A daemon thread: poll (``workers.ssf_poll_core`` builds the body, parses the answer, paces),
``deliver(set)`` each SET (returns: acknowledged; ``IdpTokenRejected``: ``setErrs`` with its
code; ``IdpKeysUnavailable``, ``StoreUnavailable`` or anything else: neither, redelivered).

- **HTTPS** (``workers.ssf_http``): a POST of JSON with the bearer token, never logged.
- **One poller per transmitter**: only the holder of the Redis lease ``lease_key``
  (``SET NX PX``, extended while held by a compare-and-extend script, deleted on ``stop``) polls;
  the others check every third of its life and take over once it is gone. Losing it, or
  stopping, sends what is pending in an acknowledge-only request (§2.4.2) first. (A holder
  whose lease lapsed mid-batch can overlap its successor: the SETs then fetched twice are
  applied once thanks to the jti claim behind ``deliver``.)
- **Health** (chore ``ssf_poll:<issuer>``): succeeded after a poll; failed when the poll, its
  every delivery or the lease's Redis fails. Each poll's counts are logged (``ssf_poll``).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import structlog

from sessionsvc._redis.clients import REDIS_ERRORS, SyncClient
from sessionsvc._redis.scripts import SCRIPTS
from sessionsvc._redis.scripts import run as run_script
from sessionsvc.errors import IdpTokenRejected
from sessionsvc.idp.trust import PollSource

from .health import HealthState
from .reader import unreachable
from .ssf_http import DEADLINE, TIMEOUT, Fetch, PollFailed, https_poster
from .ssf_poll_core import (
    PollResponseError,
    Report,
    next_pace,
    parse_response,
    request_body,
)

__all__ = ["DEADLINE", "LEASE_TTL", "TIMEOUT", "Fetch", "PollFailed", "Poller", "https_poster"]
# (DEADLINE, TIMEOUT, Fetch, PollFailed and https_poster are workers.ssf_http's)

LEASE_TTL: Final = 15.0

log = structlog.get_logger("workers.ssf_poll")


class Poller:
    """Polls ``source`` for ``issuer`` while holding ``lease_key``; ``start()``, ``stop()``."""

    def __init__(
        self,
        issuer: str,
        source: PollSource,
        deliver: Callable[[str], None],
        *,
        ca_file: Path | None,
        redis: SyncClient,
        lease_key: str,
        health: HealthState | None = None,
        clock: Callable[[], float] = time.monotonic,
        fetch: Fetch | None = None,
        lease_ttl: float = LEASE_TTL,
    ) -> None:
        self.issuer, self.source, self.deliver = issuer, source, deliver
        self.client, self.lease_key, self.health, self.clock = redis, lease_key, health, clock
        self.fetch = fetch or https_poster(source.url, source.token, ca_file)
        self.consumer = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self.chore = f"ssf_poll:{issuer}"
        self.lease_ms, self.check_every = int(lease_ttl * 1000), lease_ttl / 3
        self.holding = False
        self._renew_at = 0.0
        self._pending = Report()
        self._failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ssf-poll", daemon=True)

    def start(self) -> Poller:
        """Poll in the background."""
        self._thread.start()
        return self

    def _script(self, name: str, **argv: str) -> Any:
        """Run a lease script of the registry on the lease key."""
        call = SCRIPTS[name].call({"lease": self.lease_key}, argv)
        return run_script(self.client.execute_command, call)

    def stop(self, timeout: float = TIMEOUT + DEADLINE + 5) -> bool:
        """Stop after the SET in hand: send what is pending, release the lease. False if the
        thread did not end within ``timeout`` seconds (it is a daemon)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        next_poll = 0.0
        try:
            while not self._stop.is_set():
                if not self._keep_lease():
                    self._stop.wait(self.check_every)
                    continue
                if (now := self.clock()) < next_poll:
                    self._stop.wait(min(next_poll - now, self.check_every))
                    continue
                try:
                    next_poll = self.clock() + self.poll_once()
                except Exception as exc:  # a bug: the poller outlives it, backing off
                    self._failures, wait = next_pace(self._failures, self.source.interval, None)
                    log.error("ssf_poll_error", issuer=self.issuer, retry_in=wait, exc_info=True)
                    self._report(type(exc).__name__)
                    next_poll = self.clock() + wait
        finally:
            self._let_go()

    def poll_once(self) -> float:
        """One poll and its deliveries (the lease is the caller's); the seconds to wait."""
        try:
            response = parse_response(
                self.fetch(request_body(self._pending, self.source.max_events)),
                self.source.max_events,
            )
        except (PollFailed, PollResponseError) as exc:
            self._failures, wait = next_pace(self._failures, self.source.interval, None)
            log.warning("ssf_poll_failed", issuer=self.issuer, error=str(exc), retry_in=wait)
            self._report(f"{type(exc).__name__}: {str(exc)[:100]}")
            return wait
        report = self._pending = Report()
        sets = list(response.sets.items())
        for i, (jti, token) in enumerate(sets):
            if self._stop.is_set() or not self._keep_lease(due_only=True):
                report.transient += [j for j, _ in sets[i:]]  # untried: redelivered
                break
            self._deliver(report, jti, token)
        self._failures, wait = next_pace(self._failures, self.source.interval, report, response)
        level = log.info if response.sets else log.debug
        level(
            "ssf_poll", issuer=self.issuer, received=len(response.sets), acked=len(report.acks),
            refused=len(report.errors), transient=len(report.transient),
            more=response.more_available, next_in=wait,
        )  # fmt: skip
        self._report("every delivery failed" if report.stalled else None)
        return wait

    def _deliver(self, report: Report, jti: str, token: str) -> None:
        try:
            self.deliver(token)
        except IdpTokenRejected as exc:
            report.refused(jti, exc.code, f"{exc.reason}: {exc.detail}")
            log.warning("ssf_poll_refused", issuer=self.issuer, jti=jti, error=exc.code)
        except Exception as exc:  # transient (keys, Redis) or a bug: delivered again later
            report.transient.append(jti)
            log.warning("ssf_poll_transient", issuer=self.issuer, jti=jti, error=type(exc).__name__)
        else:
            report.acks.append(jti)

    def _keep_lease(self, *, due_only: bool = False) -> bool:
        """Extend the lease if ours (at most every third of its life with ``due_only``), else
        take it if free; False when another holds it or Redis fails."""
        if due_only and self.holding and self.clock() < self._renew_at:
            return True
        try:
            ours = self._script(
                "lease_extend", owner=self.consumer, ttl_ms=str(self.lease_ms)
            ) == 1 or bool(
                self.client.set(self.lease_key, self.consumer, nx=True, px=self.lease_ms)
            )
        except REDIS_ERRORS as exc:
            self._report(type(exc).__name__, redis_down=unreachable(self.client, exc))
            ours = False
        if ours != self.holding:
            log.info("ssf_poll_lease", issuer=self.issuer, consumer=self.consumer, held=ours)
            if not ours:
                self._flush()
        self.holding, self._renew_at = ours, self.clock() + self.check_every
        return ours

    def _flush(self) -> None:
        """Send pending acks and errors in an acknowledge-only request (best effort)."""
        if self._pending.reportable:
            try:
                self.fetch(request_body(self._pending, 0))
            except PollFailed as exc:
                log.warning("ssf_poll_flush_failed", issuer=self.issuer, error=str(exc))
            self._pending = Report()

    def _let_go(self) -> None:
        self._flush()
        if self.holding:
            try:
                self._script("lease_release", owner=self.consumer)
            except REDIS_ERRORS as exc:  # it expires on its own
                log.warning("ssf_poll_release_failed", issuer=self.issuer, error=type(exc).__name__)
            self.holding = False

    def _report(self, error: str | None, *, redis_down: bool | None = None) -> None:
        """Health: succeeded (``error`` None) or failed; ``redis_down`` None keeps the flag (a
        transmitter's failure says nothing about Redis)."""
        if self.health is None:
            return
        if error is None:
            self.health.succeeded(self.chore)
            return
        down = self.health.redis_down if redis_down is None else redis_down
        self.health.failed(self.chore, error, redis_down=down)
