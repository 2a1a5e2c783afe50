"""The sync adapters' shared side (Flask, Django): the web core run in threads on a sync
``redis.Redis`` — the feed per process, authenticating a request, the auth endpoints.

An adapter converts its framework's request into an ``Incoming`` (the native request for the
app's hooks, how to build the core's ``WebRequest``, how to read the body) and renders the
``WebResponse`` it gets back; everything between is here, once. Not pure (a lock, the feed's
thread, Redis round trips): the pure decisions stay in ``sessionsvc.integrations.web``.
"""

from __future__ import annotations

import atexit
import inspect
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import structlog

from sessionsvc._redis.run import Op, run
from sessionsvc.config import Settings
from sessionsvc.errors import SessionError, TokenRejected
from sessionsvc.integrations.web.config import WebSettings
from sessionsvc.integrations.web.http import Problem, ReuseDetected, WebRequest, WebResponse
from sessionsvc.integrations.web.live import LiveRegistry, sse_event
from sessionsvc.integrations.web.login import Identity, identity_of
from sessionsvc.integrations.web.principal import Principal, Requirement
from sessionsvc.integrations.web.statuses import problem_for
from sessionsvc.integrations.wiring import Wired
from sessionsvc.sessions.service import SessionService
from sessionsvc.validator import Validator

__all__ = ["CheckUser", "Handler", "Incoming", "SyncAuth", "event_stream"]

log = structlog.get_logger("sessionsvc.web")
CheckUser = Callable[[str, str], "Identity | str | None"]
Handler = Callable[..., Op[WebResponse]]


@dataclass(frozen=True, slots=True)
class Incoming:
    """One framework request as the sync side needs it: ``native`` (handed to the app's
    ``on_theft_detected``), ``request(form)`` (the core's ``WebRequest``, with the parsed body
    if read) and ``body()`` (the body as fields, ``Problem`` 400/413/415; read at most once
    per request by the adapter's own cache)."""

    native: object
    request: Callable[[Mapping[str, Any] | None], WebRequest]
    body: Callable[[], dict[str, Any]]


