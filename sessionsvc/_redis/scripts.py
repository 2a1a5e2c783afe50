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

The Python side builds KEYS and ARGV from the same names (``Script.call``): a missing or
unknown name is a ``ScriptArgsError`` before any I/O, so the two sides cannot drift. Every
caller sends through ``evalsha_args``/``load_args`` and the one NOSCRIPT rule (``is_noscript``:
load the script, send again): ``run``/``arun`` for one call, the worker's pipelined
``ScriptRunner`` for many.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Final, NoReturn

from redis.exceptions import NoScriptError, ResponseError

from sessionsvc._redis import layout
from sessionsvc._redis.lua import source

__all__ = [
    "REVOCATION",
    "SCRIPTS",
    "Call",
    "Record",
    "Script",
    "ScriptArgsError",
    "arun",
    "is_noscript",
    "run",
]


class ScriptArgsError(TypeError):
    """A script call built with missing or unknown KEYS/ARGV names (a programming error)."""


@dataclass(frozen=True, slots=True)
class Call:
    """One script invocation: the name of a ``SCRIPTS`` entry, its KEYS and its ARGV."""

    script: str
    keys: list[str]
    args: list[Any]  # str; bytes where a caller passes raw field values (``more_argv``)


def _lua(name: str) -> str:
    return name.replace(":", "_")


def _mismatch(what: str, declared: Iterable[str], given: Iterable[str]) -> NoReturn:
    missing, unknown = set(declared) - set(given), set(given) - set(declared)
    raise ScriptArgsError(f"{what}: missing {sorted(missing)}, unknown {sorted(unknown)}")


class Record:
    """Named ARGV fields in a fixed order (a script's ARGV, or one revocation of a batch).
    ``key_refs`` hold an index into KEYS: the Lua table gets that key instead."""

    __slots__ = ("_get", "_names", "fields", "key_refs", "name")

    def __init__(self, name: str, fields: tuple[str, ...], key_refs: tuple[str, ...] = ()):
        self.name, self.fields, self.key_refs = name, fields, key_refs
        self._names = frozenset(fields)
        self._get = itemgetter(*fields) if len(fields) > 1 else None

    def values(self, values: Mapping[str, str]) -> list[str]:
        """The fields of ``values``, in order; ``ScriptArgsError`` unless the names match."""
        if values.keys() != self._names:
            _mismatch(f"{self.name} ARGV", self.fields, values)
        if self._get is None:
            return [values[n] for n in self.fields]
        return list(self._get(values))

    def lua_table(self, first: int | str) -> str:
        """The Lua table of the record whose first field is ``ARGV[first]`` (``first``: a
        number, or the name of a Lua variable)."""

        def at(i: int) -> str:
            if isinstance(first, int):
                return f"ARGV[{first + i}]"
            return f"ARGV[{first} + {i}]" if i else f"ARGV[{first}]"

        parts = (
            f"{_lua(n)} = {f'KEYS[tonumber({at(i)})]' if n in self.key_refs else at(i)}"
            for i, n in enumerate(self.fields)
        )
        return "{" + ", ".join(parts) + "}"


REVOCATION: Final = Record(
    "revocation",
    ("kind", "value", "before", "till", "epoch", "id", "source", "reason", "at", "cap", "budget"),
    key_refs=("budget",),
)
"""One revocation for the apply path (``till`` is its until; ``budget`` the index in KEYS of a
publisher's budget, 0: none; ``cap`` that budget's bound, 0: none)."""


