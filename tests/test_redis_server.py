"""The test Redis helper itself (the fault tests lean on kill and restart)."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from conftest import ManualClock, make_settings
from redis_server import RedisProcess

from sessionsvc import SessionService, StoreUnavailable, TokenRejected

pytestmark = pytest.mark.redis


def test_start_kill_restart_stop(tmp_path: Path) -> None:
    server = RedisProcess(tmp_path)
    with server:
        assert server.running and server.ping()
        client = redis.Redis.from_url(server.url, socket_timeout=1)
        client.set("k", "v")
        assert client.config_get("save") == {"save": ""}
        server.kill()
        assert not server.running and not server.ping()
        server.start()
        assert client.get("k") is None  # restarted empty, same port: the client reconnects
        port = server.port
        server.restart(crash=True)
        assert server.port == port and client.ping()
        server.restart()
        assert client.ping()
        client.close()
    assert not server.running
    server.stop()  # stopping twice is fine
    server.kill()


def test_a_bad_argument_fails_loudly(tmp_path: Path) -> None:
    server = RedisProcess(tmp_path, extra_args=["--no-such-option", "1"])
    with pytest.raises(RuntimeError, match="exited"):
        server.start()
    assert not server.running


def test_service_survives_a_redis_crash(tmp_path: Path) -> None:
    clock = ManualClock()
    with RedisProcess(tmp_path) as server:
        settings = make_settings(redis_url=server.url, redis_connect_timeout=0.2)
        with SessionService(settings, clock=clock) as svc:
            pair = svc.login("alice")
            server.kill()
            with pytest.raises(StoreUnavailable):
                svc.refresh(pair.refresh_token)
            server.start()  # empty, without the scripts: they are reloaded on NOSCRIPT
            with pytest.raises(TokenRejected) as info:
                svc.refresh(pair.refresh_token)
            assert info.value.reason == "revoked"  # the session was lost with the data
            assert svc.refresh(svc.login("alice").refresh_token).session_id
