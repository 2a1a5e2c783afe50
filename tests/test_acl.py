"""The Redis ACL users of ``docs/security.md``, read from the document itself: every role runs
its real code under its own user on a throw-away server, revocations flow end to end, and Redis
logs no refusal. The refusals the document promises are checked too."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis_server import RedisProcess
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

from sessionsvc import Publisher, SessionService
from sessionsvc.config import Settings

pytestmark = pytest.mark.redis

DOC = Path(__file__).parent.parent / "docs" / "security.md"
ROLES = ("publisher", "validator", "app", "worker")


def acl_lines() -> list[str]:
    """The ``ACL SETUSER`` lines of the document, in order."""
    lines = [line for line in DOC.read_text().splitlines() if line.startswith("ACL SETUSER ss-")]
    assert [line.split()[2] for line in lines] == [f"ss-{role}" for role in ROLES]
    return lines


@pytest.fixture
def users(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """(admin URL, role → URL) on a server holding the document's users."""
    with RedisProcess(tmp_path) as server:
        if not server.running:
            server.start()
        urls = {}
        with raw_client(server.url) as admin:
            version = str(admin.info("server")["redis_version"])
            modern = tuple(int(x) for x in version.split(".")[:2]) >= (7, 2)
            for role, line in zip(ROLES, acl_lines(), strict=True):
                password = secrets.token_hex(16)
                args = line.replace(f"{role.upper()}-PASSWORD", password).split()
                if modern:  # as the document says: CLIENT SETINFO on Redis >= 7.2 and Valkey
                    args.insert(args.index("-@all") + 1, "+client|setinfo")
                admin.execute_command(*args)
                urls[role] = server.url.replace("redis://", f"redis://ss-{role}:{password}@")
            admin.execute_command("ACL", "LOG", "RESET")
        yield server.url, urls


def as_role(url: str, base: Settings) -> Settings:
    return base.model_copy(update={"redis_url": base.redis_url.__class__(url)})


def test_every_role_runs_under_its_user_with_no_refusal(
    users: tuple[str, dict[str, str]],
) -> None:
    admin_url, urls = users
    base = feed_settings(admin_url)
    tokens = Tokens(base)
    app = SessionService(as_role(urls["app"], base))
    publisher = Publisher(as_role(urls["publisher"], base))
    with (
        following(as_role(urls["validator"], base)) as v,
        running_worker(as_role(urls["worker"], base), pubsub=True) as rw,
        raw_client(urls["publisher"]) as raw_publisher,
        raw_client(admin_url) as admin,
    ):
        pair = app.login("alice")
        pair = app.refresh(pair.refresh_token)
        assert [s.session_id for s in app.list_sessions("alice")] == [pair.session_id]
        assert outcome(v, pair.access_token) == "ok"
        app.logout(pair.session_id)  # the direct path
        wait_for(lambda: outcome(v, pair.access_token) == "revoked", "the logout")

        streamed, published = tokens.access("bob", "S-1"), tokens.access("carol", "S-2")
        publisher.revoke_session("S-1")  # the worker path, by stream ...
        wait_subscribed(admin)
        raw_publisher.publish("ss:events", json.dumps({"type": "session.revoke", "sid": "S-2"}))
        wait_for(lambda: outcome(v, streamed) == "revoked", "the streamed event")
        wait_for(lambda: outcome(v, published) == "revoked", "the published event")  # ... pub/sub
        publisher.revoke_user("erin", before=time.time())  # by value: clamped (TIME)
        wait_for(lambda: admin.hget("ss:{rev}:user", "erin"), "the user revocation")
        raw_publisher.xadd("ss:events", {"type": "nonsense"})  # a dead letter
        wait_for(lambda: admin.xlen("ss:dlq") == 1, "the dead letter")

        rw.worker.housekeep()  # prune, trim, heartbeat, gauges, reclaim
        app.login("dave")
        assert app.logout_all("dave") == 1
        time.sleep(0.5)  # a refusal anywhere would be logged by now
        assert admin.execute_command("ACL", "LOG") == [] and rw.alive
    app.close()
    publisher.close()


@pytest.mark.parametrize(
    ("role", "command"),
    [
        ("publisher", ("XADD", "ss:{rev}:log", "*", "kind", "all")),
        ("publisher", ("XRANGE", "ss:events", "-", "+")),
        ("validator", ("XADD", "ss:{rev}:log", "*", "kind", "all")),
        ("validator", ("SET", "ss:{rev}:all", "x")),
        ("validator", ("EVAL", "return 1", "0")),
        ("app", ("XADD", "ss:events", "*", "type", "all.revoke")),
        ("app", ("DEL", "ss:{rev}:sid")),
        ("worker", ("FLUSHALL",)),
        ("worker", ("SCRIPT", "FLUSH")),
    ],
)
def test_what_the_document_says_a_user_cannot_do_is_refused(
    users: tuple[str, dict[str, str]], role: str, command: tuple[str, ...]
) -> None:
    with raw_client(users[1][role]) as client, pytest.raises(redis.exceptions.NoPermissionError):
        client.execute_command(*command)
