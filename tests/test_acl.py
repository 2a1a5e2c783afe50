"""The Redis ACL users of every role, as ``sessionsvc redis acl`` prints them (and
``docs/security.md`` shows them): every role runs its real code under its own user on a
throw-away server with no refusal in ``ACL LOG``; each role's worst *legal* command is tried and
nothing another role queued is lost or blocked; the refusals the document promises hold."""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.exceptions import NoPermissionError
from redis_server import RedisProcess
from revocation_harness import (
    Tokens,
    dead_letters,
    feed_settings,
    following,
    outcome,
    raw_client,
    running_worker,
    wait_for,
)

from sessionsvc import Publisher, RefreshReuseDetected, SessionService, TokenRejected
from sessionsvc._redis.acl import INFO_RULE, password_hash, render, roles
from sessionsvc._redis.hotconn import HotConnection
from sessionsvc._redis.run import Op, run
from sessionsvc._redis.scripts import SCRIPTS, Call
from sessionsvc.cli.main import main
from sessionsvc.config import Settings
from sessionsvc.errors import ConfigError, RevocationNotDurable, StoreUnavailable
from sessionsvc.integrations.web.config import WebSettings
from sessionsvc.integrations.web.throttle import LoginThrottle
from sessionsvc.sessions.core import SessionCore
from sessionsvc.sessions.keys import SessionKeys
from workers.worker import Worker, WorkerOptions

pytestmark = pytest.mark.redis

DOC = Path(__file__).parent.parent / "docs" / "security.md"
PUBLISHERS = {"idp": ["session.revoke", "user.revoke"], "billing": ["session.revoke"]}
EXHAUST = "18446744073709551615-18446744073709551615"  # the largest stream id there is
SENTINEL_LINE = "ACL SETUSER ss-sentinel "  # for the sentinels, not the data nodes
IDP, IDP_SID = "https://idp.example.test", "idp-session-1"
IDP_KEY = SessionKeys("ss").idp(IDP, IDP_SID)


@dataclass
class Users:
    admin: str
    urls: dict[str, str]  # role kind -> URL with that user's name and password
    base: Settings
    passwords: list[str]

    def settings(self, kind: str, **overrides: object) -> Settings:
        url = self.base.redis_url.__class__(self.urls[kind])
        return self.base.model_copy(update={"redis_url": url, **overrides})


def serve(directory: Path, durability: str = "none") -> Iterator[Users]:
    """A server holding every role's user, made from ``sessionsvc._redis.acl`` as the CLI
    prints it for ``durability``."""
    with RedisProcess(directory) as server:
        if not server.running:
            server.start()
        urls, passwords = {}, []
        with raw_client(server.url) as admin:
            version = str(admin.info("server")["redis_version"])
            modern = tuple(int(x) for x in version.split(".")[:2]) >= (7, 2)
            for role in roles("ss", sorted(PUBLISHERS), durability=durability):
                password = secrets.token_urlsafe(24)
                passwords.append(password)
                # raw redis-py clients below (other systems) send CLIENT SETINFO on Redis >= 7.2
                line = render(role, password_hash(password), client_setinfo=modern)
                admin.execute_command(*line.split())
                urls[role.kind] = server.url.replace("redis://", f"redis://{role.user}:{password}@")
            admin.execute_command("ACL", "LOG", "RESET")
        base = feed_settings(server.url, publishers=PUBLISHERS)
        yield Users(server.url, urls, base, passwords)


@pytest.fixture
def users(tmp_path: Path) -> Iterator[Users]:
    """Every role's user as printed for the default durability (``none``)."""
    yield from serve(tmp_path)


@pytest.fixture
def aof_users(tmp_path: Path) -> Iterator[Users]:
    """Every role's user as printed for ``SESSIONSVC_DURABILITY=aof``."""
    yield from serve(tmp_path, "aof")


def acl_log(admin: redis.Redis) -> list[object]:
    return list(admin.execute_command("ACL", "LOG"))


