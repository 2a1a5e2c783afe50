"""The CLI with ``SESSIONSVC_REDIS_CLUSTER=true``: ``revoke`` publishes to the cluster,
``sessions`` lists and ends sessions there (single-slot steps)."""

from __future__ import annotations

import json

import pytest
import redis.cluster
from conftest import AUDIENCE, ISSUER

from sessionsvc.cli.main import main

pytestmark = [pytest.mark.redis, pytest.mark.cluster]


@pytest.fixture
def env(clean_env: None, monkeypatch: pytest.MonkeyPatch, redis_cluster_url: str) -> str:
    for name, value in {
        "REDIS_URL": redis_cluster_url,
        "REDIS_CLUSTER": "true",
        "ISSUER": ISSUER,
        "AUDIENCE": AUDIENCE,
        "ENV": "development",
    }.items():
        monkeypatch.setenv(f"SESSIONSVC_{name}", value)
    return redis_cluster_url


def test_revoke_publishes_to_the_cluster(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["revoke", "user", "alice", "--reason", "password_changed"]) == 0
    entry = json.loads(capsys.readouterr().out)["stream_id"]
    client = redis.cluster.RedisCluster.from_url(env)
    try:
        assert [i.decode() for i, _ in client.xrange("ss:events")] == [entry]
    finally:
        client.close()


def test_sessions_commands_work_on_the_cluster(
    env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sessions", "list", "alice"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["sessions", "revoke-all", "alice"]) == 0  # the fenced steps, on no session
    assert json.loads(capsys.readouterr().out)["sessions_ended"] == 0
