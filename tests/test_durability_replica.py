"""``SESSIONSVC_DURABILITY`` against real servers: a primary with one replica (``replica``), a
server with and without AOF (``aof``). What an operation acknowledges at ``replica`` is on the
replica when it returns; with the replica away the operation raises ``RevocationNotDurable``
(applied on the primary, not acknowledged), the worker acknowledges nothing, and both complete
once the replica is back. Outcomes only, never timings."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from redis_server import RedisProcess
from revocation_harness import feed_settings, raw_client, running_worker, wait_for
from web_harness import ORIGIN, USERS, app_settings, check_user, web_settings

from sessionsvc import (
    AsyncSessionService,
    ConfigError,
    Publisher,
    RevocationNotDurable,
    SessionService,
    StoreUnavailable,
    TokenRejected,
)
from sessionsvc.config import Settings
from sessionsvc.integrations import fastapi as fa
from workers.worker import Worker, WorkerOptions

pytestmark = [pytest.mark.redis, pytest.mark.topology]

SID_KEY = "ss:{rev}:sid"


@dataclass
class Pair:
    """A primary and its replica; ``replica_down()`` / ``replica_up()`` stop and restart it."""

    primary: RedisProcess
    replica: RedisProcess

    def settings(self, **overrides: Any) -> Settings:
        values = {"durability": "replica", "durability_timeout": 0.2, **overrides}
        return feed_settings(self.primary.url, **values)

    def replica_down(self) -> None:
        self.replica.stop()
        wait_for(lambda: self.primary.info("replication")["connected_slaves"] == 0, "no replica")

    def replica_up(self) -> None:
        self.replica.start().wait_replicating()
        wait_for(lambda: self.primary.info("replication")["connected_slaves"] == 1, "a replica")


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    with RedisProcess(tmp_path / "primary") as primary:
        replica = RedisProcess(tmp_path / "replica", replica_of=primary.port)
        with replica:
            replica.wait_replicating()
            yield Pair(primary, replica)


def test_what_sessions_acknowledge_is_on_the_replica(pair: Pair) -> None:
    with SessionService(pair.settings()) as svc, raw_client(pair.replica.url) as replica:
        pair_a = svc.login("alice")
        rotated = svc.refresh(pair_a.refresh_token)  # a rotation: confirmed
        tag = pair_a.session_id.split(".")[0]
        key = svc.core.keys.session_of(tag, pair_a.session_id)
        assert replica.hget(key, "prev") is not None  # the consumed token is on the replica
        assert svc.logout(rotated.session_id) is True
        assert replica.zscore(SID_KEY, rotated.session_id) is not None
        assert not replica.exists(key)
        svc.login("bob")
        svc.login("bob")
        assert svc.logout_all("bob") == 2
        assert replica.hget("ss:{rev}:user", "bob") is not None


def test_async_sessions_acknowledge_on_the_replica(pair: Pair) -> None:
    async def scenario() -> str:
        async with AsyncSessionService(pair.settings()) as svc:
            tokens = await svc.login("carol")
            assert await svc.logout(tokens.session_id) is True
            return tokens.session_id

    sid = asyncio.run(scenario())
    with raw_client(pair.replica.url) as replica:
        assert replica.zscore(SID_KEY, sid) is not None


def test_without_a_replica_nothing_is_acknowledged_and_a_retry_completes(pair: Pair) -> None:
    with SessionService(pair.settings()) as svc, raw_client(pair.primary.url) as primary:
        first, second = svc.login("dave"), svc.login("erin")
        rotating = svc.login("frank")
        pair.replica_down()
        with pytest.raises(RevocationNotDurable) as caught:
            svc.logout(first.session_id)
        assert isinstance(caught.value, StoreUnavailable)
        assert "applied on the Redis primary" in str(caught.value)
        assert "retrying is safe" in str(caught.value)
        assert primary.zscore(SID_KEY, first.session_id) is not None  # applied on the primary
        with pytest.raises(RevocationNotDurable):
            svc.logout_all("erin")
        with pytest.raises(RevocationNotDurable):  # a rotation is not handed out unconfirmed
            svc.refresh(rotating.refresh_token)
        pair.replica_up()
        svc.logout(first.session_id)  # the retries: idempotent, now confirmed
        assert svc.logout_all("erin") == 0
        again = svc.refresh(rotating.refresh_token)  # within the overlap: the same answer
        assert again.session_id == rotating.session_id
    with raw_client(pair.replica.url) as replica:
        assert replica.zscore(SID_KEY, first.session_id) is not None
        assert replica.zscore(SID_KEY, second.session_id) is None
        assert replica.hget("ss:{rev}:user", "erin") is not None


def test_reuse_detected_without_a_replica_is_not_acknowledged(pair: Pair) -> None:
    with SessionService(pair.settings(refresh_overlap=0)) as svc:
        tokens = svc.login("grace")
        svc.refresh(tokens.refresh_token)
        pair.replica_down()
        with pytest.raises(RevocationNotDurable):
            svc.refresh(tokens.refresh_token)  # reuse: revoked on the primary, not confirmed
        pair.replica_up()
        with pytest.raises(TokenRejected) as caught:  # a retry: the session has ended, confirmed
            svc.refresh(tokens.refresh_token)
        assert caught.value.reason == "revoked"
    with raw_client(pair.replica.url) as replica:
        assert replica.zscore(SID_KEY, tokens.session_id) is not None


def test_a_publishers_event_is_on_the_replica_or_not_acknowledged(pair: Pair) -> None:
    publisher = Publisher(pair.settings())
    try:
        entry = publisher.revoke_session("S-pub")
        with raw_client(pair.replica.url) as replica:
            assert [e[0].decode() for e in replica.xrange("ss:events")] == [entry]
        pair.replica_down()
        with pytest.raises(RevocationNotDurable):
            publisher.revoke_session("S-pub-2")
    finally:
        publisher.close()


def pending(client: redis.Redis) -> int:
    try:
        return int(client.xpending("ss:events", "workers")["pending"])
    except redis.ResponseError:
        return -1


def test_the_worker_acknowledges_only_what_the_replica_confirmed(pair: Pair) -> None:
    settings = pair.settings()
    options = {"claim_idle": 0.3, "housekeeping": 0.1, "max_deliveries": 1000}
    with (
        raw_client(pair.primary.url) as primary,
        raw_client(pair.replica.url) as replica,
        running_worker(settings, **options),
    ):
        primary.xadd("ss:events", {"type": "session.revoke", "sid": "S-1"})
        wait_for(lambda: pending(primary) == 0 and primary.zscore(SID_KEY, "S-1"), "applied")
        assert replica.zscore(SID_KEY, "S-1") is not None  # acknowledged: on the replica

        pair.replica_down()
        primary.xadd("ss:events", {"type": "user.revoke", "sub": "u-2"})
        primary.xadd("ss:events", {"type": "token.revoke", "jti": "J-3", "exp": "9999999999"})
        wait_for(lambda: primary.zscore("ss:{rev}:jti", "J-3"), "applied on the primary")
        assert pending(primary) == 2  # ... and not acknowledged
        pair.replica_up()
        wait_for(lambda: pending(primary) == 0, "acknowledged once the replica is back")
        assert replica.hget("ss:{rev}:user", "u-2") is not None
        assert replica.zscore("ss:{rev}:jti", "J-3") is not None
        assert primary.xlen("{ss:events}:dlq") == 0


def test_aof_refuses_a_server_without_aof(redis_url: str) -> None:
    settings = feed_settings(redis_url, durability="aof")
    with SessionService(settings) as svc, pytest.raises(ConfigError, match="SESSIONSVC_DURABILITY"):
        svc.login("alice")
    publisher = Publisher(settings)  # (the worker checks the server the intakes are on)
    publisher.revoke_session("S-queued")
    publisher.close()
    worker = Worker(settings, WorkerOptions(consumer="w1", block=0.1))
    with pytest.raises(ConfigError, match="SESSIONSVC_DURABILITY=aof"):
        worker.run()  # refuses to start: nothing read, nothing applied
    with raw_client(redis_url) as client:
        assert client.zscore(SID_KEY, "S-queued") is None


def test_aof_works_with_appendonly(tmp_path: Path) -> None:
    with RedisProcess(tmp_path, extra_args=["--appendonly", "yes"]) as server:
        settings = feed_settings(server.url, durability="aof")
        with SessionService(settings) as svc, raw_client(server.url) as client:
            tokens = svc.login("alice")
            assert svc.logout(tokens.session_id) is True
            with running_worker(settings):
                client.xadd("ss:events", {"type": "session.revoke", "sid": "S-aof"})
                wait_for(lambda: client.zscore(SID_KEY, "S-aof"), "the worker's apply")


def test_the_web_logout_answers_503_while_no_replica_confirms(pair: Pair) -> None:
    settings = app_settings(
        pair.primary.url, durability="replica", durability_timeout=0.2, feed_block=0.2
    )
    auth = fa.Auth(settings, web_settings(), authenticate_user=check_user)
    app = FastAPI(lifespan=auth.lifespan)
    auth.install(app)
    with TestClient(app, base_url=ORIGIN) as client:
        body = {"username": "alice", "password": USERS["alice"], "transport": "bearer"}
        tokens = client.post("/auth/login", json=body).json()
        bearer = {"authorization": f"Bearer {tokens['access_token']}"}
        pair.replica_down()
        response = client.post("/auth/logout", headers=bearer)
        assert response.status_code == 503 and response.headers["retry-after"]
        pair.replica_up()
        # the logout was applied on the primary: the token is refused (401) once this node's
        # view has it, or a retry that came first is confirmed (200)
        assert client.post("/auth/logout", headers=bearer).status_code in (200, 401)
    with raw_client(pair.replica.url) as replica:
        wait_for(lambda: replica.zcard(SID_KEY) == 1, "the logout on the replica")
