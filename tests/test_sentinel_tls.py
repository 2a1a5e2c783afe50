"""TLS and Sentinel together: a primary, a replica and three sentinels that speak TLS only
(``--tls-port``, ``--tls-replication yes``) with a throw-away CA (``tls_harness``). Every client
asks the sentinels over TLS and connects to the primary they name over TLS; after a failover
sessions, the feed and the worker go on against the promoted replica; a client that does not
trust the CA finds no primary, with an error that quotes no secret."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis_sentinel import SERVICE, SentinelGroup
from revocation_harness import Tokens, feed_settings, following, outcome, running_worker, wait_for
from tls_harness import Pki, make_pki

from sessionsvc import Publisher, SessionService, Settings, StoreUnavailable
from sessionsvc._redis.bounded import BoundedConnection
from sessionsvc._redis.clients import sync_client
from sessionsvc._redis.hotconn import HotConnection

pytestmark = [pytest.mark.redis, pytest.mark.sentinel]

NOWHERE = "rediss://127.0.0.1:1/0"  # with sentinels: only the URL's scheme, user, password, db


@contextlib.contextmanager
def tls_group(directory: Path, pki: Pki) -> Iterator[SentinelGroup]:
    group = SentinelGroup(directory, tls=pki.server("optional"))
    try:
        yield group.start()
    finally:
        group.stop()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[SentinelGroup]:
    """A TLS-only group for the tests that do not fail over."""
    with tls_group(tmp_path_factory.mktemp("sentinel-tls"), pki) as group:
        yield group


@pytest.fixture
def group(tmp_path: Path, pki: Pki) -> Iterator[SentinelGroup]:
    """A TLS-only group for one test (it fails over)."""
    with tls_group(tmp_path / "sentinel", pki) as group:
        yield group


def tls_settings(group: SentinelGroup, ca: Path, **overrides: Any) -> Settings:
    values = {"redis_sentinels": group.addresses, "redis_service": SERVICE, **overrides}
    return feed_settings(NOWHERE, redis_ca_file=str(ca), **values)


def test_sessions_reach_the_primary_the_sentinels_name_over_tls(
    shared: SentinelGroup, pki: Pki
) -> None:
    with SessionService(tls_settings(shared, pki.ca)) as service:
        pair = service.login("alice")
        assert service.refresh(pair.refresh_token).session_id == pair.session_id
        assert [s.session_id for s in service.list_sessions("alice")] == [pair.session_id]


@pytest.mark.parametrize("kind", [HotConnection, BoundedConnection])
def test_the_hot_connections_speak_tls_to_the_primary(
    shared: SentinelGroup, pki: Pki, kind: type[HotConnection]
) -> None:
    client = sync_client(tls_settings(shared, pki.ca))
    conn = kind(client)
    try:
        assert conn("SET", "probe", "1") == b"OK"
        assert conn("ROLE")[0] == b"master"
    finally:
        conn.close()
        client.close()


def test_a_revocation_and_sessions_go_on_after_a_failover_over_tls(
    group: SentinelGroup, pki: Pki
) -> None:
    settings = tls_settings(group, pki.ca)
    tokens = Tokens(settings)
    first, second = tokens.access("bob", "S-1"), tokens.access("bob", "S-2")
    with (
        following(settings) as validator,
        running_worker(settings),
        contextlib.closing(Publisher(settings)) as publisher,
        SessionService(settings) as service,
    ):
        publisher.revoke_session("S-1")
        wait_for(lambda: outcome(validator, first) == "revoked", "the first revocation")
        assert group.replica is not None
        group.failover()
        group.wait_promoted(group.replica)
        publisher.revoke_session("S-2")  # (its retry reaches the promoted replica)
        wait_for(lambda: outcome(validator, second) == "revoked", "the revocation after it")
        assert service.login("carol").session_id
    with group.replica.client() as promoted:
        assert promoted.execute_command("ROLE")[0] == b"master"


def test_a_client_that_does_not_trust_the_ca_finds_no_primary(
    shared: SentinelGroup, tmp_path: Path
) -> None:
    stranger = make_pki(tmp_path / "other", name="other")
    password = "Sentinel-pw-never-shown-77"
    settings = tls_settings(shared, stranger.ca, redis_sentinel_password=password)
    with SessionService(settings) as service, pytest.raises(StoreUnavailable) as failure:
        service.login("alice")
    assert "No master found" in str(failure.value)
    assert password not in str(failure.value)
