"""The Redis ACL rules of every role (pure): what ``sessionsvc redis acl`` prints.

One Redis user per role, each with only the commands and keys it needs (the trust model is in
``docs/security.md``). Redis ACLs cannot restrict a command's arguments, so a publisher's power
is bounded by *which keys* its rules name: exactly its own intake stream and channel, no
wildcard (``sessionsvc.revocation.intakes``). Every line holds on Redis 7.0 and later and
on Valkey 8.

- **operator** (``<ns>-operator``): send every event type to the trusted intake ``<ns>:events``
  (stream and channel).
- **publisher P** (``<ns>-pub-P``): send to its own intake ``{<ns>:events}:P`` (stream and
  channel), nothing else.
- **validator** (``<ns>-validator``): read the revocation state and log; set the epoch once.
- **app** (``<ns>-app``): the session scripts: sessions, and session and user revocations
  through the apply path; the login-throttling scripts on login-attempt counters, a user name's
  in its ``{u:…}`` slot and a client address's under ``<ns>:{ip:*`` (a selector of its own:
  only the counter commands, only there); the identity providers' session indexes
  ``<ns>:idp:{…}`` (a selector of their own: ``SADD`` and ``PEXPIRE`` through the
  ``login_idp`` script, ``SMEMBERS`` for ``sessions_for_idp``, nothing else).
- **worker** (``<ns>-worker``): consume every intake, apply, dead-letter, forward pub/sub,
  housekeeping; ``SMEMBERS`` of the identity providers' session indexes (a selector: it looks
  the sessions of an IdP's logout up), nothing else there.

Durability (``SESSIONSVC_DURABILITY``, ``sessionsvc._redis.durability``): the writing roles may
``WAIT`` (it blocks only the caller's own connection, at most its timeout); app and worker may
write the barrier ``<ns>:{rev}:durable`` (the worker under its ``{rev}`` rules). Only at the
``aof`` level (``durability``) do app and worker get ``+info|persistence``, for the check that
reads ``INFO persistence`` before their first write. That rule names the first argument only,
and Redis (7.0 and later) lets more sections follow it: ``INFO persistence everything`` is legal
for them and shows every section (``tests/test_acl.py``): the server's version, OS, process id,
executable and config file paths, ports, uptime; client and memory counters; replication (the
replicas' addresses, the replication ids and offsets); per-command and per-error counts,
latencies; the number of keys per database. No password, key name, value, token or session:
reconnaissance, no secret. At ``none`` and ``replica`` no role may run ``INFO`` at all.

Redis Cluster (``SESSIONSVC_REDIS_CLUSTER``, ``roles(..., cluster=True)``,
``sessionsvc redis acl --cluster``): redis-py's cluster client (8.x, sync and asyncio) and the
slot-pinned connections (``sessionsvc._redis.slotpool``) send a few commands beyond the roles'
data commands, each role gets exactly those it sends, and none names a key:

- ``+cluster|slots`` (every role): the slot map, read when a client is built (the sync client
  in its constructor, the asyncio one on first use) and re-read after a MOVED, a connection
  error, CLUSTERDOWN (a failover), and by a pinned connection after a MOVED or ASK. Worst: the
  topology (slot ranges, node addresses, ports, ids). Never ``CLUSTER SHARDS`` (redis-py only
  parses its reply when asked), never ``CLUSTER NODES`` but for the replica feed.
- the bare ``COMMAND`` (every role): the command table redis-py reads when a cluster client is
  built, to find the keys of what it routes. ACL rules cannot name a command without its
  subcommands, so the rule is ``+command`` with each subcommand taken away again. Worst: the
  server's command table (names, arities, flags, key positions, categories); no data.
- ``+command|getkeys`` (the worker only): a non-transaction cluster pipeline routes each command
  by its keys and, for one whose keys move (``EVALSHA``: the worker's scripts go in pipelines),
  asks the server with ``COMMAND GETKEYS``. Worst: the server names the keys among the
  arguments it is given; it reads none. The others send no such pipeline on a cluster (single
  commands route ``EVALSHA`` by its numkeys; transactions' commands have fixed key positions).
- ``+asking`` (every role): the answer to an ASK (a migrating slot's key already on the
  importing node): redis-py sends ``ASKING`` and the command there, and so do the pinned
  connections (``slotpool.asking``). Worst: one command admitted by an importing node, under
  the user's own command and key rules.
- ``+cluster|nodes +readonly`` (the validator, with ``replicas``: ``SESSIONSVC_READ_FROM_REPLICAS``
  on a cluster): the feed finds a replica of the ``{rev}`` slot in ``CLUSTER NODES``
  (``_redis.replicas``) and its connections there send ``READONLY``. Worst: the topology with
  flags, epochs and link states; reads of its own keys on a replica (the ticks bound how stale).

No role may run a cluster administration command (``CLUSTER FORGET``/``FAILOVER``/``RESET``/
``SETSLOT``/…, ``READWRITE``, ``CONFIG``, ``ACL``): ``tests/test_acl_cluster.py``. ACL users
do not replicate: the lines go to every node, replicas too.

The sentinels (``SESSIONSVC_REDIS_SENTINELS``) keep users of their own: ``sentinel_role`` is the
one sessionsvc's clients authenticate as there (``SESSIONSVC_REDIS_SENTINEL_USERNAME``,
default ``<ns>-sentinel``). redis-py's ``Sentinel`` sends a sentinel only ``AUTH`` (or ``HELLO``,
which every user may run) and ``SENTINEL MASTERS`` (``discover_master``: no client name, no
``CLIENT SETINFO``, no health-check ``PING``), so its rule is ``+sentinel|masters``: it reads the
state of every service the sentinel monitors (addresses, flags, quorum, timeouts: no password)
and can change nothing — ``SENTINEL SET``/``REMOVE``/``FAILOVER``/``MONITOR``/``RESET``/``CONFIG``
are refused, and so is ``SENTINEL GET-MASTER-ADDR-BY-NAME`` (other clients' call, not redis-py's).

Passwords never appear in the rules as text: a role's password is given as its SHA-256
(``#<hex>``, which Redis stores as is), or as a placeholder that Redis refuses, so an unedited
line cannot create a user with a guessable password.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "BASE_ROLES",
    "EXAMPLE_PUBLISHER",
    "INFO_RULE",
    "REPLICA_RULES",
    "Role",
    "cluster_rules",
    "password_hash",
    "render",
    "roles",
    "sentinel_role",
]

BASE_ROLES: Final = ("operator", "validator", "app", "worker")
EXAMPLE_PUBLISHER: Final = "example"
Format = Literal["setuser", "aclfile"]
_LEVELS: Final = ("none", "aof", "replica")  # SESSIONSVC_DURABILITY's (durability.LEVELS)

_VALIDATOR: Final = (  # no scripts: a validator that could load one could run any Lua
    "+client|setname +multi +exec +exists +get +xinfo|stream +xrevrange +xread +zrange +zscore "
    "+hget +hgetall +smembers +sismember"
)
_APP: Final = (
    "+client|setname +evalsha +script|load +multi +exec +exists +get +xinfo|stream +xrevrange "
    "+xread +zrange +zscore +zcard +hget +hmget +hgetall +smembers +sismember +pttl +wait"
)
_WORKER: Final = (
    "+client|setname +ping +evalsha +script|load +multi +exec +xgroup|create "
    "+xgroup|delconsumer +xreadgroup +xack +xclaim +xpending +xinfo|groups +xinfo|consumers "
    "+xtrim +xlen +xadd +xrange +xrevrange +subscribe +set +get +mget +exists +del +hget +hset "
    "+hmget +hdel +hgetall +sadd +sismember +zadd +zrem +zcard +zcount +zscore +zrange "
    "+zrangebyscore +zremrangebyscore +pexpire +pexpireat +pttl +time +wait"
)
# On Redis Cluster (``cluster``, the module's text): the slot map, the bare COMMAND (every
# subcommand taken away again but, for the worker, GETKEYS), ASKING.
_COMMAND_SUBS: Final = ("count", "docs", "getkeys", "getkeysandflags", "help", "info", "list")


def cluster_rules(*, getkeys: bool) -> str:
    """What every role needs on Redis Cluster beyond its data commands; ``getkeys``: also
    ``COMMAND GETKEYS`` (the worker's: its scripts go in pipelines)."""
    subs = [sub for sub in _COMMAND_SUBS if not (getkeys and sub == "getkeys")]
    return " ".join(["+cluster|slots +command", *(f"-command|{sub}" for sub in subs), "+asking"])


REPLICA_RULES: Final = "+cluster|nodes +readonly"
"""The validator's on a cluster with ``read_from_replicas``: find the {rev} slot's replicas,
read there (module text)."""
SENTINEL_RULES: Final = "+sentinel|masters"  # what redis-py's Sentinel sends (module text)
INFO_RULE: Final = "+info|persistence"
"""The ``aof`` check's rule (app and worker, at that level only): see the module's text."""


@dataclass(frozen=True, slots=True)
class Role:
    """One Redis user: its name, its rules (without the password) and where its password is
    read from (``SESSIONSVC_ACL_PASSWORD_<password_name>``)."""

    kind: str
    user: str
    rules: str
    password_name: str


def roles(
    namespace: str,
    publishers: Sequence[str],
    only: Sequence[str] = (),
    *,
    durability: str = "none",
    cluster: bool = False,
    replicas: bool = False,
) -> list[Role]:
    """The roles of a namespace, in a fixed order: the base roles, then one per publisher
    (``publishers``; none configured: one example publisher). ``only`` picks roles by kind
    (``operator``, ``validator``, ``app``, ``worker``, ``publisher``, ``publisher:NAME``).
    ``durability`` (``SESSIONSVC_DURABILITY``): at ``aof`` app and worker may read
    ``INFO persistence``, at the other levels no role runs ``INFO``. ``cluster``
    (``SESSIONSVC_REDIS_CLUSTER``) adds what redis-py's cluster client sends beyond the data
    commands (``cluster_rules``) to every role; ``replicas`` (``SESSIONSVC_READ_FROM_REPLICAS``,
    on a cluster only) the validator's ``REPLICA_RULES``."""
    ns, tag = namespace, f"{{{namespace}:events}}"
    rev, users, ips = f"~{ns}:{{rev}}:*", f"~{ns}:{{u:*", f"~{ns}:{{ip:*"
    idps = f"~{ns}:idp:*"  # (sessionsvc.sessions.keys: SessionKeys.idp)
    epoch = f"(+set ~{ns}:{{rev}}:epoch)"
    barrier = f"(+set ~{ns}:{{rev}}:durable)"
    if durability not in _LEVELS:
        raise ValueError(f"unknown durability level: {durability}")
    info = f" {INFO_RULE}" if durability == "aof" else ""
    keyed = f" {cluster_rules(getkeys=True)}" if cluster else ""
    plain = f" {cluster_rules(getkeys=False)}" if cluster else ""
    app, worker = _APP + info + plain, _WORKER + info + keyed
    validator = _VALIDATOR + plain + (f" {REPLICA_RULES}" if cluster and replicas else "")
    writer = f"+client|setname +xadd +wait{plain}"
    base = {
        "operator": f"{writer} ~{ns}:events +publish &{ns}:events",
        "validator": f"{validator} {rev} {epoch}",
        "app": (
            f"{app} {rev} {users} {epoch} {barrier} (+zadd +hset +xadd ~{ns}:{{rev}}:sid "
            f"~{ns}:{{rev}}:user ~{ns}:{{rev}}:user:until ~{ns}:{{rev}}:log) "
            f"(+hset +hdel +del +zadd +zrem +zremrangebyscore +pexpire +incr {users}) "
            f"(+evalsha +get +pttl +incr +decr +pexpire {ips}) "
            f"(+evalsha +sadd +pexpire +smembers {idps})"
        ),
        "worker": (
            f"{worker} ~{ns}:events ~{tag}:* {rev} {users} &{ns}:events &{tag}:* (+smembers {idps})"
        ),
    }
    out = [Role(k, f"{ns}-{k}", r, k.upper()) for k, r in base.items()]
    for name in publishers or [EXAMPLE_PUBLISHER]:
        rules = f"{writer} ~{tag}:{name} +publish &{tag}:{name}"
        out.append(Role(f"publisher:{name}", f"{ns}-pub-{name}", rules, _env_name(name)))
    if not only:
        return out
    wanted = set(only)
    unknown = wanted - {r.kind for r in out} - {"publisher"}
    if unknown:
        raise ValueError(f"unknown role(s): {', '.join(sorted(unknown))}")
    return [
        r
        for r in out
        if r.kind in wanted or ("publisher" in wanted and r.kind.startswith("publisher:"))
    ]


def sentinel_role(namespace: str, user: str | None = None) -> Role:
    """The user sessionsvc's clients authenticate as on every sentinel (``user``, default
    ``<namespace>-sentinel``); its password is read from ``SESSIONSVC_ACL_PASSWORD_SENTINEL``."""
    return Role("sentinel", user or f"{namespace}-sentinel", SENTINEL_RULES, "SENTINEL")


def _env_name(publisher: str) -> str:
    return "PUBLISHER_" + publisher.upper().replace("-", "_")


def password_hash(password: str) -> str:
    """What Redis stores for ``password`` (``#<sha256 hex>`` in a rule)."""
    return hashlib.sha256(password.encode("utf-8")).hexdigest()


def render(
    role: Role,
    digest: str | None,
    fmt: Format = "setuser",
    *,
    client_setinfo: bool = False,
) -> str:
    """One line for ``role``: ``ACL SETUSER … reset on …`` or an ACL file's ``user … on …``.
    ``digest``: the password's SHA-256 hex; ``None`` writes a placeholder Redis refuses.
    ``client_setinfo`` allows ``CLIENT SETINFO`` (Redis >= 7.2 and Valkey only: Redis 7.0 refuses
    the whole line), which clients such as redis-py >= 5 send on connect."""
    secret = f"#{digest}" if digest else f"#<sha256-of-{role.user}-password>"
    rules = role.rules.replace("+client|setname", "+client|setname +client|setinfo", 1)
    rules = rules if client_setinfo else role.rules
    if fmt == "aclfile":
        return f"user {role.user} on {secret} -@all {rules}"
    return f"ACL SETUSER {role.user} reset on {secret} -@all {rules}"
