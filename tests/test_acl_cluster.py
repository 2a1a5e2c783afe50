"""The Redis ACL users of every role on a 3-primary Redis Cluster, as ``sessionsvc redis acl
--cluster`` prints them: created on every node (ACL users do not replicate, nor travel on the
cluster bus), every role runs its real code under its own user with
``SESSIONSVC_REDIS_CLUSTER=true`` with no refusal in any node's ``ACL LOG``; each role's worst
legal cluster-only command shows the topology or the command table, never a key, a value or a
password; cluster administration stays refused for every role; an ASK is answered under the
validator's user."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
import redis.asyncio.cluster
import redis.cluster
from redis.exceptions import NoPermissionError
from redis_cluster import ClusterProcess
from revocation_harness import (
    REV,
    Applier,
    Tokens,
    dead_letters,
    feed_settings,
    following,
    outcome,
    running_worker,
    wait_for,
)

from sessionsvc import AsyncPublisher, AsyncSessionService, Publisher, Revocation, SessionService
from sessionsvc._redis.acl import password_hash, render, roles
from sessionsvc._redis.bounded import BoundedConnection
from sessionsvc._redis.hotconn import AsyncHotConnection, HotConnection
from sessionsvc._redis.run import run
from sessionsvc.config import Settings
from sessionsvc.embedded import RedisProcess
from sessionsvc.integrations.web.config import WebSettings
from sessionsvc.integrations.web.throttle import LoginThrottle
from sessionsvc.sessions.core import SessionCore
from sessionsvc.sessions.keys import SessionKeys

pytestmark = [pytest.mark.redis, pytest.mark.cluster]

PUBLISHERS = {"idp": ["session.revoke", "user.revoke"], "billing": ["session.revoke"]}
KINDS = ["operator", "validator", "app", "worker", "publisher:idp", "publisher:billing"]
FAST = {"tick_interval": 0.1, "max_staleness": 1.0}  # (a feed on a replica: fresh from ticks)
SECRET_VALUE = "value-never-shown"
SECRET_KEY = "ss:{u:c2VjcmV0LXVzZXI}:s:S-hidden"
IDP, IDP_SID = "https://idp.example.test", "idp-session-1"
IDP_KEY = SessionKeys("ss").idp(IDP, IDP_SID)


@dataclass
class Users:
    cluster: ClusterProcess
    urls: dict[str, str]  # role kind -> a node's URL with that user's name and password
    base: Settings
    passwords: list[str]

    def settings(self, kind: str, **overrides: object) -> Settings:
        url = self.base.redis_url.__class__(self.urls[kind])
        return self.base.model_copy(update={"redis_url": url, **overrides})

    def client(self, kind: str) -> redis.cluster.RedisCluster:
        """A plain redis-py cluster client under ``kind``'s user (no sessionsvc code)."""
        return redis.cluster.RedisCluster.from_url(self.urls[kind], driver_info=None)

    def acl_log(self) -> dict[int, list[Any]]:
        """Every running node's ``ACL LOG`` (port -> entries), the empty ones left out."""
        out = {}
        for node in running(self.cluster):
            with redis.Redis(port=node.port) as admin:
                entries = list(admin.execute_command("ACL", "LOG"))
            if entries:
                out[node.port] = entries
        return out


def on_a_node(users: Users, kind: str, *command: str) -> Any:
    """``command``'s raw reply from the first node, under ``kind``'s user (no parsing)."""
    with redis.Redis.from_url(users.urls[kind], driver_info=None) as client:
        conn = client.connection_pool.get_connection()
        try:
            conn.send_command(*command)
            return conn.read_response()
        finally:
            client.connection_pool.release(conn)


def running(cluster: ClusterProcess) -> list[RedisProcess]:
    return [node for node in cluster.nodes if node.running]