def test_the_document_shows_what_the_command_prints(
    clean_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [line for line in DOC.read_text().splitlines() if line.startswith("ACL SETUSER")]
    sentinel = [line for line in lines if line.startswith(SENTINEL_LINE)]
    replicas = [line for line in lines if "+cluster|nodes" in line]
    cluster = [line for line in lines if "+cluster|slots" in line and line not in replicas]
    plain = [line for line in lines if line not in sentinel + cluster + replicas]
    for args, documented in [
        ([], plain),
        (["--sentinel"], sentinel),
        (["--cluster"], cluster),
        (["--cluster", "--read-from-replicas", "validator"], replicas),
    ]:
        assert main(["redis", "acl", *args]) == 0
        assert capsys.readouterr().out.splitlines() == documented, args


def test_the_sentinel_user_is_named_by_its_setting_and_hashes_its_password(
    clean_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SESSIONSVC_REDIS_SENTINEL_USERNAME", "edge-sentinel")
    monkeypatch.setenv("SESSIONSVC_ACL_PASSWORD_SENTINEL", "battery-staple")
    assert main(["redis", "acl", "--sentinel", "--passwords", "env"]) == 0
    out = capsys.readouterr().out
    digest = password_hash("battery-staple")
    assert out == f"ACL SETUSER edge-sentinel reset on #{digest} -@all +sentinel|masters\n"


def test_the_sentinel_option_names_no_role(
    clean_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["redis", "acl", "--sentinel", "app"]) == 2
    assert "--sentinel" in capsys.readouterr().err


def test_passwords_come_from_the_environment_as_hashes_only(
    clean_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SESSIONSVC_ACL_PASSWORD_VALIDATOR", "correct-horse")
    assert main(["redis", "acl", "validator", "--passwords", "env", "--format", "aclfile"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"user ss-validator on #{password_hash('correct-horse')} -@all ")
    assert "correct-horse" not in out
    assert main(["redis", "acl", "app", "--passwords", "env"]) == 2  # no password for it
    assert "SESSIONSVC_ACL_PASSWORD_APP" in capsys.readouterr().err


def test_every_role_runs_under_its_user_with_no_refusal(users: Users) -> None:
    tokens = Tokens(users.base)
    app = SessionService(users.settings("app"))
    operator = Publisher(users.settings("operator"))
    idp = Publisher(users.settings("publisher:idp"), intake="idp")
    with (
        following(users.settings("validator")) as v,
        running_worker(users.settings("worker"), pubsub=True, housekeeping=0.1) as rw,
        raw_client(users.urls["publisher:billing"]) as billing,
        raw_client(users.urls["operator"]) as raw_operator,
        raw_client(users.admin) as admin,
    ):
        pair = app.login("alice")
        pair = app.refresh(pair.refresh_token)
        assert [s.session_id for s in app.list_sessions("alice")] == [pair.session_id]
        assert outcome(v, pair.access_token) == "ok"
        app.logout(pair.session_id)  # the direct path
        wait_for(lambda: outcome(v, pair.access_token) == "revoked", "the logout")

        victims = {sid: tokens.access("bob", sid) for sid in ("S-1", "S-2", "S-3", "S-4")}
        operator.revoke_session("S-1")  # the trusted intake ...
        idp.revoke_session("S-2")  # ... a publisher's own, by stream
        wait_for(lambda: admin.pubsub_numsub("{ss:events}:billing")[0][1] >= 1, "subscribed")
        billing.publish("{ss:events}:billing", json.dumps({"type": "session.revoke", "sid": "S-3"}))
        raw_operator.publish("ss:events", json.dumps({"type": "session.revoke", "sid": "S-4"}))
        for sid, token in victims.items():
            wait_for(lambda t=token: outcome(v, t) == "revoked", f"the revocation of {sid}")
        idp.revoke_user("erin", before=time.time())  # by value: clamped (TIME)
        wait_for(lambda: admin.hget("ss:{rev}:user", "erin"), "the user revocation")
        billing.xadd("{ss:events}:billing", {"type": "all.revoke", "before": "1"})  # not its own
        wait_for(lambda: admin.xlen("{ss:events}:dlq") == 1, "the dead letter")
        assert [m["dlq:error"] for m in dead_letters(admin).values()] == ["not_allowed"]

        done = rw.worker.health.ok_at.get("housekeeping", 0.0)  # every chore, under its user
        wait_for(lambda: rw.worker.health.ok_at.get("housekeeping", 0.0) > done, "housekeeping")
        app.login("dave")
        assert app.logout_all("dave") == 1
        time.sleep(0.5)  # a refusal anywhere would be logged by now
        assert acl_log(admin) == [] and rw.alive
    app.close()
    operator.close()
    idp.close()


def test_a_publisher_cannot_destroy_or_block_what_others_queued(users: Users) -> None:
    """``idp`` does the worst its rules allow, on the only keys they name: trims its own stream
    to nothing and exhausts its ids. What the operator and ``billing`` queued meanwhile (no
    worker running) is applied once a worker starts, and both can go on publishing."""
    tokens = Tokens(users.base)
    operator = Publisher(users.settings("operator"))
    billing = Publisher(users.settings("publisher:billing"), intake="billing")
    with (
        raw_client(users.urls["publisher:idp"]) as idp,
        raw_client(users.admin) as admin,
        following(users.settings("validator")) as v,
    ):
        operator.revoke_session("S-op")
        billing.revoke_session("S-bill")
        idp.xadd("{ss:events}:idp", {"type": "session.revoke", "sid": "S-idp"})
        idp.execute_command("XADD", "{ss:events}:idp", "MAXLEN", "0", "*", "type", "x")
        idp.execute_command("XADD", "{ss:events}:idp", EXHAUST, "type", "x")
        with pytest.raises(redis.ResponseError):  # its own intake is blocked, for itself
            idp.xadd("{ss:events}:idp", {"type": "session.revoke", "sid": "S-idp-2"})
        for stream in ("ss:events", "{ss:events}:billing", "{ss:events}:dlq"):
            with pytest.raises(redis.exceptions.NoPermissionError):
                idp.execute_command("XADD", stream, "MAXLEN", "0", "*", "type", "x")
        with running_worker(users.settings("worker"), pubsub=True):
            for sid in ("S-op", "S-bill"):
                token = tokens.access("carol", sid)
                wait_for(lambda t=token: outcome(v, t) == "revoked", f"{sid}, queued by another")
            operator.revoke_session("S-op-2")  # XADD * still works for everyone else
            billing.revoke_session("S-bill-2")
            for sid in ("S-op-2", "S-bill-2"):
                token = tokens.access("carol", sid)
                wait_for(lambda t=token: outcome(v, t) == "revoked", f"{sid}, published after")
            wait_for(lambda: admin.pubsub_numsub("{ss:events}:idp")[0][1] >= 1, "subscribed")
            idp.publish("{ss:events}:idp", json.dumps({"type": "session.revoke", "sid": "S-p"}))
            wait_for(  # the forward into idp's own blocked stream fails: a clear dead letter
                lambda: any(m.get("dlq:error") == "intake_failed" for m in _pubsub_letters(admin)),
                "the pub/sub dead letter",
            )
    operator.close()
    billing.close()


def _pubsub_letters(admin: redis.Redis) -> list[dict[str, str]]:
    out = []
    for _id, fields in admin.xrange("{ss:events}:dlq"):
        out.append({k.decode(): v.decode(errors="replace") for k, v in fields.items()})
    return out


def test_a_publishers_events_carry_its_name_and_only_its_types(users: Users) -> None:
    with (
        raw_client(users.urls["publisher:billing"]) as billing,
        raw_client(users.admin) as admin,
        running_worker(users.settings("worker")),
    ):
        ok = billing.xadd("{ss:events}:billing", {"type": "session.revoke", "sid": "S-9"})
        spoof = billing.xadd(
            "{ss:events}:billing", {"type": "session.revoke", "sid": "S-8", "source": "idp"}
        )
        wrong = billing.xadd("{ss:events}:billing", {"type": "key.revoke", "kid": "k-a"})
        wait_for(lambda: admin.xlen("{ss:events}:dlq") == 2, "two dead letters")
        letters = dead_letters(admin)
        assert letters[spoof.decode()]["dlq:error"] == "bad_field"
        assert letters[wrong.decode()]["dlq:error"] == "not_allowed"
        (_, entry), *_ = [e for e in admin.xrevrange("ss:{rev}:log") if b"value" in e[1]]
        assert (entry[b"value"], entry[b"source"]) == (b"S-9", b"billing")
        assert ok


def test_worst_legal_commands_of_the_trusted_roles_lose_nothing(users: Users) -> None:
    """The operator trims the trusted intake to nothing: only its own queue goes, a publisher's
    stays. The validator overwrites the epoch: validators re-bootstrap, nothing forgotten. The
    app trims the revocation log to nothing: validators that start later bootstrap from the
    state, which the log's loss does not touch."""
    tokens = Tokens(users.base)
    idp = Publisher(users.settings("publisher:idp"), intake="idp")
    with (
        raw_client(users.urls["operator"]) as operator,
        raw_client(users.urls["validator"]) as validator,
        raw_client(users.urls["app"]) as app,
        following(users.settings("validator")) as v,
    ):
        idp.revoke_session("S-idp")
        operator.execute_command("XADD", "ss:events", "MAXLEN", "0", "*", "type", "x")
        with running_worker(users.settings("worker")):
            victim = tokens.access("erin", "S-idp")
            wait_for(lambda: outcome(v, victim) == "revoked", "the publisher's event")
        validator.set("ss:{rev}:epoch", "forged")
        app.execute_command("XADD", "ss:{rev}:log", "MAXLEN", "0", "*", "kind", "x")
        time.sleep(0.3)
        assert outcome(v, victim) == "revoked"  # a running view never forgets
        with following(users.settings("validator")) as late:
            assert outcome(late, victim) == "revoked"  # bootstrapped from the state
    idp.close()


def test_the_app_throttles_logins_under_its_user_with_no_refusal(users: Users) -> None:
    """Every throttling op on a name's counter (its user's slot) and on an IPv4 and an IPv6
    address's: attempts reserved, a counter without an expiry given its window, a success's
    reset of the name and its attempt given back to the address: no refusal."""
    web = WebSettings(login_user_attempts=2, login_ip_attempts=3, _env_file=None)
    throttle = LoginThrottle(web, "ss")
    with raw_client(users.urls["app"]) as app, raw_client(users.admin) as admin:
        admin.set("ss:{ip:198.51.100.1}:login_fail", "9")  # no expiry: the attempt gives it one
        assert run(app, throttle.check("carol", "198.51.100.1")) is not None
        for client in ("192.0.2.7", "2001:db8::1"):
            assert run(app, throttle.check("carol", client)) is None
        assert run(app, throttle.check("carol", "192.0.2.8")) is not None  # the name's limit
        run(app, throttle.succeeded("carol", "192.0.2.7"))
        run(app, throttle.succeeded("carol", "2001:db8::1"))
        admin.set("ss:{ip:192.0.2.9}:login_fail", "2")  # no expiry: giving back gives it one
        run(app, throttle.succeeded("carol", "192.0.2.9"))
        assert run(app, throttle.check("carol", "192.0.2.7")) is None
        assert admin.pttl("ss:{ip:198.51.100.1}:login_fail") > 0
        assert admin.get("ss:{ip:192.0.2.7}:login_fail") == b"1"  # 2 attempts, 1 given back
        assert admin.get("ss:{ip:2001:db8::/64}:login_fail") == b"0"
        assert admin.get("ss:{ip:192.0.2.9}:login_fail") == b"1"
        assert admin.pttl("ss:{ip:192.0.2.9}:login_fail") > 0
        assert acl_log(admin) == []


def test_the_apps_worst_on_address_counters_touches_only_login_counters(users: Users) -> None:
    """Under ``ss:{ip:*`` (login counters only) the app may only count and expire: a counter
    it INCRs with no expiry locks its address for one window at most (the next attempt gives it
    one); a PEXPIRE, or DECRs below 0, un-throttle one address for a window at most (a DECR's
    new counter gets the window from the next attempt too); nothing else is written, no script
    may DEL there, and nothing outside the pattern is reached through it."""
    window = WebSettings(_env_file=None).login_window
    throttle = LoginThrottle(WebSettings(login_ip_attempts=3, _env_file=None), "ss")
    key = throttle.ip_key("192.0.2.7")
    assert key is not None
    with raw_client(users.urls["app"]) as app, raw_client(users.admin) as admin:
        for _ in range(1000):
            app.execute_command("INCR", key)
        wait = run(app, throttle.check("dave", "192.0.2.7"))
        assert wait is not None and wait <= window
        assert admin.pttl(key) > 0
        app.pexpire(key, 0)
        assert run(app, throttle.check("dave", "192.0.2.7")) is None
        # DECR: the worst is a negative count, more attempts for one address in one window
        other = throttle.ip_key("192.0.2.10")
        assert other is not None
        for _ in range(1000):
            app.execute_command("DECR", other)
        assert admin.get(other) == b"-1000" and admin.pttl(other) == -1
        assert run(app, throttle.check("erin", "192.0.2.10")) is None
        assert 0 < admin.pttl(other) <= window * 1000  # the next attempt gives it the window
        run(app, throttle.succeeded("erin", "192.0.2.10"))  # giving back leaves a count < 1
        assert admin.get(other) == b"-999"
        reset = SCRIPTS["login_reset"].call({"counter": "ss:{ip:192.0.2.9}:login_fail"}, {})
        admin.set("ss:{ip:192.0.2.9}:login_fail", "5")
        with pytest.raises(StoreUnavailable):
            run(app, _one(reset))  # the script's DEL is refused
        assert admin.get("ss:{ip:192.0.2.9}:login_fail") == b"5"


def _one(call: Call) -> Op[Any]:
    return (yield call)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("role", "command"),
    [
        ("publisher:idp", ("XADD", "ss:events", "*", "type", "all.revoke")),
        ("publisher:idp", ("XADD", "{ss:events}:billing", "*", "type", "all.revoke")),
        ("publisher:idp", ("XADD", "{ss:events}:dlq", "*", "type", "x")),
        ("publisher:idp", ("XADD", "ss:{rev}:log", "*", "kind", "all")),
        ("publisher:idp", ("XRANGE", "{ss:events}:idp", "-", "+")),
        ("publisher:idp", ("XTRIM", "{ss:events}:idp", "MAXLEN", "0")),
        ("publisher:idp", ("DEL", "{ss:events}:idp")),
        ("publisher:idp", ("PUBLISH", "ss:events", "{}")),
        ("publisher:idp", ("PUBLISH", "{ss:events}:billing", "{}")),
        ("operator", ("XADD", "{ss:events}:idp", "*", "type", "all.revoke")),
        ("operator", ("XRANGE", "ss:events", "-", "+")),
        ("operator", ("DEL", "ss:events")),
        ("validator", ("XADD", "ss:{rev}:log", "*", "kind", "all")),
        ("validator", ("SET", "ss:{rev}:all", "x")),
        ("validator", ("EVAL", "return 1", "0")),
        ("validator", ("SCRIPT", "LOAD", "while true do end")),
        ("validator", ("EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0")),
        ("validator", ("XADD", "ss:events", "*", "type", "all.revoke")),
        ("app", ("XADD", "ss:events", "*", "type", "all.revoke")),
        ("app", ("DEL", "ss:{rev}:sid")),
        ("app", ("SADD", "ss:{rev}:kid", "k")),
        ("app", ("INCR", "ss:{rev}:epoch")),
        ("app", ("INCR", "ss:events")),
        ("app", ("SET", "ss:{ip:192.0.2.7}:login_fail", "0")),
        ("app", ("DEL", "ss:{ip:192.0.2.7}:login_fail")),
        ("app", ("APPEND", "ss:{ip:192.0.2.7}:login_fail", "0")),
        ("app", ("HSET", "ss:{ip:192.0.2.7}:s:x", "f", "v")),
        ("app", ("PERSIST", "ss:{ip:192.0.2.7}:login_fail")),
        ("app", ("KEYS", "ss:{ip:*")),
        ("app", ("INCRBY", "ss:{ip:192.0.2.7}:login_fail", "-1000")),
        ("app", ("DECRBY", "ss:{ip:192.0.2.7}:login_fail", "1000")),
        ("app", ("DECR", "ss:{u:x}:login_fail")),
        ("app", ("DECR", "ss:{rev}:epoch")),
        ("app", ("DECR", "ss:events")),
        ("worker", ("FLUSHALL",)),
        ("worker", ("SCRIPT", "FLUSH")),
        ("worker", ("CONFIG", "SET", "maxmemory", "1")),
        ("worker", ("KEYS", "*")),
        ("app", ("INFO", "persistence")),  # at none: no INFO for any role
        # the IdP session indexes: the app SADD/PEXPIRE/SMEMBERS, the worker SMEMBERS, no more
        ("validator", ("SMEMBERS", IDP_KEY)),
        ("validator", ("SADD", IDP_KEY, "x")),
        ("app", ("DEL", IDP_KEY)),
        ("app", ("SREM", IDP_KEY, "x")),
        ("app", ("SET", IDP_KEY, "x")),
        ("app", ("PERSIST", IDP_KEY)),
        ("app", ("SPOP", IDP_KEY)),
        ("app", ("SADD", "ss:idpx", "x")),
        ("worker", ("SADD", IDP_KEY, "x")),
        ("worker", ("SREM", IDP_KEY, "x")),
        ("worker", ("DEL", IDP_KEY)),
        ("worker", ("PEXPIRE", IDP_KEY, "0")),
        ("worker", ("EVALSHA", SCRIPTS["login_idp"].sha, "1", IDP_KEY, "S", "1")),
        ("worker", ("INFO", "persistence")),
        ("validator", ("INFO", "persistence")),
    ],
)
def test_what_the_document_says_a_user_cannot_do_is_refused(
    users: Users, role: str, command: tuple[str, ...]
) -> None:
    with raw_client(users.urls[role]) as client, pytest.raises(redis.exceptions.NoPermissionError):
        client.execute_command(*command)


def test_the_rules_name_no_wildcard_for_a_publisher() -> None:
    for role in roles("ss", ["idp"]):
        if role.kind.startswith("publisher:"):
            assert not re.search(r"[*?\[]", role.rules), role.rules


def test_the_replica_level_runs_under_each_roles_user(users: Users) -> None:
    """``WAIT`` and the barrier write are allowed where the level needs them: with no replica on
    this server it fails with its own error, never a refusal. The app's worst on the barrier
    (a value of its own, no expiry) changes nothing."""
    replica = {"durability": "replica", "durability_timeout": 0.05}
    app = SessionService(users.settings("app", **replica))
    with raw_client(users.urls["app"]) as raw_app, raw_client(users.admin) as admin:
        raw_app.set("ss:{rev}:durable", "x" * 1000)  # its worst: the barrier's value and expiry
        pair = app.login("alice")
        with pytest.raises(RevocationNotDurable):
            app.logout(pair.session_id)
        assert admin.zscore("ss:{rev}:sid", pair.session_id) is not None  # applied, unconfirmed
        for kind in ("operator", "publisher:idp"):
            intake = "idp" if kind == "publisher:idp" else None
            publisher = Publisher(users.settings(kind, **replica), intake=intake)
            with pytest.raises(RevocationNotDurable):
                publisher.revoke_session("S-1")
            publisher.close()
        assert acl_log(admin) == []
    app.close()


def test_the_aof_check_runs_under_the_app_and_worker_users(aof_users: Users) -> None:
    """With the rules printed for ``aof`` the check's ``INFO persistence`` is allowed: on this
    server (AOF off) it fails with its own error, never a refusal."""
    with raw_client(aof_users.admin) as admin:
        with pytest.raises(ConfigError, match="AOF off"):
            SessionService(aof_users.settings("app", durability="aof")).login("bob")
        worker = Worker(aof_users.settings("worker", durability="aof"), WorkerOptions(block=0.1))
        with pytest.raises(ConfigError, match="AOF off"):
            worker.run()
        assert acl_log(admin) == []


@pytest.mark.parametrize("role", ["app", "worker"])
def test_the_worst_legal_info_shows_every_section_and_no_secret(
    aof_users: Users, role: str
) -> None:
    """``+info|persistence`` names the first argument only: ``INFO persistence everything`` is
    legal at ``aof`` and shows every section (what ``docs/security.md`` lists), yet no
    password, key name or value."""
    with raw_client(aof_users.admin) as admin, raw_client(aof_users.urls[role]) as client:
        admin.hset("ss:{u:c2VjcmV0LXVzZXI}:s:S-hidden", "refresh", "value-never-in-info")
        admin.set("ss:{rev}:epoch", "epoch-never-in-info")
        conn = HotConnection(client)  # the raw text, as the server sends it
        try:
            text = conn("INFO", "persistence", "everything").decode()
        finally:
            conn.close()
    sections = set(re.findall(r"^# (\w+)", text, re.MULTILINE))
    assert {"Server", "Clients", "Memory", "Persistence", "Stats", "Replication"} <= sections
    assert {"Commandstats", "Errorstats", "Keyspace"} <= sections
    assert "process_id:" in text and "executable:" in text and "db0:keys=2" in text
    for secret in [*aof_users.passwords, "c2VjcmV0LXVzZXI", "S-hidden", "never-in-info"]:
        assert secret not in text
    assert "ss:{" not in text


@pytest.mark.parametrize("role", ["app", "worker", "validator", "operator", "publisher:idp"])
@pytest.mark.parametrize("args", [(), ("server",), ("everything",), ("all",), ("keyspace",)])
def test_no_other_first_info_section_is_allowed_at_aof(
    aof_users: Users, role: str, args: tuple[str, ...]
) -> None:
    with raw_client(aof_users.urls[role]) as client, pytest.raises(NoPermissionError):
        client.execute_command("INFO", *args)


def test_only_the_aof_level_prints_the_info_rule(
    clean_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["redis", "acl", "app", "worker", "validator"]) == 0
    assert INFO_RULE not in capsys.readouterr().out
    monkeypatch.setenv("SESSIONSVC_DURABILITY", "aof")
    assert main(["redis", "acl", "app", "worker", "validator"]) == 0
    validator, app, worker = capsys.readouterr().out.splitlines()  # (the fixed order)
    assert f" +wait {INFO_RULE} ~" in app and f" +wait {INFO_RULE} ~" in worker
    assert INFO_RULE not in validator
    assert main(["redis", "acl", "app", "--durability", "replica"]) == 0  # the option wins
    assert INFO_RULE not in capsys.readouterr().out


def test_the_cluster_steps_of_every_session_operation_run_under_the_app_user(
    users: Users,
) -> None:
    """The single-slot steps a cluster runs (``sessionsvc.sessions.cluster``), here on one
    Redis under the app's rules: fences, evictions, reuse and listing, with no refusal."""
    app = SessionService(users.settings("app", max_sessions_per_user=1))
    app.core = SessionCore(app.settings, cluster=True)
    with raw_client(users.admin) as admin:
        first = app.login("alice")
        pair = app.login("alice")  # evicts the first (revoke, then end)
        t1 = app.refresh(pair.refresh_token)
        app.refresh(t1.refresh_token)
        with pytest.raises(RefreshReuseDetected):
            app.refresh(pair.refresh_token)
        assert app.list_sessions("alice") == []
        with pytest.raises(TokenRejected):
            app.refresh(first.refresh_token)
        app.login("bob")
        assert app.logout_all("bob") == 1  # fence open, apply, fence close
        assert acl_log(admin) == []
    app.close()


def test_the_cluster_setting_prints_the_cluster_rules(
    clean_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["redis", "acl"]) == 0
    assert "+cluster|slots" not in capsys.readouterr().out
    monkeypatch.setenv("SESSIONSVC_REDIS_CLUSTER", "true")
    assert main(["redis", "acl"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5 and all(" +cluster|slots +command -command|count" in ln for ln in lines)
    assert main(["redis", "acl", "--no-cluster"]) == 0  # the option wins
    assert "+cluster|slots" not in capsys.readouterr().out


def test_the_replicas_setting_adds_to_the_validators_cluster_rules_only(
    clean_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SESSIONSVC_READ_FROM_REPLICAS", "true")
    assert main(["redis", "acl"]) == 0  # on one Redis (or Sentinel) no READONLY is sent
    assert "+readonly" not in capsys.readouterr().out
    assert main(["redis", "acl", "--cluster"]) == 0
    with_replicas = [ln for ln in capsys.readouterr().out.splitlines() if "+readonly" in ln]
    assert [ln.split()[2] for ln in with_replicas] == ["ss-validator"]
    assert " +asking +cluster|nodes +readonly ~" in with_replicas[0]
    assert main(["redis", "acl", "--cluster", "--no-read-from-replicas", "validator"]) == 0
    assert "+cluster|nodes" not in capsys.readouterr().out


def test_only_the_worker_may_ask_for_keys_on_a_cluster() -> None:
    for role in roles("ss", ["idp"], cluster=True, replicas=True):
        allowed = "-command|getkeys " not in role.rules
        assert allowed == (role.kind == "worker"), role.kind


def test_an_idp_session_is_recorded_by_the_app_and_looked_up_by_the_worker(users: Users) -> None:
    """The app's login records the IdP session (its index first) and looks it up; the worker
    looks it up too (``SMEMBERS``, as it will for an IdP's logout): no refusal."""
    app = SessionService(users.settings("app"))
    worker = SessionCore(users.settings("worker"), plain=True)
    with raw_client(users.urls["worker"]) as raw_worker, raw_client(users.admin) as admin:
        pair = app.login("alice", idp_issuer=IDP, idp_sid=IDP_SID)
        assert app.sessions_for_idp(IDP, IDP_SID) == [pair.session_id]
        assert run(raw_worker, worker.idp_sessions(IDP, IDP_SID)) == [pair.session_id]
        assert app.logout(pair.session_id) is True
        assert acl_log(admin) == []
    app.close()


def test_the_cluster_steps_record_an_idp_session_under_the_app_user(users: Users) -> None:
    app = SessionService(users.settings("app"))
    app.core = SessionCore(app.settings, cluster=True)
    with raw_client(users.admin) as admin:
        pair = app.login("alice", idp_issuer=IDP, idp_sid=IDP_SID)
        assert app.sessions_for_idp(IDP, IDP_SID) == [pair.session_id]
        assert acl_log(admin) == []
    app.close()


def test_the_apps_worst_on_idp_indexes_touches_only_them(users: Users) -> None:
    """Under ``ss:idp:*`` the app may only add members, set expiries and read: made-up members
    are left out of a look-up (a real sid it adds is one it could log out itself); an expiry of
    0 drops the index (an IdP's logout then misses sessions the app could keep alive anyway);
    no script may DEL there, and nothing outside the pattern is reached through it."""
    app = SessionService(users.settings("app"))
    with raw_client(users.urls["app"]) as raw_app, raw_client(users.admin) as admin:
        pair = app.login("alice", idp_issuer=IDP, idp_sid=IDP_SID)
        raw_app.sadd(IDP_KEY, "junk", "x" * 10_000)
        assert app.sessions_for_idp(IDP, IDP_SID) == [pair.session_id]
        raw_app.pexpire(IDP_KEY, 10**12)  # a long life: one key, bounded by the app's logins
        reset = SCRIPTS["login_reset"].call({"counter": IDP_KEY}, {})
        with pytest.raises(StoreUnavailable):
            run(raw_app, _one(reset))  # the script's DEL is refused
        assert admin.exists(IDP_KEY) == 1
        raw_app.pexpire(IDP_KEY, 0)
        assert app.sessions_for_idp(IDP, IDP_SID) == []
        assert app.get_session(pair.session_id).idp_sid == IDP_SID  # the session is untouched
    app.close()
