"""``deploy/redis/redis.conf`` on a real redis-server: the server starts with it, and what it sets
(AOF everysec, noeviction, proto-max-bulk-len, the ACL file made by ``sessionsvc redis acl
--format aclfile``) is in force. Only the host's paths and port are changed in the copy: ``dir``
(Redis changes into it while reading the file), ``aclfile``, ``bind`` and ``port``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from sessionsvc.embedded import find_redis_server, free_port

pytestmark = pytest.mark.redis

CONF = Path(__file__).resolve().parent.parent / "deploy" / "redis" / "redis.conf"
PASSWORDS = {
    "OPERATOR": "operator-test-pw",
    "VALIDATOR": "validator-test-pw",
    "APP": "app-test-pw",
    "WORKER": "worker-test-pw",
    "PUBLISHER_EXAMPLE": "publisher-test-pw",
}
ADMIN = ("deploy-test-admin", "admin-test-pw")


def make_aclfile(path: Path) -> None:
    """As deploy/README.md says: the CLI's aclfile lines, the default user switched off, and
    (this test's own) an admin user to read CONFIG with."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONSVC_")}
    env |= {f"SESSIONSVC_ACL_PASSWORD_{k}": v for k, v in PASSWORDS.items()}
    env["SESSIONSVC_DURABILITY"] = "aof"
    command = ["redis", "acl", "--format", "aclfile", "--passwords", "env"]
    lines = subprocess.run(
        [sys.executable, "-m", "sessionsvc", *command],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        cwd=path.parent,
    ).stdout
    extra = "user default off resetpass -@all\n"
    extra += f"user {ADMIN[0]} on >{ADMIN[1]} ~* &* +@all\n"
    path.write_text(lines + extra, encoding="utf-8")


def localised(directory: Path, port: int) -> str:
    text = CONF.read_text(encoding="utf-8")
    replace = {
        "dir": f"dir {directory}",
        "aclfile": f"aclfile {directory / 'users.acl'}",
        "bind": "bind 127.0.0.1",
        "port": f"port {port}",
    }
    for key, line in replace.items():
        text, n = re.subn(rf"^{key} .*$", line, text, flags=re.MULTILINE)
        assert n == 1, f"redis.conf must set {key} exactly once"
    return text


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    directory = tmp_path_factory.mktemp("redis-deploy")
    make_aclfile(directory / "users.acl")
    for _ in range(3):
        port = free_port()
        (directory / "redis.conf").write_text(localised(directory, port), encoding="utf-8")
        log = directory / "stderr.log"
        with log.open("wb") as err_file:
            proc = subprocess.Popen(
                [find_redis_server(), str(directory / "redis.conf")],
                stdout=subprocess.DEVNULL,
                stderr=err_file,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                redis.Redis(port=port, username=ADMIN[0], password=ADMIN[1]).ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        if proc.poll() is None:
            break
        err = log.read_text(encoding="utf-8", errors="replace")
        if "Address already in use" not in err:
            pytest.fail(f"redis-server refused deploy/redis/redis.conf:\n{err}")
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def client(port: int, user: str, password: str) -> redis.Redis:
    return redis.Redis(port=port, username=user, password=password, decode_responses=True)


def test_config_took_effect(server: int) -> None:
    admin = client(server, *ADMIN)
    config = admin.config_get("*")
    assert config["appendonly"] == "yes"
    assert config["appendfsync"] == "everysec"
    assert config["maxmemory-policy"] == "noeviction"
    assert int(config["proto-max-bulk-len"]) == 1024 * 1024
    assert config["aclfile"].endswith("users.acl")
    assert admin.info("persistence")["aof_enabled"] == 1


def test_a_bulk_string_over_the_limit_is_refused(server: int) -> None:
    admin = client(server, *ADMIN)
    with pytest.raises(redis.RedisError):
        admin.set("deploy-test:big", "x" * (1024 * 1024 + 1))
    assert admin.exists("deploy-test:big") == 0


def test_the_default_user_is_off(server: int) -> None:
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=server).ping()
    assert "off" in client(server, *ADMIN).acl_getuser("default")["flags"]


def test_the_role_users_came_from_the_aclfile(server: int) -> None:
    users = set(client(server, *ADMIN).acl_users())
    assert {"ss-operator", "ss-validator", "ss-app", "ss-worker", "ss-pub-example"} <= users
    worker = client(server, "ss-worker", PASSWORDS["WORKER"])
    assert worker.ping()
    assert worker.info("persistence")["aof_enabled"] == 1  # the aof level's +info|persistence
    validator = client(server, "ss-validator", PASSWORDS["VALIDATOR"])
    with pytest.raises(redis.exceptions.NoPermissionError):
        validator.config_get("appendonly")
    with pytest.raises(redis.exceptions.NoPermissionError):
        validator.delete("ss:{rev}:log")  # it reads the revocation state, never deletes
