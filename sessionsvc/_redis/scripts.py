"""The script registry: every Lua script of sessionsvc, its KEYS and ARGV by name, one runner.

A ``Script`` is a name, its text (a generated prelude, then ``.lua`` files of
``sessionsvc._redis.lua``: library parts such as ``apply.lua``, then the body), its SHA-1 and
the names of its KEYS and ARGV. The prelude declares those names, so no Lua body indexes
``KEYS``/``ARGV`` itself:

- ``local K = {sid = KEYS[1], …, idx = KEYS[6]}``: the ``{rev}`` keys it touches
  (``sessionsvc._redis.layout``), then its own keys (``user:until`` is ``K.user_until``);
- ``local A = {now = ARGV[1], …}``: its ARGV (an ARGV that holds an index into KEYS, such as
  a revocation's ``budget``, gives the key: ``KEYS[tonumber(ARGV[i])]``);
- for a script that takes records (``apply_batch``: n revocations) a reader
  ``<record>_at(o)`` that returns the table of the record whose first field is ``ARGV[o]``;
- ``K_MORE``/``A_MORE``: where variable trailing KEYS/ARGV start; constants (``LAYOUT_*``).

The Python side builds KEYS and ARGV from the same names (``Script.call``; ``Script.bind`` for
the session hot path, a keyword function generated from the declaration): a missing or unknown
name is a ``ScriptArgsError`` (a ``TypeError``) before any I/O, so the two sides cannot drift. Every
caller sends through ``evalsha_args``/``load_args`` and the one NOSCRIPT rule (``is_noscript``:
load the script, send again): ``sessionsvc._redis.run`` for the pure cores' calls, ``run`` here
for a caller holding its own connection (the worker's), the worker's pipelined ``ScriptRunner``
for many.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from redis.exceptions import NoScriptError, ResponseError

from sessionsvc._redis import layout
from sessionsvc._redis.script import Call, Record, Script, ScriptArgsError

__all__ = [
    "REVOCATION",
    "SCRIPTS",
    "Call",
    "Record",
    "Script",
    "ScriptArgsError",
    "is_noscript",
    "run",
]


REVOCATION: Final = Record(
    "revocation",
    ("kind", "value", "before", "till", "epoch", "id", "source", "reason", "at", "cap", "budget"),
    key_refs=("budget",),
)
"""One revocation for the apply path (``till`` is its until; ``budget`` the index in KEYS of a
publisher's budget, 0: none; ``cap`` that budget's bound, 0: none)."""


def is_noscript(reply: object) -> bool:
    """The one NOSCRIPT rule: Redis does not hold the script (restarted, failed over, SCRIPT
    FLUSH): load it (``load_args``) and send the same EVALSHA again."""
    return isinstance(reply, NoScriptError)


def run(send: Callable[..., Any], call: Call) -> Any:
    """Run ``call`` through ``send`` (e.g. ``redis.Redis.execute_command``), loading the
    script once on NOSCRIPT."""
    script = SCRIPTS[call.script]
    command = script.evalsha_args(call.keys, call.args)
    try:
        return send(*command)
    except ResponseError as exc:
        if not is_noscript(exc):
            raise
    send(*script.load_args())
    return send(*command)


_SESSION = ("apply", "session")
_LAYOUT = {"LAYOUT_INDEX": layout.INDEX, "LAYOUT_SESSION": layout.SESSION}
_META = ("epoch", "reason", "source", "id", "cap")
_LOGIN_ARGV = (
    *("now", "sub", "sid", "jti", "iat", "exp", "idle_exp", "abs_exp", "ip", "ua", "device"),
    *("claims", "max_sessions", "idp_iss", "idp_sid", "till", "epoch"),
)
_REFRESH_ARGV = (
    *("now", "sid", "jti", "kid", "new_jti", "new_iat", "refresh_ttl", "idle_timeout"),
    *("overlap", "till", "epoch", "leeway"),
)

_USER_REFRESH_ARGV = (
    *("now", "sid", "jti", "new_jti", "new_iat", "refresh_ttl", "idle_timeout", "overlap"),
    *("leeway", "user_before", "all_before", "sid_revoked", "jti_revoked", "kid_revoked"),
)


def _session(
    name: str,
    *,
    argv: tuple[str, ...],
    rev: tuple[str, ...] = (),
    keys: tuple[str, ...] = ("idx", "session"),
    optional: int = 0,
) -> Script:
    # a session script: the library parts of the apply path, then lua/<name>.lua
    parts = (*_SESSION, name)
    return Script(name, parts, rev=rev, keys=keys, optional=optional, argv=argv, consts=_LAYOUT)


def _apply(
    name: str, body: str, *, argv: tuple[str, ...] | Record, records: Record | None = None
) -> Script:
    # the apply path: every {rev} key it may touch, then the budget keys named by its records
    rev = layout.REV_APPLY
    return Script(name, ("apply", body), rev=rev, argv=argv, records=records, more_keys="budgets")


def _login_counter(name: str, *argv: str) -> Script:
    # login throttling: one counter key per call (a user name's slot, or a client address's)
    return Script(name, (name,), keys=("counter",), argv=argv)


_ALL: Final = (
    _session("login", rev=("user", "all", "sid", "log", "epoch"), argv=_LOGIN_ARGV),
    _session(
        "refresh", rev=("sid", "jti", "user", "all", "kid", "log", "epoch"), argv=_REFRESH_ARGV
    ),
    _session(
        "logout",
        rev=("sid", "log", "epoch"),
        keys=("idx", "session", "budget"),
        optional=1,
        argv=("now", "sid", "till", *_META),
    ),
    _session(
        "logout_all",
        rev=("user", "user:until", "log", "epoch"),
        keys=("idx", "budget"),
        optional=1,
        argv=("now", "sub", "before", "till_offset", *_META, "clamp"),
    ),
    _session("list", keys=("idx",), argv=("now",)),
    _session("get", keys=("session",), argv=("now",)),
    # a login that records an IdP session: its index first (one slot of its own), then login
    Script("login_idp", ("login_idp",), keys=("idp",), argv=("sid", "ttl_ms")),
    _apply("apply", "apply_main", argv=REVOCATION),
    _apply("apply_batch", "apply_batch", argv=("n",), records=REVOCATION),
    Script(
        "housekeep",
        ("apply", "housekeep"),
        rev=layout.REV_APPLY,
        keys=("trimmed", "lock"),
        argv=("now", "min_id", "lock_ms"),
        flags="allow-oom",  # a full Redis must be able to prune and trim its way back
    ),
    # Redis Cluster: the session operations in single-slot steps (sessionsvc.sessions.cluster)
    Script(
        "rev_read",
        ("rev_read",),
        rev=("sid", "jti", "user", "all", "kid"),
        argv=("sub", "jti", "kid"),
        more_argv="sids",
        flags="no-writes",
    ),
    _apply("apply_own", "apply_own", argv=REVOCATION),
    Script(
        "user_login",
        (*_SESSION, "user_login"),
        keys=("idx", "session", "fence"),
        argv=(*_LOGIN_ARGV[:-2], "cutoff"),
        more_argv="evicted",
        consts=_LAYOUT,
    ),
    _session("user_refresh", keys=("idx", "session", "fence"), argv=_USER_REFRESH_ARGV),
    Script("user_mark", ("user_mark",), keys=("session",), argv=("reason", "remove")),
    Script("user_end", ("user_end",), keys=("idx", "session"), argv=("sid",)),
    _session(
        "fence_open", keys=("idx", "fence"), argv=("before", "clamp", "ttl_ms", "op", "origin")
    ),
    _session("fence_close", keys=("idx", "fence"), argv=("op", "before", "abort", "ttl_ms")),
    _login_counter("login_reserve", "window_ms"),
    _login_counter("login_release", "window_ms"),
    _login_counter("login_reset"),
    Script("oldest", ("oldest",), argv=("group",), more_keys="streams"),
    Script("forget", ("forget",), keys=("stream",), argv=("group", "consumer")),
    Script("forward", ("forward",), keys=("stream", "dedup"), argv=("ttl",), more_argv="fields"),
    Script(
        "idp_accept",
        ("idp_accept",),
        keys=("stream", "claim"),
        argv=("ttl_ms",),
        more_argv="fields",
    ),
    Script("idp_claim", ("idp_claim",), keys=("claim",), argv=("entry", "ttl_ms")),
    Script("lease_extend", ("lease_extend",), keys=("lease",), argv=("owner", "ttl_ms")),
    Script("lease_release", ("lease_release",), keys=("lease",), argv=("owner",)),
    Script(
        "dead_letter_once",
        ("dead_letter_once",),
        keys=("dlq", "dedup"),
        argv=("ttl", "max_len"),
        more_argv="fields",
    ),
)
SCRIPTS: Final[dict[str, Script]] = {s.name: s for s in _ALL}
"""Every script, by name."""
