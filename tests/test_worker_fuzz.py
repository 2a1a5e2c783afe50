"""Bad input never stops the worker and is never dropped: every valid event is applied, every bad
one is in the DLQ with its reason. Explicit cases, random bytes, and 10,000 generated events."""

from __future__ import annotations

import random
import string
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from revocation_harness import (
    KIDS,
    REV,
    all_consumed,
    dead_letters,
    feed_settings,
    running_worker,
)

from sessionsvc.revocation.events import EventRejected, parse_fields
from workers.core import DLQ_COPY, META_FIELDS

pytestmark = pytest.mark.redis

EVENTS = "ss:events"
Pairs = list[tuple[bytes, bytes]]
LONGEST = 7 * 86400 + 2 * 30  # how long a user or global revocation is kept after its before
KNOWN = {*KIDS, "refresh-EdDSA"}  # the kids of feed_settings' rings: key.revoke may name them
NOW = int(time.time())  # event times are chosen in the past of every worker clock reading


def b(*pairs: tuple[str | bytes, str | bytes]) -> Pairs:
    return [
        (k.encode() if isinstance(k, str) else k, v.encode() if isinstance(v, str) else v)
        for k, v in pairs
    ]


@pytest.fixture
def worker_client(redis_url: str) -> Iterator[tuple[Any, redis.Redis]]:
    with running_worker(feed_settings(redis_url)) as rw:
        client = redis.Redis.from_url(redis_url)
        try:
            yield rw, client
        finally:
            client.close()


def publish(client: redis.Redis, entries: Sequence[Pairs]) -> list[str]:
    """XADD each entry exactly as given (duplicates, any bytes); the entry ids in order."""
    ids: list[str] = []
    for start in range(0, len(entries), 500):
        pipe = client.pipeline(transaction=False)
        for pairs in entries[start : start + 500]:
            pipe.execute_command("XADD", EVENTS, "*", *[x for pair in pairs for x in pair])
        ids += [i.decode() for i in pipe.execute()]
    return ids


