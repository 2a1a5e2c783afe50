"""workers.idp_services on a running worker: a transmitter polled (RFC 8936) until its SETs are
applied and acknowledged, and the receiver under 1,000 concurrent pushes applying every
accepted logout exactly once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
import redis
from idp_harness import TestIdp, idps_setting
from revocation_harness import feed_settings, raw_client, running_worker, wait_for
from test_ssf_poll import TOKEN, Transmitter
from tls_harness import Pki, make_pki

from sessionsvc.sessions.service import SessionService
from workers.idp_services import IdpServices

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def transmitter(pki: Pki) -> Iterator[Transmitter]:
    t = Transmitter(pki)
    try:
        yield t
    finally:
        t.close()


def test_a_polled_transmitters_events_are_applied_and_acknowledged(
    redis_url: str, transmitter: Transmitter, pki: Pki
) -> None:
    idp = TestIdp()
    poll = {"url": transmitter.url, "token": TOKEN, "interval": 0.1}
    trust = idp.trust(poll=poll, ca_file=str(pki.ca))
    settings = feed_settings(redis_url, idps=idps_setting(trust))
    sessions = SessionService(settings)
    try:
        pair = sessions.login("mia", idp_issuer=idp.issuer, idp_sid="kc-5")
        event = idp.session_revoked("kc-5", sub="mia")
        jti = str(uuid.uuid4())
        with transmitter.lock:
            transmitter.queue[jti] = event
        with running_worker(settings) as running, IdpServices.start(running.worker):
            wait_for(lambda: not sessions.list_sessions("mia"), "the session to end")
            wait_for(lambda: jti in transmitter.acked, "the acknowledgement")
        assert pair.session_id not in {s.session_id for s in sessions.list_sessions("mia")}
    finally:
        sessions.close()


@pytest.mark.faults
def test_the_receiver_under_a_thousand_concurrent_pushes_applies_each_logout_once(
    redis_url: str,
) -> None:
    idp = TestIdp()
    settings = feed_settings(redis_url, idps=idps_setting(idp.trust()))
    tokens = [idp.logout_token(sub=f"user-{i}") for i in range(900)]
    tokens += tokens[:100]  # the same token twice, concurrently: applied once
    with running_worker(settings) as running, IdpServices.start(running.worker, port=0) as svc:
        assert svc.port is not None
        pushes = asyncio.run(_push_all(svc.port, tokens))
        finals = [p[-1] for p in pushes]
        assert len(finals) == 1000  # every push answered (a 503 is retried, as an IdP does)
        assert finals.count(200) == 900  # each distinct logout accepted once...
        assert finals.count(400) == 100  # ...and its second copy refused as a replay
        with raw_client(redis_url, decode_responses=True) as client:
            wait_for(lambda: _idp_log_entries(client) >= 900, "every accepted logout")
            wait_for(lambda: _drained(client), "the idp intake to drain")
            assert _idp_log_entries(client) == 900  # applied exactly once each


async def _push_all(port: int, tokens: list[str]) -> list[list[int]]:
    async def once(token: str) -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        body = f"logout_token={token}".encode()
        head = (
            "POST /backchannel-logout HTTP/1.1\r\nHost: localhost\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode() + body)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 30)
        writer.close()
        await writer.wait_closed()
        return int(status_line.split()[1])

    async def push(token: str) -> list[int]:
        statuses = [await once(token)]
        while statuses[-1] == 503 and len(statuses) < 50:  # busy: Retry-After, then again
            await asyncio.sleep(0.05)
            statuses.append(await once(token))
        return statuses

    return list(await asyncio.gather(*(push(t) for t in tokens)))


def _idp_log_entries(client: redis.Redis) -> int:
    entries: list[tuple[str, dict[str, str]]] = client.xrange("ss:{rev}:log")  # type: ignore[assignment]
    return sum(1 for _, f in entries if f.get("source", "").startswith("idp:"))


def _drained(client: redis.Redis) -> bool:
    groups: list[dict[str, object]] = client.xinfo_groups("{ss:events}:idp.tokens")  # type: ignore[assignment]
    return all(g["pending"] == 0 and g["lag"] == 0 for g in groups)