def create_users(
    cluster: ClusterProcess, *, replicas: bool = False, durability: str = "none"
) -> Users:
    """Every role's user from ``roles(..., cluster=True)``, rendered as the CLI prints it, set
    on every node (primaries and replicas: a failover must find them there too)."""
    url = cluster.url
    rules = roles("ss", sorted(PUBLISHERS), cluster=True, replicas=replicas, durability=durability)
    urls, passwords, lines = {}, [], []
    for role in rules:
        password = secrets.token_urlsafe(24)
        passwords.append(password)
        lines.append(render(role, password_hash(password)))
        urls[role.kind] = url.replace("redis://", f"redis://{role.user}:{password}@")
    for node in running(cluster):
        with redis.Redis(port=node.port) as admin:
            for line in lines:
                admin.execute_command(*line.split())
            admin.execute_command("ACL", "LOG", "RESET")
    base = feed_settings(url, publishers=PUBLISHERS, redis_cluster=True)
    return Users(cluster, urls, base, passwords)


def drop_users(cluster: ClusterProcess) -> None:
    names = [r.user for r in roles("ss", sorted(PUBLISHERS))]
    for node in running(cluster):
        with redis.Redis(port=node.port) as admin:
            admin.execute_command("ACL", "DELUSER", *names)
            admin.execute_command("ACL", "LOG", "RESET")


@pytest.fixture
def users(redis_cluster: ClusterProcess, redis_cluster_url: str) -> Iterator[Users]:
    """Every role's user on every node of the shared cluster (emptied); removed afterwards."""
    try:
        yield create_users(redis_cluster)
    finally:
        drop_users(redis_cluster)


@pytest.fixture
def admin(redis_cluster_url: str) -> Iterator[redis.cluster.RedisCluster]:
    client = redis.cluster.RedisCluster.from_url(redis_cluster_url)
    try:
        yield client
    finally:
        client.close()


def test_every_role_runs_under_its_user_with_no_refusal(
    users: Users, admin: redis.cluster.RedisCluster
) -> None:
    """Sessions (each operation's single-slot steps), both publishers and the operator (by
    stream and by pub/sub), the worker (apply, dead letters, forwarder, chores), the feed."""
    tokens = Tokens(users.base)
    app = SessionService(users.settings("app"))
    operator = Publisher(users.settings("operator"))
    idp = Publisher(users.settings("publisher:idp"), intake="idp")
    billing, raw_operator = users.client("publisher:billing"), users.client("operator")
    try:
        with (
            following(users.settings("validator")) as v,
            running_worker(users.settings("worker"), pubsub=True, housekeeping=0.1) as rw,
        ):
            pair = app.login("alice")
            pair = app.refresh(pair.refresh_token)
            assert [s.session_id for s in app.list_sessions("alice")] == [pair.session_id]
            assert outcome(v, pair.access_token) == "ok"
            app.logout(pair.session_id)
            wait_for(lambda: outcome(v, pair.access_token) == "revoked", "the logout")

            victims = {sid: tokens.access("bob", sid) for sid in ("S-1", "S-2", "S-3", "S-4")}
            operator.revoke_session("S-1")
            idp.revoke_session("S-2")
            wait_for(lambda: subscribers(admin, "{ss:events}:billing") >= 1, "subscribed")
            billing.publish(
                "{ss:events}:billing", json.dumps({"type": "session.revoke", "sid": "S-3"})
            )
            raw_operator.publish("ss:events", json.dumps({"type": "session.revoke", "sid": "S-4"}))
            for sid, token in victims.items():
                wait_for(lambda t=token: outcome(v, t) == "revoked", f"the revocation of {sid}")
            idp.revoke_user("erin", before=time.time())
            wait_for(lambda: admin.hget(REV.key("user"), "erin"), "the user revocation")
            billing.xadd("{ss:events}:billing", {"type": "all.revoke", "before": "1"})
            wait_for(lambda: admin.xlen("{ss:events}:dlq") == 1, "the dead letter")
            letters = dead_letters(admin)  # type: ignore[arg-type]
            assert [m["dlq:error"] for m in letters.values()] == ["not_allowed"]

            done = rw.worker.health.ok_at.get("housekeeping", 0.0)
            wait_for(lambda: rw.worker.health.ok_at.get("housekeeping", 0.0) > done, "chores")
            app.login("dave")
            assert app.logout_all("dave") == 1
            time.sleep(0.5)  # a refusal anywhere would be logged by now
            assert users.acl_log() == {} and rw.alive
    finally:
        for closing in (app, operator, idp, billing, raw_operator):
            closing.close()


