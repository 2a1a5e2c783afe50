"""TLS end to end: every sessionsvc client over ``rediss://`` to a real redis-server that speaks
TLS only (``--port 0 --tls-port``), with a throw-away CA made here (``tls_harness``). Sessions,
a revocation from publisher through worker to a following validator, the pub/sub forwarder,
the hot connections, the CLI; a wrong CA, a wrong host name and a missing client certificate
refused with a clear error that quotes no secret."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from revocation_harness import (
    Tokens,
    feed_settings,
    following,
    outcome,
    raw_client,
    running_worker,
    wait_for,
    wait_subscribed,
)
from tls_harness import Pki, make_pki

from sessionsvc import (
    AsyncSessionService,
    Publisher,
    SessionService,
    Settings,
    StoreUnavailable,
    TokenRejected,
)
from sessionsvc._redis.bounded import BoundedConnection, Oversized
from sessionsvc._redis.clients import async_client, blocking_client, sync_client
from sessionsvc._redis.hotconn import AsyncHotConnection, HotConnection
from sessionsvc.cli.main import main
from sessionsvc.embedded import RedisProcess, ServerTLS, free_port

pytestmark = pytest.mark.redis

PASSWORD = "Pw-never-shown-4e1b"


def start(directory: Path, tls: ServerTLS) -> RedisProcess:
    """A TLS-only redis-server on a free port (another one if that port was taken meanwhile)."""
    server = RedisProcess(directory, tls=tls)
    for _ in range(3):
        try:
            return server.start()
        except RuntimeError:
            server.port = free_port()
    return server.start()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_server(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    """Verifies client certificates when given (``optional``), demands none."""
    server = start(tmp_path_factory.mktemp("redis-tls"), pki.server("optional"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mtls_server(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    """Demands a client certificate signed by the CA (``--tls-auth-clients yes``)."""
    server = start(tmp_path_factory.mktemp("redis-mtls"), pki.server("yes"))
    yield server
    server.stop()


@pytest.fixture
def tls_url(tls_server: RedisProcess, pki: Pki) -> str:
    """The TLS server's ``rediss://`` URL, emptied for this test."""
    assert tls_server.tls is not None
    with raw_client(tls_server.url, **tls_server.tls.client_options()) as client:
        client.flushall()
    return tls_server.url


def tls_settings(url: str, pki: Pki, **overrides: Any) -> Settings:
    """Feed settings for ``url`` trusting ``pki``'s CA."""
    return feed_settings(url, redis_ca_file=str(pki.ca), **overrides)


def store_error(settings: Settings) -> str:
    """The message of the ``StoreUnavailable`` a login with ``settings`` ends in."""
    with SessionService(settings) as service, pytest.raises(StoreUnavailable) as info:
        service.login("alice")
    return str(info.value)


def with_password(url: str) -> str:
    return url.replace("rediss://", f"rediss://default:{PASSWORD}@")


def test_login_refresh_logout_over_tls(tls_url: str, pki: Pki) -> None:
    with SessionService(tls_settings(tls_url, pki)) as service:
        pair = service.login("alice")
        rotated = service.refresh(pair.refresh_token)
        assert service.logout(rotated.session_id) is True
        with pytest.raises(TokenRejected):
            service.refresh(rotated.refresh_token)


def test_async_sessions_over_tls(tls_url: str, pki: Pki) -> None:
    async def scenario() -> tuple[str, list[str]]:
        async with AsyncSessionService(tls_settings(tls_url, pki)) as service:
            pair = await service.login("alice")
            listed = await service.list_sessions("alice")
            return pair.session_id, [info.session_id for info in listed]

    made, listed = asyncio.run(scenario())
    assert listed == [made]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_published_revocation_reaches_a_following_validator_through_the_worker(
    tls_url: str, pki: Pki, mode: str
) -> None:
    settings = tls_settings(tls_url, pki)
    tokens = Tokens(settings)
    victim, bystander = tokens.access("alice", "S-1"), tokens.access("alice", "S-2")
    with (
        following(settings, mode) as validator,
        running_worker(settings),
        contextlib.closing(Publisher(settings)) as publisher,
    ):
        assert outcome(validator, victim) == "ok"
        publisher.revoke_session("S-1", reason="logout")
        wait_for(lambda: outcome(validator, victim) == "revoked", "the revocation")
        assert outcome(validator, bystander) == "ok"


