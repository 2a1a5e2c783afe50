"""workers.ssf_poll: a Poller against a local HTTPS transmitter (a throw-away CA) and a real
Redis: delivered SETs acknowledged, refused ones in setErrs, transient ones redelivered, one
poller per transmitter (the Redis lease), HTTPS rules, the bearer token never logged."""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
import redis
import structlog
from pydantic import SecretStr
from tls_harness import HttpsServer, Pki, make_pki

from sessionsvc.errors import ConfigError, IdpKeysUnavailable, IdpTokenRejected, StoreUnavailable
from sessionsvc.idp.trust import PollSource
from tests.conftest import leaked_parts
from workers.health import HealthState
from workers.ssf_poll import Poller, PollFailed, https_poster

pytestmark = pytest.mark.redis

TOKEN = "poll-" + secrets.token_urlsafe(32)
LEASE = "ss:{rev}:ssf-poll:test"


class Transmitter:
    """An RFC 8936 poll endpoint: serves its queued SETs (oldest first, up to maxEvents),
    drops the acknowledged and refused ones, records every request by the token it bore."""

    def __init__(self, pki: Pki, tokens: tuple[str, ...] = (TOKEN,)) -> None:
        self.queue: dict[str, str] = {}
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.acked: list[str] = []
        self.errors: dict[str, Any] = {}
        self.status, self.headers, self.raw = 200, {"content-type": "application/json"}, b""
        self.lock = threading.Lock()
        t = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                auth = self.headers.get("authorization", "")
                doc = json.loads(self.rfile.read(int(self.headers["content-length"])))
                with t.lock:
                    if auth.removeprefix("Bearer ") not in tokens:
                        return self._send(401, b'{"err": "authentication_failed"}')
                    t.requests.append((auth.removeprefix("Bearer "), doc))
                    for jti in doc.get("ack", []):
                        t.acked.append(jti)
                        t.queue.pop(jti, None)
                    for jti, err in doc.get("setErrs", {}).items():
                        t.errors[jti] = err
                        t.queue.pop(jti, None)
                    sets = dict(list(t.queue.items())[: doc["maxEvents"]])
                    more = len(t.queue) > len(sets)
                body = t.raw or json.dumps({"sets": sets, "moreAvailable": more}).encode()
                return self._send(t.status, body)

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                for name, value in t.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.https = HttpsServer(Handler, pki)

    @property
    def url(self) -> str:
        return self.https.url("/ssf/poll")

    def pollers(self) -> list[str]:
        """The token of every request, in order (which poller polled)."""
        with self.lock:
            return [token for token, _ in self.requests]

    def close(self) -> None:
        self.https.close()


class Receiver:
    """``deliver``: records each SET; ``refuse-*`` are refused, ``flaky-*`` fail once with
    ``transient`` (then are delivered)."""

    def __init__(self, transient: type[Exception] = IdpKeysUnavailable) -> None:
        self.delivered: list[str] = []
        self.attempts: list[str] = []
        self.transient = transient

    def __call__(self, token: str) -> None:
        self.attempts.append(token)
        if token.startswith("refuse"):
            raise IdpTokenRejected("invalid_audience", "bad_audience", "not for us")
        if token.startswith("flaky") and self.attempts.count(token) == 1:
            raise self.transient("keys not fetched yet")
        self.delivered.append(token)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def transmitter(pki: Pki) -> Iterator[Transmitter]:
    t = Transmitter(pki, (TOKEN, TOKEN + "-b"))
    try:
        yield t
    finally:
        t.close()


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    try:
        yield c
    finally:
        c.close()


MakePoller = Callable[..., Poller]


@pytest.fixture
def make_poller(transmitter: Transmitter, pki: Pki, client: redis.Redis) -> Iterator[MakePoller]:
    made: list[Poller] = []

    def make(deliver: Callable[[str], None], token: str = TOKEN, **kwargs: Any) -> Poller:
        source = PollSource(
            url=transmitter.url,
            token=SecretStr(token),
            interval=kwargs.pop("interval", 0.1),
            max_events=kwargs.pop("max_events", 2),
        )
        kwargs.setdefault("lease_ttl", 0.6)
        poller = Poller(
            "https://idp.test", source, deliver, ca_file=pki.ca, redis=client, lease_key=LEASE,
            **kwargs,
        )  # fmt: skip
        made.append(poller)
        return poller

    yield make
    for poller in made:
        poller.stop()


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# --- delivery and acknowledgement ----------------------------------------------------------


