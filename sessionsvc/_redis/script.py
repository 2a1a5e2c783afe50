"""What a registered script is: ``Script`` (text, SHA-1, the names of its KEYS and ARGV, the
generated prelude that declares those names in Lua), ``Record`` (named ARGV fields read from an
offset), ``Call`` (one invocation) and ``ScriptArgsError``. The registry of every script, and
the one NOSCRIPT rule, are ``sessionsvc._redis.scripts``.
"""

from __future__ import annotations

import hashlib
import keyword
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, NoReturn, cast

from sessionsvc._redis import layout
from sessionsvc._redis.lua import source

__all__ = ["Call", "Record", "Script", "ScriptArgsError"]


class ScriptArgsError(TypeError):
    """A script call built with missing or unknown KEYS/ARGV names (a programming error)."""


@dataclass(slots=True)  # not frozen: a frozen init costs ~1 µs per operation
class Call:
    """One script invocation: the name of a ``SCRIPTS`` entry, its KEYS and its ARGV."""

    script: str
    keys: list[str]
    args: list[Any]  # str; bytes where a caller passes raw field values (``more_argv``)


def _lua(name: str) -> str:
    return name.replace(":", "_")


def _generated(params: Iterable[str], body: str, namespace: dict[str, Any]) -> Any:
    # def build(*, <params>): <body> -- Python binds and checks the names (at C speed: the
    # hot paths build one per operation, the worker one per event)
    names = [p.partition("=")[0] for p in params]
    if not all(n.isidentifier() and not keyword.iskeyword(n) for n in names):
        raise ValueError(f"field names must be Python identifiers: {names}")
    if len(set(names)) != len(names):
        raise ValueError(f"field names must differ: {names}")
    signature = f"*, {', '.join(params)}" if params else ""  # (a script may take no ARGV)
    exec(f"def build({signature}):\n{body}", namespace)  # noqa: S102
    return namespace["build"]


def _keyword_builder(fields: tuple[str, ...]) -> Callable[..., list[str]]:
    # build(kind=…, value=…, …) -> [kind, value, …]
    names = ", ".join(fields)
    return cast("Callable[..., list[str]]", _generated(fields, f"    return [{names}]\n", {}))


def _mismatch(what: str, declared: Iterable[str], given: Iterable[str]) -> NoReturn:
    missing, unknown = set(declared) - set(given), set(given) - set(declared)
    raise ScriptArgsError(f"{what}: missing {sorted(missing)}, unknown {sorted(unknown)}")


class Record:
    """Named ARGV fields in a fixed order (a script's ARGV, or one revocation of a batch).
    ``key_refs`` hold an index into KEYS: the Lua table gets that key instead."""

    __slots__ = ("_get", "build", "fields", "key_refs", "name")

    def __init__(self, name: str, fields: tuple[str, ...], key_refs: tuple[str, ...] = ()):
        self.name, self.fields, self.key_refs = name, fields, key_refs
        self._get: Callable[[Mapping[str, str]], Sequence[str]] = (
            itemgetter(*fields) if len(fields) > 1 else lambda m: [m[n] for n in fields]
        )
        self.build: Callable[..., list[str]] = _keyword_builder(fields)
        """``build(name=value, …)``: the fields in order, every name a required keyword (a
        missing or unknown one is a ``TypeError``); the hot path's ``values``."""

    def values(self, values: Mapping[str, str]) -> list[str]:
        """The fields of ``values``, in order; ``ScriptArgsError`` unless the names match."""
        if len(values) == len(self.fields):  # as many names, and each found: the same names
            try:
                return list(self._get(values))
            except KeyError:
                pass
        _mismatch(f"{self.name} ARGV", self.fields, values)

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
        self._required = keys[: len(keys) - optional]
        shebang = f"#!lua flags={flags}\n" if flags else ""
        self.text = shebang + self.prelude(consts or {}) + source(*parts)
        self.sha: str = hashlib.sha1(self.text.encode()).hexdigest()  # noqa: S324 (Redis' id)

    def prelude(self, consts: Mapping[str, str]) -> str:
        """The generated Lua that declares this script's KEYS and ARGV names (see
        ``sessionsvc._redis.scripts``)."""
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
            # the i-th of them and how many (a loop over thousands: unpack's stack would not do)
            lines.append(f"local function more_arg(i) return ARGV[{after} + i - 1] end")
            lines.append(f"local N_MORE = #ARGV - {after - 1}")
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
        if len(rev) != len(self.rev):
            raise ScriptArgsError(f"{self.name}: {len(rev)} {{rev}} keys for {self.rev}")
        if (more_keys and not self.more_keys) or (more_argv and not self.more_argv):
            raise ScriptArgsError(f"{self.name}: takes no more KEYS/ARGV than it names")
        out = [*rev]
        for n in self.keys:  # in declared order; only the trailing optional ones may be absent
            key = keys.get(n)
            if key is None:
                break
            out.append(key)
        if len(out) - len(rev) != len(keys) or len(keys) < len(self._required):
            _mismatch(f"{self.name} KEYS", self.keys, keys)
        out += more_keys
        return Call(self.name, out, [*self.argv.values(argv), *more_argv])

    def bind(self, namespace: str) -> Callable[..., Call]:
        """The hot path's ``call``: ``bind(ns)(idx=…, session=…, now=…, …)`` is the ``Call`` with
        the {rev} keys of ``ns``, then every KEYS and ARGV name of the declaration as a keyword
        (an ``optional`` key, at most one, may be left out; a missing or unknown name is a
        ``TypeError``). KEYS and ARGV names must then differ (checked here)."""
        if self.more_keys or self.more_argv or self.records is not None or self.optional > 1:
            raise ScriptArgsError(f"{self.name}: not a script of named KEYS and ARGV only")
        required, optional = self._required, self.keys[len(self._required) :]
        body = [f"    keys = [*REV, {', '.join(required)}]"]
        body += [f"    if {n} is not None:\n        keys.append({n})" for n in optional]
        body.append(f"    return Call(NAME, keys, [{', '.join(self.argv.fields)}])\n")
        params = [*required, *(f"{n}=None" for n in optional), *self.argv.fields]
        scope = {"REV": tuple(self.rev_keys(namespace)), "NAME": self.name, "Call": Call}
        return cast("Callable[..., Call]", _generated(params, "\n".join(body), scope))

    def batch(self, keys: list[str], records: Sequence[Sequence[str]]) -> Call:
        """A call of a records script (``apply_batch``): ``keys`` as one record call had them,
        ``records`` each built by ``self.records.values`` (the count goes first)."""
        args: list[Any] = [str(len(records))]
        for record in records:
            args += record  # (extend: the worker's batches hold thousands of fields)
        return Call(self.name, keys, args)

    def rev_keys(self, namespace: str) -> list[str]:
        """The {rev} keys of this script in ``namespace``, in order."""
        return [layout.rev_key(namespace, n) for n in self.rev]

    def evalsha_args(self, keys: Sequence[str], args: Sequence[str]) -> tuple[Any, ...]:
        """The command that runs this script: ``EVALSHA sha numkeys keys… args…``."""
        return ("EVALSHA", self.sha, len(keys), *keys, *args)

    def load_args(self) -> tuple[str, str]:
        """The command that loads this script: ``SCRIPT LOAD text``."""
        return ("SCRIPT LOAD", self.text)