def test_the_pubsub_forwarder_hands_an_event_to_the_worker(tls_url: str, pki: Pki) -> None:
    settings = tls_settings(tls_url, pki)
    victim = Tokens(settings).access("bob", "S-9")
    with (
        following(settings) as validator,
        running_worker(settings, pubsub=True),
        raw_client(tls_url, ssl_ca_certs=str(pki.ca)) as client,
    ):
        wait_subscribed(client)
        client.publish("ss:events", json.dumps({"type": "session.revoke", "sid": "S-9"}))
        wait_for(lambda: outcome(validator, victim) == "revoked", "the forwarded revocation")


def test_a_hot_connection_inherits_the_tls_handshake(tls_url: str, pki: Pki) -> None:
    client = blocking_client(tls_settings(tls_url, pki), 0.1)
    hot = HotConnection(client)
    try:
        assert hot("PING") == b"PONG"
        assert isinstance(hot._conn._sock, ssl.SSLSocket)
    finally:
        hot.close()
        client.close()


def test_an_async_hot_connection_inherits_the_tls_handshake(tls_url: str, pki: Pki) -> None:
    async def ping() -> tuple[Any, object]:
        client = async_client(tls_settings(tls_url, pki))
        hot = AsyncHotConnection(client)
        try:
            reply = await hot("PING")
            return reply, hot._conn._writer.get_extra_info("ssl_object")
        finally:
            await hot.aclose()
            await client.aclose()

    reply, tls = asyncio.run(ping())
    assert reply == b"PONG" and isinstance(tls, ssl.SSLObject)


def test_a_bounded_connection_reads_a_reply_of_many_tls_records(tls_url: str, pki: Pki) -> None:
    """200 kB arrive in a dozen TLS records: the slow path bounds them like plain TCP."""
    client = sync_client(tls_settings(tls_url, pki))
    bounded = BoundedConnection(client, max_bulk=64, fast_limit=1024)
    try:
        client.set("big", b"x" * 200_000)
        reply = bounded("GET", "big")
        assert isinstance(reply, Oversized) and reply.length == 200_000
        assert bounded("PING") == b"PONG"
    finally:
        bounded.close()
        client.close()


def test_the_cli_works_over_tls(
    tls_url: str, pki: Pki, clean_env: None, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    settings = tls_settings(tls_url, pki)
    with SessionService(settings) as service:
        service.login("carol")
    monkeypatch.setenv("SESSIONSVC_REDIS_URL", tls_url)
    monkeypatch.setenv("SESSIONSVC_REDIS_CA_FILE", str(pki.ca))
    monkeypatch.setenv("SESSIONSVC_ISSUER", settings.issuer)
    monkeypatch.setenv("SESSIONSVC_AUDIENCE", settings.audience)
    monkeypatch.setenv("SESSIONSVC_ENV", "development")
    assert main(["sessions", "list", "carol"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 1


def test_a_server_certificate_of_another_ca_is_refused(
    tls_url: str, pki: Pki, tmp_path: Path
) -> None:
    other = make_pki(tmp_path, "other")
    message = store_error(tls_settings(with_password(tls_url), other))
    assert "certificate verify failed" in message
    assert PASSWORD not in message and other.ca.read_text().splitlines()[1] not in message


def test_the_system_store_does_not_trust_a_private_ca(tls_url: str, pki: Pki) -> None:
    assert "certificate verify failed" in store_error(feed_settings(tls_url))


def test_a_certificate_for_another_host_name_is_refused(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki", "named", server_names=["127.0.0.1"])
    server = start(tmp_path / "redis", pki.server())
    try:  # the same server, by a name its certificate does not have
        message = store_error(tls_settings(server.url.replace("127.0.0.1", "localhost"), pki))
    finally:
        server.stop()
    assert "certificate verify failed" in message and "mismatch" in message


def test_a_server_demanding_client_certificates_accepts_ours(
    mtls_server: RedisProcess, pki: Pki
) -> None:
    settings = tls_settings(
        mtls_server.url,
        pki,
        redis_client_cert_file=str(pki.client_cert),
        redis_client_key_file=str(pki.client_key),
    )
    with SessionService(settings) as service:
        assert service.login("dave").session_id


def test_a_server_demanding_client_certificates_refuses_a_client_without_one(
    mtls_server: RedisProcess, pki: Pki
) -> None:
    message = store_error(tls_settings(with_password(mtls_server.url), pki))
    assert message.startswith("redis: ConnectionError")
    assert PASSWORD not in message


def test_a_plain_client_cannot_reach_the_tls_server(tls_url: str) -> None:
    """The server speaks TLS only, so every passing test above went through TLS."""
    with (
        raw_client(tls_url.replace("rediss://", "redis://"), socket_timeout=2) as client,
        pytest.raises(redis.ConnectionError),
    ):
        client.ping()