def test_each_set_is_delivered_once_and_acknowledged(
    transmitter: Transmitter, make_poller: MakePoller
) -> None:
    transmitter.queue = {"j1": "set-1", "j2": "set-2", "j3": "set-3"}
    receiver = Receiver()
    make_poller(receiver).start()
    wait_for(lambda: transmitter.acked == ["j1", "j2", "j3"])
    time.sleep(0.3)  # a few more polls
    assert receiver.delivered == ["set-1", "set-2", "set-3"]
    assert transmitter.acked == ["j1", "j2", "j3"] and not transmitter.errors


def test_a_refused_set_comes_back_as_set_errs(
    transmitter: Transmitter, make_poller: MakePoller
) -> None:
    transmitter.queue = {"j1": "refuse-1"}
    make_poller(Receiver()).start()
    wait_for(lambda: "j1" in transmitter.errors)
    assert transmitter.errors["j1"] == {
        "err": "invalid_audience",
        "description": "bad_audience: not for us",
    }
    assert transmitter.acked == []


@pytest.mark.parametrize("error", [IdpKeysUnavailable, StoreUnavailable])
def test_a_transient_failure_is_not_acknowledged_and_delivered_again(
    transmitter: Transmitter, make_poller: MakePoller, error: type[Exception]
) -> None:
    transmitter.queue = {"j1": "flaky-1"}
    receiver = Receiver(error)
    make_poller(receiver).start()
    wait_for(lambda: transmitter.acked == ["j1"])
    assert receiver.attempts == ["flaky-1", "flaky-1"] and receiver.delivered == ["flaky-1"]
    first_ack = next(i for i, (_, doc) in enumerate(transmitter.requests) if "ack" in doc)
    assert first_ack >= 2  # the poll after the failure acknowledged nothing
    assert all("setErrs" not in doc for _, doc in transmitter.requests)


def test_the_bearer_token_is_presented(transmitter: Transmitter, make_poller: MakePoller) -> None:
    make_poller(Receiver()).start()
    wait_for(lambda: len(transmitter.pollers()) >= 1)
    assert transmitter.pollers()[0] == TOKEN


def test_a_poll_reports_success_to_health(
    transmitter: Transmitter, make_poller: MakePoller
) -> None:
    health = HealthState()
    make_poller(Receiver(), health=health).start()
    wait_for(lambda: "ssf_poll:https://idp.test" in health.ok_at)
    assert not health.failing


def test_a_failing_poll_reports_failure_to_health(
    transmitter: Transmitter, make_poller: MakePoller
) -> None:
    health = HealthState()
    make_poller(Receiver(), token="wrong-token", health=health).start()
    wait_for(lambda: "ssf_poll:https://idp.test" in health.failing)
    assert health.failing["ssf_poll:https://idp.test"] == "PollFailed: transmitter answered 401"


def test_a_bad_response_is_a_failed_poll(transmitter: Transmitter, make_poller: MakePoller) -> None:
    transmitter.raw = b'{"sets": ["set-1"]}'
    receiver, health = Receiver(), HealthState()
    make_poller(receiver, health=health).start()
    wait_for(lambda: "ssf_poll:https://idp.test" in health.failing)
    assert health.failing["ssf_poll:https://idp.test"].startswith("PollResponseError: sets is")
    assert receiver.attempts == []


def test_the_poller_outlives_an_unexpected_error(
    transmitter: Transmitter, make_poller: MakePoller
) -> None:
    calls: list[bytes] = []

    def fetch(body: bytes) -> bytes:
        calls.append(body)
        if len(calls) == 1:
            raise RuntimeError("a bug")
        return b'{"sets": {"j1": "set-1"}}' if len(calls) == 2 else b'{"sets": {}}'

    receiver, health = Receiver(), HealthState()
    make_poller(receiver, fetch=fetch, health=health).start()
    wait_for(lambda: receiver.delivered == ["set-1"], timeout=3.0)  # after a 1 s backoff
    wait_for(lambda: "ssf_poll:https://idp.test" in health.ok_at)


def test_the_bearer_token_never_appears_in_logs(
    transmitter: Transmitter,
    make_poller: MakePoller,
    caplog: pytest.LogCaptureFixture,
) -> None:
    transmitter.queue = {"j1": "set-1", "j2": "refuse-2", "j3": "flaky-3"}
    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs() as logs:
        poller = make_poller(Receiver())
        poller.start()
        wait_for(lambda: transmitter.acked == ["j1", "j3"])
        transmitter.status = 503  # failures are logged too
        wait_for(lambda: any(e["event"] == "ssf_poll_failed" for e in logs))
        assert poller.stop()
    assert {"ssf_poll", "ssf_poll_refused", "ssf_poll_transient"} <= {e["event"] for e in logs}
    text = repr(logs) + caplog.text
    assert leaked_parts(text, TOKEN, size=8) == []