def subscribers(client: redis.cluster.RedisCluster, channel: str) -> int:
    """Subscribers of ``channel`` on every primary (PUBSUB NUMSUB counts a node's own)."""
    replies: Any = client.pubsub_numsub(channel, target_nodes=client.PRIMARIES)
    if isinstance(replies, dict):
        return sum(int(counts[0][1]) for counts in replies.values())
    return sum(int(n) for _, n in replies)


def test_the_async_roles_run_under_their_users_with_no_refusal(users: Users) -> None:
    """``redis.asyncio``'s cluster client: the async session service, the async publisher and a
    validator following the log on an event loop."""

    async def sessions() -> list[str]:
        app = AsyncSessionService(users.settings("app"))
        publisher = AsyncPublisher(users.settings("publisher:idp"), intake="idp")
        try:
            pair = await app.login("alice")
            pair = await app.refresh(pair.refresh_token)
            await app.logout(pair.session_id)
            await app.login("bob")
            assert await app.logout_all("bob") == 1
            await publisher.revoke_session("S-async")
            return [pair.session_id]
        finally:
            await app.aclose()
            await publisher.aclose()

    with (
        following(users.settings("validator"), "async") as v,
        running_worker(users.settings("worker")),
    ):
        (sid,) = asyncio.run(sessions())
        victim = Tokens(users.base).access("bob", "S-async")
        wait_for(lambda: outcome(v, victim) == "revoked", "the async publisher's revocation")
        assert outcome(v, Tokens(users.base).access("alice", sid)) == "revoked"
        assert users.acl_log() == {}


def test_the_app_throttles_logins_under_its_user_with_no_refusal(users: Users) -> None:
    """The throttling scripts on a name's counter (its user's slot) and an address's
    (``ss:{ip:*``), each a single-slot ``EVALSHA`` routed by its keys."""
    throttle = LoginThrottle(WebSettings(login_user_attempts=2, _env_file=None), "ss")
    with users.client("app") as app:
        assert run(app, throttle.check("carol", "192.0.2.7")) is None
        assert run(app, throttle.check("carol", "2001:db8::1")) is None
        assert run(app, throttle.check("carol", "192.0.2.8")) is not None  # the name's limit
        run(app, throttle.succeeded("carol", "192.0.2.7"))
        assert run(app, throttle.check("carol", "192.0.2.7")) is None
    assert users.acl_log() == {}


def test_an_idp_session_is_recorded_by_the_app_and_looked_up_by_the_worker(users: Users) -> None:
    """The app's login records the IdP session (its index: a step in a slot of its own) and
    looks it up; the worker looks it up too (``SMEMBERS`` routed by its key): no refusal."""
    app = SessionService(users.settings("app"))
    worker = SessionCore(users.settings("worker"), plain=True)
    try:
        with users.client("worker") as raw_worker:
            pair = app.login("alice", idp_issuer=IDP, idp_sid=IDP_SID)
            assert app.sessions_for_idp(IDP, IDP_SID) == [pair.session_id]
            assert run(raw_worker, worker.idp_sessions(IDP, IDP_SID)) == [pair.session_id]
            assert app.logout(pair.session_id) is True
        assert users.acl_log() == {}
    finally:
        app.close()


IDP_REFUSED = [
    ("validator", ("SMEMBERS", IDP_KEY)),
    ("validator", ("SADD", IDP_KEY, "x")),
    ("app", ("DEL", IDP_KEY)),
    ("app", ("SREM", IDP_KEY, "x")),
    ("worker", ("SADD", IDP_KEY, "x")),
    ("worker", ("DEL", IDP_KEY)),
    ("worker", ("PEXPIRE", IDP_KEY, "0")),
]


@pytest.mark.parametrize(("kind", "command"), IDP_REFUSED)
def test_the_idp_indexes_refuse_what_a_role_does_not_need(
    users: Users, kind: str, command: tuple[str, ...]
) -> None:
    with users.client(kind) as client, pytest.raises(NoPermissionError):
        client.execute_command(*command)