def wait_consumed(client: redis.Redis, last: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not all_consumed(client, last):
        assert time.monotonic() < deadline, "the worker did not consume every entry"
        time.sleep(0.01)


# -- what a valid event must have changed -------------------------------------------------------


def effect_check(pipe: Any, fields: dict[str, str]) -> Callable[[Any], bool]:
    """Queue the read that shows ``fields`` was applied; return the test of its reply."""
    kind = fields["type"]
    if kind == "session.revoke":
        pipe.zscore(REV.key("sid"), fields["sid"])
        return lambda reply: reply is not None
    if kind == "token.revoke":
        pipe.zscore(REV.key("jti"), fields["jti"])
        if float(fields.get("exp", "inf")) + 30 <= time.time():  # expired: nothing to write
            return lambda reply: reply is None
        return lambda reply: reply is not None
    if kind == "user.revoke":
        pipe.hget(REV.key("user"), fields["sub"])
        if float(fields.get("before", "inf")) + LONGEST <= time.time():
            return lambda reply: reply is None  # expired: nothing to write
        return lambda reply: reply is not None and float(reply) >= float(fields.get("before", 0))
    if kind == "all.revoke":
        pipe.hget(REV.key("all"), "before")
        if float(fields["before"]) + LONGEST <= time.time():
            return lambda reply: True  # expired: nothing written (another may have been)
        return lambda reply: reply is not None and float(reply) >= float(fields["before"])
    pipe.sismember(REV.key("kid"), fields["kid"])
    return bool


def assert_outcomes(
    client: redis.Redis, ids: Sequence[str], cases: Sequence[tuple[Pairs, str | None]]
) -> None:
    """Every valid case applied, every bad one dead-lettered with its code, nothing else."""
    letters = dead_letters(client)
    cases = [(pairs, code or _judged(pairs)) for pairs, code in cases]
    expected_dead = {i: code for i, (_, code) in zip(ids, cases, strict=True) if code}
    got_dead = {i: letters[i]["dlq:error"] for i in ids if i in letters}
    assert got_dead == expected_dead
    pipe = client.pipeline(transaction=False)
    checks = []
    for pairs, code in cases:
        if code is None:
            fields = {k.decode(): v.decode() for k, v in pairs}
            checks.append((fields, effect_check(pipe, fields)))
    missing = [f for (f, ok), reply in zip(checks, pipe.execute(), strict=True) if not ok(reply)]
    assert missing == []


def _judged(pairs: Pairs) -> str | None:
    """What the worker refuses in a well-formed event: a key.revoke of a kid in no ring."""
    fields = dict(pairs)
    if fields.get(b"type") == b"key.revoke" and fields.get(b"kid", b"").decode() not in KNOWN:
        return "unknown_key"
    return None


# -- explicit bad input --------------------------------------------------------------------------

LONG = "x" * 500
BAD = {
    "no type": (b(("sid", "S")), "unknown_type"),
    "unknown type": (b(("type", "session.nuke"), ("sid", "S")), "unknown_type"),
    "type in another case": (b(("type", "Session.Revoke"), ("sid", "S")), "unknown_type"),
    "missing sid": (b(("type", "session.revoke"), ("reason", "r")), "missing_field"),
    "missing before": (
        b(
            ("type", "all.revoke"),
        ),
        "missing_field",
    ),
    "unknown field": (b(("type", "key.revoke"), ("kid", "k"), ("colour", "red")), "unknown_field"),
    "another type's field": (
        b(("type", "session.revoke"), ("sid", "S"), ("exp", "1")),
        "unknown_field",
    ),
    "empty sid": (b(("type", "session.revoke"), ("sid", "")), "bad_field"),
    "NUL in sid": (b(("type", "session.revoke"), ("sid", "a\x00b")), "bad_field"),
    "trailing newline": (b(("type", "session.revoke"), ("sid", "abc\n")), "bad_field"),
    "DEL in reason": (b(("type", "key.revoke"), ("kid", "k"), ("reason", "a\x7f")), "bad_field"),
    "exp is a word": (b(("type", "token.revoke"), ("jti", "J"), ("exp", "soon")), "bad_field"),
    "negative before": (b(("type", "user.revoke"), ("sub", "u"), ("before", "-5")), "bad_field"),
    "exponent": (b(("type", "key.revoke"), ("kid", "k"), ("at", "1e9")), "bad_field"),
    "7 decimals": (b(("type", "token.revoke"), ("jti", "J"), ("exp", "1.1234567")), "bad_field"),
    "13 digits": (b(("type", "token.revoke"), ("jti", "J"), ("exp", "1" * 13)), "bad_field"),
    "space in time": (b(("type", "all.revoke"), ("before", " 5")), "bad_field"),
    "Arabic-Indic digits": (b(("type", "token.revoke"), ("jti", "J"), ("exp", "١٢٣")), "bad_field"),
    "full-width digits": (b(("type", "all.revoke"), ("before", "１２３")), "bad_field"),
    "before in the future": (b(("type", "all.revoke"), ("before", str(NOW + 3600))), "bad_field"),
    "user before in the future": (
        b(("type", "user.revoke"), ("sub", "u"), ("before", str(NOW + 3600))),
        "bad_field",
    ),
    "sid too long": (b(("type", "session.revoke"), ("sid", "s" * 257)), "bad_field"),
    "reason too long": (
        b(("type", "key.revoke"), ("kid", "k"), ("reason", "r" * 513)),
        "bad_field",
    ),
    "17 fields": (b(("type", "key.revoke"), *[(f"f{n}", "v") for n in range(16)]), "too_large"),
    "over 4 KiB": (b(("type", "key.revoke"), *[(f"f{n}", LONG) for n in range(9)]), "too_large"),
    "duplicate field": (b(("type", "session.revoke"), ("sid", "a"), ("sid", "b")), "malformed"),
    "duplicate type": (
        b(("type", "key.revoke"), ("type", "key.revoke"), ("kid", "k")),
        "malformed",
    ),
    "not UTF-8": (b(("type", "session.revoke"), ("sid", b"\xff\xfe")), "malformed"),
    "UTF-8 surrogate": (b(("type", "session.revoke"), ("sid", b"\xed\xa0\x80")), "malformed"),
    "not UTF-8 name": (b(("type", "session.revoke"), (b"\xc3", "S")), "malformed"),
    "made-up kid": (b(("type", "key.revoke"), ("kid", "ключ \u2028 🔑")), "unknown_key"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_input_is_dead_lettered_with_its_reason(
    worker_client: tuple[Any, redis.Redis], name: str
) -> None:
    rw, client = worker_client
    pairs, code = BAD[name]
    after = b(("type", "session.revoke"), ("sid", f"after {name}"))
    ids = publish(client, [pairs, after])
    wait_consumed(client, ids[-1])
    assert_outcomes(client, ids, [(pairs, code), (after, None)])
    [(_, dead)] = [(i, p) for i, p in _dlq_entries(client) if i == ids[0]]
    if sum(len(k) + len(v) for k, v in pairs) <= DLQ_COPY:
        assert dead == pairs  # the original fields, in order, byte for byte
    else:  # a bounded prefix: whole pairs, then the value that crossed the bound, cut
        assert sum(len(k) + len(v) for k, v in dead) == DLQ_COPY
        assert dead[:-1] == pairs[: len(dead) - 1]
        assert pairs[len(dead) - 1][1].startswith(dead[-1][1])
    assert rw.alive


def _dlq_entries(client: redis.Redis) -> list[tuple[str, Pairs]]:
    reply: Any = client.eval("return redis.call('XRANGE', KEYS[1], '-', '+')", 1, "{ss:events}:dlq")
    out = []
    for _id, flat in reply:
        pairs = [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]
        meta = dict(pairs[: len(META_FIELDS)])  # the worker's own fields come first
        originals = [(k.removeprefix(b"orig:"), v) for k, v in pairs[len(META_FIELDS) :]]
        out.append((meta[b"dlq:entry"].decode(), originals))
    return out


def test_valid_edge_cases_are_applied(worker_client: tuple[Any, redis.Redis]) -> None:
    rw, client = worker_client
    cases = [
        b(("type", "session.revoke"), ("sid", "s" * 256)),
        b(("type", "user.revoke"), ("sub", "é" * 200)),  # no sessions possible: revoked by value
        b(("type", "user.revoke"), ("sub", "u" * 256), ("before", str(NOW - 10))),
        b(("type", "token.revoke"), ("jti", "J"), ("exp", "999999999999.999999")),
        b(("type", "all.revoke"), ("before", f"{NOW - 1}.5"), ("at", "0")),
        b(
            ("type", "key.revoke"),
            ("kid", "k-b"),
            ("reason", "r" * 512),
            ("source", "s" * 512),
            ("id", "i" * 256),
        ),
    ]
    ids = publish(client, cases)
    wait_consumed(client, ids[-1])
    assert_outcomes(client, ids, [(c, None) for c in cases])
    assert rw.alive


# -- random bytes ---------------------------------------------------------------------------------


def test_random_bytes(worker_client: tuple[Any, redis.Redis]) -> None:
    rw, client = worker_client
    entries = st.lists(
        st.tuples(st.binary(max_size=24), st.binary(max_size=48)), min_size=1, max_size=20
    )

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(entries, min_size=1, max_size=10))
    def check(batch: list[Pairs]) -> None:
        ids = publish(client, batch)
        wait_consumed(client, ids[-1])
        letters = dead_letters(client)
        for entry_id, pairs in zip(ids, batch, strict=True):
            if entry_id not in letters:  # only an entry that happens to be a valid event
                parse_fields(pairs)
        assert rw.alive

    check()


# -- generated events, valid and bad, mixed -------------------------------------------------------

TYPES = ("session.revoke", "user.revoke", "token.revoke", "all.revoke", "key.revoke")
REQUIRED = {
    "session.revoke": "sid",
    "user.revoke": "sub",
    "token.revoke": "jti",
    "all.revoke": "before",
    "key.revoke": "kid",
}
IDENT_FIELDS = {"sid", "sub", "jti", "kid", "id"}
TIME_FIELDS = {"before", "exp", "at"}
DEFECTS = (
    "missing",
    "no_type",
    "unknown_type",
    "unknown_field",
    "empty",
    "control",
    "too_long",
    "bad_time",
    "future",
    "duplicate",
    "not_utf8",
    "too_many",
    "too_big",
)
CODES = {
    "missing": "missing_field",
    "no_type": "unknown_type",
    "unknown_type": "unknown_type",
    "unknown_field": "unknown_field",
    "empty": "bad_field",
    "control": "bad_field",
    "too_long": "bad_field",
    "bad_time": "bad_field",
    "future": "bad_field",
    "duplicate": "malformed",
    "not_utf8": "malformed",
    "too_many": "too_large",
    "too_big": "too_large",
}
BAD_TIMES = ("soon", "-1", "1e9", "1.1234567", "1" * 13, " 1", "1 ", "0x1f", "", "1.", ".5", "inf")


def valid_event(
    draw: Callable[[str, Sequence[Any]], Any], text: Callable[[int], str], seq: int
) -> dict[str, str]:
    """One valid event. ``draw(name, choices)`` picks, ``text(n)`` makes an id of up to n chars;
    ``seq`` makes values unique, so each event's effect can be checked on its own."""
    kind = draw("type", TYPES)
    fields = {"type": kind}
    if kind == "all.revoke":
        fields["before"] = str(NOW - draw("age", range(1, 10**6)))
    else:
        fields[REQUIRED[kind]] = f"{seq}:{text(200)}"
    if kind == "user.revoke" and draw("before?", (True, False)):
        fields["before"] = f"{NOW - draw('age', range(1, 10**6))}.{draw('frac', range(10**6))}"
    if kind == "token.revoke" and draw("exp?", (True, False)):
        fields["exp"] = str(draw("exp", range(10**12)))
    for name, make in (
        ("id", lambda: text(256)),
        ("source", lambda: text(512)),
        ("reason", lambda: text(512)),
        ("at", lambda: str(NOW)),
    ):
        if draw(f"{name}?", (False, False, True)):
            fields[name] = make()
    return fields


def corrupt(
    fields: dict[str, str], defect: str, draw: Callable[[str, Sequence[Any]], Any]
) -> Pairs:
    """``fields`` with exactly one defect (which makes the parser answer ``CODES[defect]``)."""
    kind = fields["type"]
    f = dict(fields)
    required = REQUIRED[kind]
    if defect == "missing":
        del f[required]
    elif defect == "no_type":
        del f["type"]
    elif defect == "unknown_type":
        f["type"] = draw("bad type", ("session.revoked", "logout", "user", "SESSION.REVOKE", "x"))
    elif defect == "unknown_field":
        f[draw("extra", ("foo", "sid_", "Type", "dlq:error", "expires"))] = "v"
    elif defect == "empty":
        f[draw("which", sorted(IDENT_FIELDS & set(f)) or [required])] = ""
    elif defect == "control":
        name = required if required != "before" else "reason"
        f[name] = f.get(name, "r") + chr(draw("control", [*range(32), 127]))
    elif defect == "too_long":
        name = draw("which", ("id", "reason")) if required == "before" else required
        f[name] = "y" * (257 if name in IDENT_FIELDS else 513)
    elif defect == "bad_time":
        f[draw("time field", ("at",) if required != "before" else ("before", "at"))] = draw(
            "bad time", BAD_TIMES
        )
    elif defect == "future":
        f = {"type": "all.revoke", "before": str(NOW + 10**5)}
    elif defect == "duplicate":
        return b(*f.items(), (required, "again"))
    elif defect == "not_utf8":
        return [(k.encode(), v.encode()) for k, v in f.items()] + [(b"reason", b"\xff")]
    elif defect == "too_many":
        f.update({f"x{n}": "v" for n in range(17 - len(f))})
    else:  # too_big: 4 KiB of unknown fields (size is checked before the names)
        f.update({f"pad{n}": "p" * 500 for n in range(9)})
    return b(*f.items())


def mixed_events(count: int, seed: int) -> list[tuple[Pairs, str | None]]:
    """``count`` events, about 60% valid; bad ones with exactly one defect and their code."""
    rng = random.Random(seed)
    alphabet = string.ascii_letters + string.digits + "-_.:/ é€😀\u2028\x85"

    def draw(_name: str, choices: Sequence[Any]) -> Any:
        return rng.choice(choices)

    def text(n: int) -> str:
        return "".join(rng.choices(alphabet, k=rng.randint(1, n)))

    out: list[tuple[Pairs, str | None]] = []
    for seq in range(count):
        fields = valid_event(draw, text, seq)
        if rng.random() < 0.6:
            out.append((b(*fields.items()), None))
        else:
            defect = rng.choice(DEFECTS)
            out.append((corrupt(fields, defect, draw), CODES[defect]))
    return out


def test_the_generator_knows_the_codes() -> None:
    """The oracle of the bulk test, checked against the parser itself (no Redis)."""
    for pairs, code in mixed_events(2000, seed=7):
        try:
            parse_fields(pairs)
        except EventRejected as exc:
            assert exc.code == code, (pairs, exc)
        else:  # valid, or a "before" in the future: only the worker (with its clock) refuses that
            future = (b"before", str(NOW + 10**5).encode()) in pairs
            assert code is None or (code == "bad_field" and future), pairs


def test_ten_thousand_mixed_events(worker_client: tuple[Any, redis.Redis]) -> None:
    rw, client = worker_client
    cases = mixed_events(10_000, seed=2026)
    ids = publish(client, [pairs for pairs, _ in cases])
    wait_consumed(client, ids[-1], timeout=60.0)
    assert_outcomes(client, ids, cases)
    assert rw.alive
    assert sum(code is None for _, code in cases) > 5000


@st.composite
def drawn_events(draw: st.DrawFn) -> tuple[Pairs, str | None]:
    ident = st.text(
        st.characters(
            exclude_categories=("Cs",), exclude_characters=[chr(c) for c in [*range(32), 127]]
        ),
        min_size=1,
        max_size=60,
    )
    seq = draw(st.integers(0, 10**9))

    def pick(name: str, choices: Sequence[Any]) -> Any:
        if isinstance(choices, range):
            return draw(st.integers(choices.start, choices.stop - 1), label=name)
        return draw(st.sampled_from(list(choices)), label=name)

    fields = valid_event(pick, lambda n: draw(ident), seq)
    defect = draw(st.sampled_from([None, *DEFECTS]))
    if defect is None:
        return b(*fields.items()), None
    return corrupt(fields, defect, pick), CODES[defect]


def test_hypothesis_events(worker_client: tuple[Any, redis.Redis]) -> None:
    rw, client = worker_client

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(drawn_events(), min_size=1, max_size=40))
    def check(cases: list[tuple[Pairs, str | None]]) -> None:
        ids = publish(client, [pairs for pairs, _ in cases])
        wait_consumed(client, ids[-1])
        assert_outcomes(client, ids, cases)
        assert rw.alive

    check()