# --- one poller per transmitter ------------------------------------------------------------


def test_only_the_lease_holder_polls(transmitter: Transmitter, make_poller: MakePoller) -> None:
    first = make_poller(Receiver()).start()
    wait_for(lambda: first.holding)
    make_poller(Receiver(), token=TOKEN + "-b").start()
    time.sleep(1.0)  # more than a lease's life: the holder keeps it
    assert len(transmitter.pollers()) > 3
    assert set(transmitter.pollers()) == {TOKEN}


def test_the_other_poller_takes_over_after_the_first_stops(
    transmitter: Transmitter, make_poller: MakePoller, client: redis.Redis
) -> None:
    first = make_poller(Receiver()).start()
    wait_for(lambda: first.holding)
    second = make_poller(Receiver(), token=TOKEN + "-b").start()
    assert first.stop()
    assert client.get(LEASE) in (None, second.consumer.encode())  # released at once
    wait_for(lambda: second.holding)
    count = len(transmitter.pollers())
    wait_for(lambda: len(transmitter.pollers()) > count)
    assert transmitter.pollers()[count:] == [TOKEN + "-b"] * len(transmitter.pollers()[count:])


def test_a_lease_left_by_a_dead_holder_is_taken_once_it_expires(
    transmitter: Transmitter, make_poller: MakePoller, client: redis.Redis
) -> None:
    client.set(LEASE, "dead-worker", px=800)
    poller = make_poller(Receiver()).start()
    time.sleep(0.4)
    assert transmitter.pollers() == []
    wait_for(lambda: poller.holding)
    wait_for(lambda: len(transmitter.pollers()) > 0)


def test_stop_is_quick_and_releases_the_lease(
    transmitter: Transmitter, make_poller: MakePoller, client: redis.Redis
) -> None:
    poller = make_poller(Receiver(), lease_ttl=15.0)
    poller.start()
    wait_for(lambda: poller.holding)
    started = time.monotonic()
    assert poller.stop()
    assert time.monotonic() - started < 1.0
    assert client.get(LEASE) is None


def test_acknowledgements_pending_at_stop_are_sent(
    transmitter: Transmitter, make_poller: MakePoller
) -> None:
    transmitter.queue = {"j1": "set-1", "j2": "set-2"}
    stopping = threading.Event()
    poller: Poller | None = None

    def deliver(token: str) -> None:  # stop between the two deliveries
        if token == "set-1":
            stopping.set()
            assert poller is not None
            poller._stop.set()

    poller = make_poller(deliver)
    poller.start()
    wait_for(stopping.is_set)
    assert poller.stop()
    assert transmitter.acked == ["j1"] and "j2" in transmitter.queue
    assert transmitter.requests[-1][1] == {"maxEvents": 0, "returnImmediately": True, "ack": ["j1"]}


# --- HTTPS ---------------------------------------------------------------------------------


def test_a_certificate_of_an_untrusted_ca_is_refused(transmitter: Transmitter) -> None:
    fetch = https_poster(transmitter.url, SecretStr(TOKEN), None)  # the system CAs
    with pytest.raises(PollFailed, match="cannot reach"):
        fetch(b"{}")


def test_a_redirect_is_not_followed(transmitter: Transmitter, pki: Pki) -> None:
    transmitter.status = 302
    transmitter.headers["location"] = "https://127.0.0.1:1/elsewhere"
    with pytest.raises(PollFailed, match="302"):
        https_poster(transmitter.url, SecretStr(TOKEN), pki.ca)(b'{"maxEvents": 1}')


def test_a_response_over_the_limit_is_refused(transmitter: Transmitter, pki: Pki) -> None:
    transmitter.raw = b'{"sets": {}, "x": "' + b"y" * (1 << 20) + b'"}'
    with pytest.raises(PollFailed, match="over"):
        https_poster(transmitter.url, SecretStr(TOKEN), pki.ca)(b'{"maxEvents": 1}')


def test_a_plain_http_url_is_refused() -> None:
    with pytest.raises(ConfigError, match="https://"):
        https_poster("http://idp.test/poll", None, None)