def test_the_direct_policy_asks_the_cluster_under_the_validators_user(users: Users) -> None:
    settings = users.settings("validator", max_staleness=1, staleness_policy="direct")
    victim = Tokens(settings).access("alice", "S-victim")
    with following(settings) as v:
        assert outcome(v, victim) == "ok"
    try:  # the feed has stopped: the view goes stale, every check asks the cluster
        with redis.cluster.RedisCluster.from_url(users.cluster.url) as admin:
            Applier(admin)(Revocation("session", "S-victim", until=time.time() + 600))
        wait_for(lambda: v.health()["stale"], "the view to go stale")
        assert outcome(v, victim) == "revoked"
        assert users.acl_log() == {}
    finally:
        v.close()


def test_a_validator_on_a_replica_runs_under_its_user_with_no_refusal(
    redis_cluster_with_replicas: ClusterProcess,
) -> None:
    """With ``--read-from-replicas`` the validator finds a replica of the ``{rev}`` slot
    (``CLUSTER NODES``) and reads there after ``READONLY``; the worker's ticks keep it fresh."""
    cluster = redis_cluster_with_replicas
    users = create_users(cluster, replicas=True)
    settings = users.settings("validator", read_from_replicas=True, **FAST)
    victim = Tokens(settings).access("alice", "R-c")
    with (
        running_worker(users.settings("worker", **FAST)),
        following(settings) as v,
    ):
        wait_for(lambda: not v.health()["stale"], "fresh from the ticks")
        with redis.cluster.RedisCluster.from_url(cluster.url) as admin:
            Applier(admin)(Revocation("session", "R-c", until=time.time() + 600))
        wait_for(lambda: outcome(v, victim) == "revoked", "the revocation through the replica")
        assert users.acl_log() == {}


def test_every_role_follows_a_failover_under_its_user(
    redis_cluster_with_replicas: ClusterProcess,
) -> None:
    """The ``{rev}`` primary dies and its replica (which got the users too) is promoted: the
    validator's feed and the worker re-read the slot map under their users, and an operator's
    revocation sent after the failover reaches the validator, with no refusal anywhere."""
    cluster = redis_cluster_with_replicas
    users = create_users(cluster)
    victim = Tokens(users.base).access("alice", "S-after")
    with following(users.settings("validator")) as v, running_worker(users.settings("worker")):
        old = cluster.node_serving(REV.log)
        old.kill()
        wait_for(lambda: cluster.node_serving(REV.log) is not old, "a replica promoted")
        port = next(n.port for n in running(cluster))
        url = re.sub(r":\d+/0$", f":{port}/0", users.urls["operator"])
        wait_for(lambda: published(url, "S-after"), "a revocation after the failover")
        wait_for(lambda: outcome(v, victim) == "revoked", "the revocation after the failover")
        assert users.acl_log() == {}


def published(url: str, sid: str) -> bool:
    """``sid`` revoked through the trusted intake by a new operator client at ``url``; False
    while the cluster fails over."""
    try:
        with redis.cluster.RedisCluster.from_url(url, driver_info=None) as client:
            client.xadd("ss:events", {"type": "session.revoke", "sid": sid})
    except redis.RedisError:
        return False
    return True


@pytest.mark.parametrize("kind", KINDS)
def test_the_worst_legal_slot_map_and_command_table_hold_no_secret(
    users: Users, admin: redis.cluster.RedisCluster, kind: str
) -> None:
    """``CLUSTER SLOTS``: slot ranges, node addresses and ids. ``COMMAND``: the command table.
    ``ASKING``: one command admitted to an importing node, still under the user's rules."""
    admin.hset(SECRET_KEY, "refresh", SECRET_VALUE)
    slots = repr(on_a_node(users, kind, "CLUSTER", "SLOTS"))
    table = repr(on_a_node(users, kind, "COMMAND"))
    assert on_a_node(users, kind, "ASKING") == b"OK"
    assert all(str(n.port) in slots for n in users.cluster.nodes)
    assert "b'xadd'" in table and "b'cluster|slots'" in table
    for text in (slots, table):
        for secret in [*users.passwords, SECRET_VALUE, "c2VjcmV0LXVzZXI", "ss:{"]:
            assert secret not in text