class Script:
    """One registered script: ``rev`` ({rev} keys) and ``keys`` (its own; the last
    ``optional`` of them may be left out) make KEYS, then ``more_keys`` if named; ``argv``,
    then ``records`` (a count in ARGV says how many) or ``more_argv`` if named, make ARGV."""

    def __init__(
        self,
        name: str,
        parts: tuple[str, ...],
        *,
        rev: tuple[str, ...] = (),
        keys: tuple[str, ...] = (),
        optional: int = 0,
        argv: tuple[str, ...] | Record = (),
        records: Record | None = None,
        more_keys: str = "",
        more_argv: str = "",
        consts: Mapping[str, str] | None = None,
        flags: str = "",
    ) -> None:
        self.name, self.parts, self.rev, self.keys = name, parts, rev, keys
        self.optional = optional
        self.argv = argv if isinstance(argv, Record) else Record(name, argv)
        self.records, self.more_keys, self.more_argv = records, more_keys, more_argv
        self._required = frozenset(keys[: len(keys) - optional])
        self._keys = frozenset(keys)
        shebang = f"#!lua flags={flags}\n" if flags else ""
        self.text = shebang + self.prelude(consts or {}) + source(*parts)
        self.sha: str = hashlib.sha1(self.text.encode()).hexdigest()  # noqa: S324 (Redis' id)

    def prelude(self, consts: Mapping[str, str]) -> str:
        """The generated Lua that names this script's KEYS and ARGV (see the module doc)."""
        lines = [f"-- {self.name}: generated by sessionsvc._redis.scripts"]
        names = [*self.rev, *self.keys]
        if names:
            fields = ", ".join(f"{_lua(n)} = KEYS[{i}]" for i, n in enumerate(names, 1))
            lines.append(f"local K = {{{fields}}}")
        if self.more_keys:
            lines.append(f"local K_MORE = {len(names) + 1}  -- {self.more_keys}")
        if self.argv.fields:
            lines.append(f"local A = {self.argv.lua_table(1)}")
        after = len(self.argv.fields) + 1
        if self.records is not None:
            r = self.records
            lines.append(f"local A_MORE, {r.name.upper()}_SIZE = {after}, {len(r.fields)}")
            lines.append(f"local function {r.name}_at(o)\n  return {r.lua_table('o')}\nend")
        elif self.more_argv:
            lines.append(f"local A_MORE = {after}  -- {self.more_argv}")
        for name, value in consts.items():
            if not value.isprintable() or "'" in value or "\\" in value:
                raise ValueError(f"constant {name}: {value!r} cannot be quoted plainly")
            lines.append(f"local {name} = '{value}'")
        return "\n".join(lines) + "\n"

    def call(
        self,
        keys: Mapping[str, str],
        argv: Mapping[str, str],
        *,
        rev: Sequence[str] = (),
        more_keys: Sequence[str] = (),
        more_argv: Sequence[Any] = (),
    ) -> Call:
        """A ``Call`` of this script. ``rev`` are the {rev} keys (``rev_key`` of each of
        ``self.rev``), ``keys`` its own by name; ``ScriptArgsError`` on a name or count that
        does not match the declaration."""
        if len(rev) != len(self.rev) or not (self._required <= keys.keys() <= self._keys):
            if len(rev) != len(self.rev):
                raise ScriptArgsError(f"{self.name}: {len(rev)} {{rev}} keys for {self.rev}")
            _mismatch(f"{self.name} KEYS", self.keys, keys)
        if (more_keys and not self.more_keys) or (more_argv and not self.more_argv):
            raise ScriptArgsError(f"{self.name}: takes no more KEYS/ARGV than it names")
        own = [keys[n] for n in self.keys if n in keys]
        return Call(self.name, [*rev, *own, *more_keys], [*self.argv.values(argv), *more_argv])

    def batch(self, keys: list[str], records: Sequence[Sequence[str]]) -> Call:
        """A call of a records script (``apply_batch``): ``keys`` as one record call had them,
        ``records`` each built by ``self.records.values`` (the count goes first)."""
        return Call(self.name, keys, [str(len(records)), *(a for r in records for a in r)])

    def rev_keys(self, namespace: str) -> list[str]:
        """The {rev} keys of this script in ``namespace``, in order."""
        return [layout.rev_key(namespace, n) for n in self.rev]

    def evalsha_args(self, keys: Sequence[str], args: Sequence[str]) -> tuple[Any, ...]:
        """The command that runs this script: ``EVALSHA sha numkeys keys… args…``."""
        return ("EVALSHA", self.sha, len(keys), *keys, *args)

    def load_args(self) -> tuple[str, str]:
        """The command that loads this script: ``SCRIPT LOAD text``."""
        return ("SCRIPT LOAD", self.text)


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


async def arun(send: Callable[..., Awaitable[Any]], call: Call) -> Any:
    """``run`` for an asyncio client."""
    script = SCRIPTS[call.script]
    command = script.evalsha_args(call.keys, call.args)
    try:
        return await send(*command)
    except ResponseError as exc:
        if not is_noscript(exc):
            raise
    await send(*script.load_args())
    return await send(*command)


_SESSION = ("apply", "session")
_LAYOUT = {"LAYOUT_INDEX": layout.INDEX, "LAYOUT_SESSION": layout.SESSION}
_META = ("epoch", "reason", "source", "id", "cap")
_ALL: Final = (
    Script(
        "login",
        (*_SESSION, "login"),
        rev=("user", "all", "sid", "log", "epoch"),
        keys=("idx", "session"),
        argv=(
            *("now", "sub", "sid", "jti", "iat", "exp", "idle_exp", "abs_exp", "ip", "ua"),
            *("device", "claims", "max_sessions", "till", "epoch"),
        ),
        consts=_LAYOUT,
    ),
    Script(
        "refresh",
        (*_SESSION, "refresh"),
        rev=("sid", "jti", "user", "all", "kid", "log", "epoch"),
        keys=("idx", "session"),
        argv=(
            *("now", "sid", "jti", "kid", "new_jti", "new_iat", "refresh_ttl", "idle_timeout"),
            *("overlap", "till", "epoch", "leeway"),
        ),
        consts=_LAYOUT,
    ),
    Script(
        "logout",
        (*_SESSION, "logout"),
        rev=("sid", "log", "epoch"),
        keys=("idx", "session", "budget"),
        optional=1,
        argv=("now", "sid", "till", *_META),
        consts=_LAYOUT,
    ),
    Script(
        "logout_all",
        (*_SESSION, "logout_all"),
        rev=("user", "user:until", "log", "epoch"),
        keys=("idx", "budget"),
        optional=1,
        argv=("now", "sub", "before", "till_offset", *_META, "clamp"),
        consts=_LAYOUT,
    ),
    Script("list", (*_SESSION, "list"), keys=("idx",), argv=("now",), consts=_LAYOUT),
    Script("get", (*_SESSION, "get"), keys=("session",), argv=("now",), consts=_LAYOUT),
    Script(
        "apply",
        ("apply", "apply_main"),
        rev=layout.REV_APPLY,
        argv=REVOCATION,
        more_keys="budgets",
    ),
    Script(
        "apply_batch",
        ("apply", "apply_batch"),
        rev=layout.REV_APPLY,
        argv=("n",),
        records=REVOCATION,
        more_keys="budgets",
    ),
    Script(
        "housekeep",
        ("apply", "housekeep"),
        rev=layout.REV_APPLY,
        keys=("trimmed", "lock"),
        argv=("now", "min_id", "lock_ms"),
        flags="allow-oom",  # a full Redis must be able to prune and trim its way back
    ),
    Script("oldest", ("oldest",), argv=("group",), more_keys="streams"),
    Script("forget", ("forget",), keys=("stream",), argv=("group", "consumer")),
    Script("forward", ("forward",), keys=("stream", "dedup"), argv=("ttl",), more_argv="fields"),
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