class SyncAuth(Wired[SessionService]):
    """sessionsvc for a sync framework. ``authenticate_user(username, password)`` returns the
    user's ``sub`` (or an ``Identity`` with app claims), or ``None``; it must be a plain
    function (``TypeError`` at once otherwise)."""

    framework = "a sync framework"

    def __init__(
        self,
        settings: Settings | None = None,
        web: WebSettings | None = None,
        *,
        authenticate_user: CheckUser | None = None,
        validator: Validator | None = None,
        sessions: SessionService | None = None,
        on_theft_detected: Callable[[str, Any], object] | None = None,
    ) -> None:
        if inspect.iscoroutinefunction(authenticate_user):
            raise TypeError(
                f"authenticate_user must be a plain function with {self.framework} (not async)"
            )
        self._wire(settings, web, validator, sessions, SessionService)
        self.live = LiveRegistry(self.validator.view)  # open event streams, ended by revocations
        self.validator.add_listener(self.live.revoked)
        self._check_user = authenticate_user
        self._on_theft = on_theft_detected
        self._started: int | None = None  # the process that follows the log
        self._at_exit = False
        self._lock = threading.Lock()
        self._attach()

    def _attach(self) -> None:
        """What an adapter adds once the parts exist (its routes)."""

    # -- the feed, per process ---------------------------------------------------------------

    def start(self) -> None:
        """Follow the revocation log in this process (a thread; once per process: in a forked
        worker, the feed inherited from its parent, without its thread, is started anew)."""
        with self._lock:
            if self._started == os.getpid():
                return
            if self._started is not None:  # forked: the feed's thread did not come along
                self.validator.close()
            elif not self._at_exit:
                atexit.register(self.close)
                self._at_exit = True
            self.validator.start()
            self._started = os.getpid()

    def started(self) -> None:
        """At the start of each request: the first one of a process starts the feed."""
        if self._started != os.getpid():
            self.start()

    def close(self) -> None:
        """Stop following and release the connections."""
        self.validator.close()
        self.sessions.close()
        self._started = None

    # -- authenticating ------------------------------------------------------------------------

    def principal_of(
        self,
        incoming: Incoming,
        requirement: Requirement | None = None,
        *,
        optional: bool = False,
        read_form: bool = True,
    ) -> Principal | None:
        """The request's principal, or ``Problem``; one local validation, no Redis (a
        cookie-mode form post without the CSRF header, ``read_form``: its body is read for
        the token)."""
        req = incoming.request(None)
        found = self.core.credential(req)
        if found is None:
            if optional:
                return None
            found = self.core.require_credential(req)
        try:
            claims = self.validator.validate(found.token)
        except TokenRejected as exc:
            raise self.core.rejected(exc) from None
        if read_form and self.core.needs_form(req, found):
            req = replace(req, form=incoming.body())  # the CSRF token as a field
        return self.core.accept(req, found, claims, requirement)

    # -- the endpoints -------------------------------------------------------------------------

    def run(self, incoming: Incoming, op: Op[WebResponse]) -> WebResponse:
        """Run an endpoint's op on the sync client: its response, or the refusal (a detected
        refresh-token reuse is logged and handed to ``on_theft_detected`` first)."""
        try:
            return run(self.sessions.redis, op)
        except ReuseDetected as theft:
            log.warning("refresh_token_reuse", session_id=theft.session_id)
            if self._on_theft is not None:
                self._on_theft(theft.session_id, incoming.native)
            return self.core.refusal(theft)
        except SessionError as exc:
            return self.core.failure(exc)

    def login(self, incoming: Incoming) -> WebResponse:
        """``POST <prefix>/login``: the form, the throttle, the app's check, the session."""
        try:
            req = incoming.request(incoming.body())
            form = self.login_flow.form(req)
            run(self.sessions.redis, self.login_flow.gate(req, form))
            if self._check_user is None:
                raise Problem(501, "not_configured", "this app has no password login")
            identity = identity_of(self._check_user(form.username, form.password))
        except SessionError as exc:
            return self.core.refusal(problem_for(exc))
        return self.run(incoming, self.login_flow.login(req, form, identity))

    def refresh(self, incoming: Incoming, next_path: str | None) -> WebResponse:
        """``GET|POST <prefix>/refresh`` (``next_path``: the ``next`` query parameter)."""
        req = incoming.request(None)
        try:
            form = incoming.body() if req.method == "POST" else None
        except Problem as problem:
            return self.core.refusal(problem)
        return self.run(incoming, self.endpoints.refresh(replace(req, form=form), next_path))

    def signed_in(self, handler: Handler, incoming: Incoming, **path: str) -> WebResponse:
        """An endpoint for a signed-in caller (``handler``: one of ``Endpoints``)."""
        try:
            principal = self.principal_of(incoming)
        except Problem as problem:
            return self.core.refusal(problem)
        assert principal is not None
        return self.run(incoming, handler(incoming.request(None), principal, **path))

    def signed_in_routes(self) -> list[tuple[str, Handler, str]]:
        """``(path under the prefix, handler, method)`` of the endpoints for signed-in callers
        (a path parameter written ``{sid}``)."""
        e = self.endpoints
        return [
            ("/logout", e.logout, "POST"),
            ("/logout-all", e.logout_all, "POST"),
            ("/sessions", e.list_sessions, "GET"),
            ("/sessions/revoke-others", e.revoke_others, "POST"),
            ("/sessions/{sid}", e.delete_session, "DELETE"),
        ]


def event_stream(
    registry: LiveRegistry, principal: Principal, events: Iterable[Any]
) -> Iterator[str]:
    """The server-sent events of ``events`` (each a string or JSON-able ``data``) until
    ``registry`` ends the principal's stream (``event: revoked``, then the end). ``events`` runs
    in a thread of its own, asked for one item at a time, and is closed (``close()``) there
    however the stream ends (once the item it may be computing is done)."""
    # One message queue for the response: the pump's items (one at a time, on demand) and
    # the revocation (the feed's thread, or a sign-out on this node: at once).
    messages: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
    demand: queue.SimpleQueue[bool] = queue.SimpleQueue()
    pump = threading.Thread(target=_pump, args=(events, demand, messages), daemon=True)
    with registry.watch(principal.claims, lambda why: messages.put(("revoked", why))):
        pump.start()
        try:
            while True:
                demand.put(True)
                kind, value = messages.get()
                if kind == "revoked":
                    yield sse_event("revoked", {"reason": value})
                    return
                if kind == "end":
                    return
                if kind == "error":
                    raise value
                yield sse_event(None, value)
        finally:
            demand.put(False)  # the pump closes the events after the item it is on


def _pump(
    events: Iterable[Any],
    demand: queue.SimpleQueue[bool],
    messages: queue.SimpleQueue[tuple[str, Any]],
) -> None:
    source = iter(events)
    try:
        while demand.get():
            try:
                messages.put(("item", next(source)))
            except StopIteration:
                messages.put(("end", None))
                return
            except Exception as exc:
                messages.put(("error", exc))
                return
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            try:
                close()
            except Exception:
                log.exception("live_events_close_failed")