def test_the_worst_legal_getkeys_of_the_worker_reads_no_key(
    users: Users, admin: redis.cluster.RedisCluster
) -> None:
    """``COMMAND GETKEYS`` (the worker's: redis-py asks it to route a script in a pipeline)
    parses its arguments: it names the keys given to it, reads none, on any node."""
    admin.hset(SECRET_KEY, "refresh", SECRET_VALUE)
    reply = on_a_node(users, "worker", "COMMAND", "GETKEYS", "HGET", SECRET_KEY, "refresh")
    assert reply == [SECRET_KEY.encode()]


def test_the_worst_legal_cluster_nodes_of_a_validator_on_replicas_holds_no_secret(
    redis_cluster: ClusterProcess, admin: redis.cluster.RedisCluster
) -> None:
    """``CLUSTER NODES``: node ids, addresses, flags, epochs, link states and slot ranges.
    ``READONLY`` lets the connection read a replica's keys, under the same key patterns."""
    admin.hset(SECRET_KEY, "refresh", SECRET_VALUE)
    users = create_users(redis_cluster, replicas=True)
    try:
        text = repr(on_a_node(users, "validator", "CLUSTER", "NODES"))
        assert on_a_node(users, "validator", "READONLY") == b"OK"
        assert all(str(n.port) in text for n in redis_cluster.nodes)
        for secret in [*users.passwords, SECRET_VALUE, "c2VjcmV0LXVzZXI", "ss:{"]:
            assert secret not in text
    finally:
        drop_users(redis_cluster)


REFUSED = [
    ("CLUSTER", "FORGET", "0" * 40),
    ("CLUSTER", "FAILOVER"),
    ("CLUSTER", "RESET"),
    ("CLUSTER", "SETSLOT", "0", "STABLE"),
    ("CLUSTER", "ADDSLOTS", "0"),
    ("CLUSTER", "DELSLOTS", "0"),
    ("CLUSTER", "FLUSHSLOTS"),
    ("CLUSTER", "MEET", "127.0.0.1", "1"),
    ("CLUSTER", "REPLICATE", "0" * 40),
    ("CLUSTER", "BUMPEPOCH"),
    ("CLUSTER", "SAVECONFIG"),
    ("CLUSTER", "GETKEYSINSLOT", "0", "10"),
    ("CLUSTER", "COUNTKEYSINSLOT", "0"),
    ("CLUSTER", "SHARDS"),
    ("CLUSTER", "INFO"),
    ("READWRITE",),
    ("COMMAND", "DOCS"),
    ("COMMAND", "INFO", "get"),
    ("COMMAND", "LIST"),
    ("COMMAND", "COUNT"),
    ("COMMAND", "GETKEYSANDFLAGS", "GET", "x"),
    ("COMMAND", "HELP"),
    ("CONFIG", "GET", "*"),
    ("CONFIG", "SET", "cluster-node-timeout", "1"),
    ("ACL", "LIST"),
    ("ACL", "SETUSER", "x"),
]


@pytest.mark.parametrize("command", REFUSED, ids=lambda c: " ".join(c[:2]))
def test_cluster_administration_is_refused_for_every_role(
    users: Users, command: tuple[str, ...]
) -> None:
    for kind in KINDS:
        with pytest.raises(NoPermissionError):
            on_a_node(users, kind, *command)


@pytest.mark.parametrize("command", [("CLUSTER", "NODES"), ("READONLY",)], ids=" ".join)
def test_without_replicas_no_role_may_list_nodes_or_read_a_replica(
    users: Users, command: tuple[str, ...]
) -> None:
    for kind in KINDS:
        with pytest.raises(NoPermissionError):
            on_a_node(users, kind, *command)


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "worker"])
def test_only_the_worker_may_ask_for_keys(users: Users, kind: str) -> None:
    with pytest.raises(NoPermissionError):
        on_a_node(users, kind, "COMMAND", "GETKEYS", "GET", "x")


# -- an ASK under the validator's user ----------------------------------------------------------


@dataclass
class Migration:
    """The ``{rev}`` slot half-way to ``target``: the log moved, nothing else."""

    users: Users
    slot: int
    source: RedisProcess
    target: RedisProcess


