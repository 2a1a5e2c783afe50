"""The sentinels' user, as ``sessionsvc redis acl --sentinel`` prints it, on three real
``redis-server --sentinel`` processes: every client finds the primary through it with no
refusal in any sentinel's ``ACL LOG``; its worst legal command (``SENTINEL MASTERS``) shows no
secret, and every command that could change the deployment is refused."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.exceptions import NoPermissionError
from redis_sentinel import SERVICE, SentinelGroup
from revocation_harness import feed_settings, raw_client

from sessionsvc import Publisher, SessionService, Settings
from sessionsvc._redis.acl import password_hash, render, sentinel_role
from sessionsvc._redis.clients import async_client, sync_client
from sessionsvc.embedded import RedisProcess

pytestmark = [pytest.mark.redis, pytest.mark.sentinel]

NOWHERE = "redis://127.0.0.1:1/0"  # with sentinels, only the URL's user, password, db and TLS count
USER = "ss-sentinel"


class Deployment:
    """The group with ``USER`` on every sentinel, and its password."""

    def __init__(self, group: SentinelGroup) -> None:
        self.group = group
        self.password = secrets.token_urlsafe(24)
        line = render(sentinel_role("ss"), password_hash(self.password))
        for sentinel in group.sentinels:
            with raw_client(_url(sentinel)) as admin:
                admin.execute_command(*line.split())
                admin.execute_command("ACL", "LOG", "RESET")

    def settings(self, **overrides: Any) -> Settings:
        """sessionsvc's settings of this deployment, authenticating as ``USER``."""
        values = {
            "redis_sentinels": self.group.addresses,
            "redis_service": SERVICE,
            "redis_sentinel_username": USER,
            "redis_sentinel_password": self.password,
            **overrides,
        }
        return feed_settings(NOWHERE, **values)

    def as_user(self, sentinel: RedisProcess) -> redis.Redis:
        """A plain client of ``sentinel``, authenticated as ``USER``."""
        return redis.Redis(port=sentinel.port, username=USER, password=self.password)

    def refusals(self) -> list[Any]:
        """Every sentinel's ``ACL LOG``, together."""
        out: list[Any] = []
        for sentinel in self.group.sentinels:
            with raw_client(_url(sentinel)) as admin:
                out += admin.execute_command("ACL", "LOG")
        return out


def _url(process: RedisProcess) -> str:
    return f"redis://127.0.0.1:{process.port}/0"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """One group for the module (nothing here fails over or changes the sentinels)."""
    group = SentinelGroup(tmp_path_factory.mktemp("sentinel-acl"))
    try:
        yield Deployment(group.start())
    finally:
        group.stop()


@pytest.fixture(autouse=True)
def no_refusal_yet(deployment: Deployment) -> None:
    """Each test starts with empty ``ACL LOG``s."""
    for sentinel in deployment.group.sentinels:
        with raw_client(_url(sentinel)) as admin:
            admin.execute_command("ACL", "LOG", "RESET")


def test_sessions_and_publishers_find_the_primary_as_the_sentinel_user(
    deployment: Deployment,
) -> None:
    settings = deployment.settings()
    sessions = SessionService(settings)
    publisher = Publisher(settings)
    try:
        pair = sessions.login("alice")
        assert sessions.refresh(pair.refresh_token).session_id == pair.session_id
        assert publisher.revoke_session("S-1")
    finally:
        sessions.close()
        publisher.close()
    assert deployment.refusals() == []


def test_an_async_client_finds_the_primary_as_the_sentinel_user(deployment: Deployment) -> None:
    async def scenario() -> Any:
        client = async_client(deployment.settings())
        try:
            await client.set("ss:{rev}:epoch", "e")
            return await client.get("ss:{rev}:epoch")
        finally:
            await client.aclose()

    assert asyncio.run(scenario()) == b"e"
    assert deployment.refusals() == []


def test_a_wrong_sentinel_password_finds_no_primary(deployment: Deployment) -> None:
    client = sync_client(deployment.settings(redis_sentinel_password="not-" + "the-password"))
    try:
        with pytest.raises(redis.exceptions.RedisError) as failure:
            client.ping()
        assert "not-the-password" not in str(failure.value)
    finally:
        client.close()


def test_the_worst_legal_command_shows_the_services_and_no_secret(
    deployment: Deployment,
) -> None:
    """``SENTINEL MASTERS``: every monitored service's address and state."""
    with deployment.as_user(deployment.group.sentinels[0]) as client:
        masters = client.sentinel_masters()
        text = repr(client.execute_command("SENTINEL", "MASTERS"))
    assert set(masters) == {SERVICE}
    assert masters[SERVICE]["port"] == deployment.group.primary.port
    assert deployment.password not in text


@pytest.mark.parametrize(
    "command",
    [
        ("SENTINEL", "SET", SERVICE, "quorum", "3"),
        ("SENTINEL", "SET", SERVICE, "auth-pass", "x"),
        ("SENTINEL", "REMOVE", SERVICE),
        ("SENTINEL", "FAILOVER", SERVICE),
        ("SENTINEL", "MONITOR", "other", "127.0.0.1", "6390", "1"),
        ("SENTINEL", "RESET", "*"),
        ("SENTINEL", "CONFIG", "SET", "resolve-hostnames", "yes"),
        ("SENTINEL", "FLUSHCONFIG"),
        ("SENTINEL", "SIMULATE-FAILURE", "crash-after-election"),
        ("SENTINEL", "IS-MASTER-DOWN-BY-ADDR", "127.0.0.1", "6379", "0", "*"),
        ("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE),
        ("SENTINEL", "REPLICAS", SERVICE),
        ("ACL", "SETUSER", USER, "+@all"),
        ("CLIENT", "KILL", "TYPE", "normal"),
        ("SHUTDOWN",),
        ("INFO",),
    ],
)
def test_what_could_change_the_deployment_is_refused(
    deployment: Deployment, command: tuple[str, ...]
) -> None:
    with (
        deployment.as_user(deployment.group.sentinels[0]) as client,
        pytest.raises(NoPermissionError),
    ):
        client.execute_command(*command)
    assert (
        SentinelGroup.primary_port(deployment.group.sentinels[0]) == deployment.group.primary.port
    )