@pytest.fixture
def migration(users: Users) -> Iterator[Migration]:
    """One log entry; then the ``{rev}`` slot MIGRATING from its owner, IMPORTING on another
    primary, and the log migrated. Afterwards the slot goes back to its owner."""
    cluster = users.cluster
    with redis.cluster.RedisCluster.from_url(cluster.url) as client:
        client.xadd(REV.log, {"kind": "session"})
    source = cluster.node_serving(REV.log)
    target = next(n for n in cluster.primaries() if n is not source)
    slot = cluster.begin_migration(REV.log, target)
    try:
        cluster.migrate(source, target, REV.log)
        yield Migration(users, slot, source, target)
    finally:
        cluster.flush()
        for node in cluster.primaries():
            with redis.Redis(port=node.port) as plain:
                plain.execute_command("CLUSTER", "SETSLOT", slot, "STABLE")
        cluster.assign(slot, source)


LAST = ("XREVRANGE", REV.log, "+", "-", "COUNT", "1")  # (the feed's own read: no XLEN for it)


def test_the_source_answers_ask_to_the_validator(migration: Migration) -> None:
    """The premise of the tests below."""
    url = migration.users.urls["validator"].replace(
        f":{migration.users.cluster.nodes[0].port}/", f":{migration.source.port}/"
    )
    with (
        redis.Redis.from_url(url, driver_info=None) as plain,
        pytest.raises(redis.exceptions.AskError) as ask,
    ):
        plain.xrevrange(REV.log, count=1)
    assert ask.value.port == migration.target.port


@pytest.mark.parametrize("kind", [HotConnection, BoundedConnection])
def test_a_hot_connection_answers_an_ask_under_the_validators_user(
    migration: Migration, kind: type[HotConnection]
) -> None:
    client = migration.users.client("validator")
    conn = kind(client, key=REV.log)
    try:
        assert len(conn(*LAST)) == 1
        assert [len(r) for r in conn.many(LAST, LAST)] == [1, 1]
    finally:
        conn.close()
        client.close()
    assert migration.users.acl_log() == {}


def test_the_async_hot_connection_answers_an_ask_under_the_validators_user(
    migration: Migration,
) -> None:
    async def scenario() -> list[int]:
        client = redis.asyncio.cluster.RedisCluster.from_url(
            migration.users.urls["validator"], driver_info=None
        )
        conn = AsyncHotConnection(client, REV.log)
        try:
            return [len(await conn(*LAST)), *[len(r) for r in await conn.many(LAST, LAST)]]
        finally:
            await conn.aclose()
            await client.aclose()

    assert asyncio.run(scenario()) == [1, 1, 1]
    assert migration.users.acl_log() == {}


def test_redis_pys_own_ask_is_answered_under_the_validators_user(migration: Migration) -> None:
    with migration.users.client("validator") as client:
        assert len(client.xrevrange(REV.log, count=1)) == 1
    assert migration.users.acl_log() == {}


@pytest.mark.topology
@pytest.mark.parametrize("durability", ["aof", "replica"])
def test_the_durability_levels_run_under_every_roles_user(
    redis_cluster_with_replicas: ClusterProcess, durability: str
) -> None:
    """The confirmations (``WAIT`` and the barrier on the primary of the revocation's slot, the
    ``aof`` check) under the cluster rules of that level: no refusal anywhere."""
    cluster = redis_cluster_with_replicas
    if durability == "aof":
        for node in running(cluster):
            with redis.Redis(port=node.port) as admin:
                admin.config_set("appendonly", "yes")
    users = create_users(cluster, durability=durability)
    level = {"durability": durability}
    victim = Tokens(users.base).access("bob", "S-dur")
    app = SessionService(users.settings("app", **level))
    operator = Publisher(users.settings("operator", **level))
    with (
        following(users.settings("validator")) as v,
        running_worker(users.settings("worker", **level)) as rw,
    ):
        pair = app.login("alice")
        app.logout(app.refresh(pair.refresh_token).session_id)
        app.login("alice")
        assert app.logout_all("alice") == 1
        operator.revoke_session("S-dur")
        wait_for(lambda: outcome(v, victim) == "revoked", "the operator's revocation")
        assert users.acl_log() == {} and rw.alive
    app.close()
    operator.close()
