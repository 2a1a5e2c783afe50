"""sessionsvc.revocation.log: the one apply path (argument encoding, log decoding, and
APPLY_REVOCATION on a real Redis)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from conftest import ManualClock, make_settings
from hypothesis import given
from hypothesis import strategies as st
from sessions_harness import dump_all, poison_log, read_log

from sessionsvc import Revocation, RevocationView, SessionService, TokenRejected
from sessionsvc._redis.scripts import SCRIPTS as REGISTRY
from sessionsvc.encoding import b64url_decode, loads_object
from sessionsvc.revocation.events import Lifetimes, parse_fields
from sessionsvc.revocation.log import (
    APPLY_REVOCATION,
    RevKeys,
    decode_entry,
    entry_meta,
    format_number,
    parse_number,
    revocation_args,
)
from sessionsvc.sessions.core import Origin
from workers.core import APPLY, WorkerCore

APPLY_BATCH = REGISTRY["apply_batch"].text

times = st.one_of(st.integers(0, 2**40).map(float), st.floats(0, 2e10).map(lambda x: round(x, 6)))
ids = st.text(st.characters(min_codepoint=33, max_codepoint=0x2FFF), min_size=1, max_size=40)
revocations = st.one_of(
    st.builds(Revocation, st.sampled_from(["session", "token", "key"]), ids, until=times),
    st.builds(Revocation, st.just("user"), ids, before=times, until=times),
    st.builds(Revocation, st.just("all"), st.just(""), before=times, until=times),
    st.builds(Revocation, st.just("key"), ids),
)


def _as_log_fields(args: list[str]) -> dict[bytes, bytes]:
    names = ["kind", "value", "before", "until", "epoch", "id", "source", "reason", "at"]
    names += ["cap", "budget"]
    skip = ("epoch", "cap", "budget")
    return {n.encode(): v.encode() for n, v in zip(names, args, strict=True) if v and n not in skip}


@given(revocations)
def test_args_and_log_entry_round_trip(rev: Revocation) -> None:
    args = revocation_args(rev, epoch="E", source="test", reason="r", at=12.5)
    assert decode_entry(_as_log_fields(args)) == rev
    assert entry_meta(_as_log_fields(args)) == {"source": "test", "reason": "r", "at": "12.500000"}


def test_numbers() -> None:
    assert [format_number(x) for x in (0, 1800000000.0, 1.25, math.inf)] == [
        "0",
        "1800000000",
        "1.250000",
        "inf",
    ]
    assert parse_number("inf") == math.inf and parse_number("1.5") == 1.5
    for bad in ("nan", "-1", "x", "", "-inf"):
        with pytest.raises(ValueError):
            parse_number(bad)
    for bad_value in (-1.0, math.nan, -math.inf):
        with pytest.raises(ValueError):
            format_number(bad_value)


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"kind": "nope", "value": "x"},
        {"kind": "session", "value": "s", "until": "soon"},
        {"kind": "all", "value": "x"},
        {"kind": "user", "value": ""},
        {"kind": "user", "value": "u", "before": "nan"},
    ],
)
def test_decode_refuses_malformed_entries(fields: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        decode_entry(fields)


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


def apply(client: redis.Redis, rev: Revocation, **meta: Any) -> Any:
    script = client.register_script(APPLY_REVOCATION)
    return script(keys=RevKeys().all(), args=revocation_args(rev, epoch="E1", **meta))


@pytest.mark.redis
def test_apply_writes_state_and_log_once(client: redis.Redis, redis_url: str) -> None:
    revs = [
        Revocation("session", "S1", until=2000.0),
        Revocation("token", "J1", until=3000.0),
        Revocation("user", "alice", before=1000.5, until=2000.0),
        Revocation("all", before=900.0, until=1800.0),
        Revocation("key", "k1"),
    ]
    for rev in revs:
        assert apply(client, rev, source="test", reason="why", id="evt-1") is not None
        assert apply(client, rev) is None  # re-applying is harmless and logs nothing
    logged = read_log(redis_url)
    assert [r for r, _ in logged] == revs
    assert logged[0][1] == {"id": "evt-1", "source": "test", "reason": "why"}
    assert client.zscore("ss:{rev}:sid", "S1") == 2000.0
    assert client.zscore("ss:{rev}:jti", "J1") == 3000.0
    assert client.hget("ss:{rev}:user", "alice") == b"1000.500000"
    assert client.zscore("ss:{rev}:user:until", "alice") == 2000.0
    assert client.hgetall("ss:{rev}:all") == {b"before": b"900", b"until": b"1800"}
    assert client.smembers("ss:{rev}:kid") == {b"k1"}
    assert client.get("ss:{rev}:epoch") == b"E1"


@pytest.mark.redis
def test_apply_is_monotonic(client: redis.Redis, redis_url: str) -> None:
    apply(client, Revocation("user", "alice", before=1000.0, until=2000.0))
    assert apply(client, Revocation("user", "alice", before=500.0, until=1500.0)) is None
    assert apply(client, Revocation("user", "alice", before=500.0, until=2500.0)) is not None
    assert client.hget("ss:{rev}:user", "alice") == b"1000"  # before never shrinks
    assert apply(client, Revocation("session", "S", until=100.0)) is not None
    assert apply(client, Revocation("session", "S", until=50.0)) is None
    assert client.zscore("ss:{rev}:sid", "S") == 100.0
    assert apply(client, Revocation("all", before=10.0, until=20.0)) is not None
    assert apply(client, Revocation("all", before=5.0, until=30.0)) is not None
    assert client.hgetall("ss:{rev}:all") == {b"before": b"10", b"until": b"30"}
    script = client.register_script(APPLY_REVOCATION)
    script(keys=RevKeys().all(), args=revocation_args(Revocation("key", "k"), epoch="E2"))
    assert client.get("ss:{rev}:epoch") == b"E1"  # set once
    # a validator that replays the whole log ends with the same view as one that saw each apply
    view = RevocationView()
    for rev, _ in read_log(redis_url):
        view.apply(rev)
    assert view.users["alice"] == (1000.0, 2500.0)
    assert view.global_before == (10.0, 30.0)


@pytest.mark.redis
def test_apply_refuses_junk(client: redis.Redis) -> None:
    script = client.register_script(APPLY_REVOCATION)
    for args in (["session", "S", "0", "soon", "E"], ["bogus", "x", "0", "1", "E"]):
        with pytest.raises(redis.ResponseError):
            script(keys=RevKeys().all(), args=args)
    assert client.exists("ss:{rev}:log") == 0


def _jti(token: str) -> str:
    return str(loads_object(b64url_decode(token.split(".")[1]))["jti"])


@pytest.mark.redis
def test_refresh_honours_revocations_applied_by_others(redis_url: str) -> None:
    """A worker-applied user, key, token or global revocation also stops refresh."""
    clock = ManualClock(time.time() - 10)  # a before behind Redis' clock: applied as given
    settings = make_settings(redis_url=redis_url)
    with SessionService(settings, clock=clock) as svc:
        client = redis.Redis.from_url(redis_url)
        refresh_kid = svc.core.issuer.refresh_keys.signing_key().kid
        cases = [
            lambda p: Revocation("user", "alice", before=clock.now + 0.5, until=clock.now + 99),
            lambda p: Revocation("all", before=clock.now + 0.5, until=clock.now + 99),
            lambda p: Revocation("key", refresh_kid),
            lambda p: Revocation("session", p.session_id, until=clock.now + 99),
            lambda p: Revocation("token", _jti(p.refresh_token), until=clock.now + 99),
        ]
        for make_rev in cases:
            pair = svc.login("alice")
            apply(client, make_rev(pair))
            with pytest.raises(TokenRejected) as info:
                svc.refresh(pair.refresh_token)
            assert info.value.reason == "revoked"
            assert svc.list_sessions("alice") == []
            client.flushall()
        client.close()


def _batch(client: redis.Redis, calls: list[list[str]], keys: list[str] | None = None) -> Any:
    args = [str(len(calls))] + [a for call in calls for a in call]
    return client.register_script(APPLY_BATCH)(keys=keys or KEYS, args=args)


def _worker_calls(now: float) -> list[list[str]]:
    """The APPLY calls a worker builds for one event of every kind applied by value."""
    core = WorkerCore(make_settings(redis_url="redis://127.0.0.1:1/0"), ManualClock(now))
    events = [
        {"type": "session.revoke", "sid": "not-ours"},
        {"type": "token.revoke", "jti": "J-new"},
        {"type": "user.revoke", "sub": "alice", "before": str(int(now) - 5)},
        {"type": "all.revoke", "before": str(int(now) - 5)},
        {"type": "key.revoke", "kid": "k-new"},
    ]
    calls = [core.call_for(parse_fields(e.items()), "E") for e in events]
    assert {c.script for c in calls} == {APPLY}
    return [c.args for c in calls]


@pytest.mark.redis
def test_a_failing_log_append_leaves_the_state_as_it_was(client: redis.Redis) -> None:
    """Redis does not roll a script back: the log append, which can fail, comes before any
    write. A poisoned log (an XADD of the largest id) makes every apply fail, and fail clean."""
    for rev in (Revocation("token", "J-old", until=5000.0), Revocation("key", "k-old")):
        apply(client, rev)
    poison_log(client)
    before = dump_all(client)
    script = client.register_script(APPLY_REVOCATION)
    for args in _worker_calls(2000.0):
        with pytest.raises(redis.ResponseError, match="last possible ID"):
            script(keys=RevKeys().all(), args=args)
        assert dump_all(client) == before, args[0]
    with pytest.raises(redis.ResponseError, match="last possible ID"):
        _batch(client, _worker_calls(2000.0))
    assert dump_all(client) == before


def _server_time(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1e6


@pytest.mark.redis
def test_a_before_ahead_of_the_server_clock_is_clamped_to_it(client: redis.Redis) -> None:
    """An event's ``before`` within the leeway ahead (the worker accepts it) is applied as the
    server's time: logins facing it would otherwise be refused for that long. ``until`` moves
    with it (still ``before`` + longest)."""
    settings = make_settings(redis_url="redis://127.0.0.1:1/0")
    longest = Lifetimes.of(settings).longest
    core = WorkerCore(settings, time.time)
    script = client.register_script(APPLY_REVOCATION)
    ahead = str(round(time.time() + 20, 3))
    events = [
        {"type": "all.revoke", "before": ahead},
        {"type": "user.revoke", "sub": "al", "before": ahead},
    ]
    for event in events:
        call = core.call_for(parse_fields(event.items()), "E")
        assert float(call.args[2]) > _server_time(client) + 19  # the worker let it through
        assert script(keys=RevKeys().all(), args=call.args) is not None
    now = _server_time(client)
    glob = client.hgetall("ss:{rev}:all")
    assert float(glob[b"before"]) <= now and float(glob[b"until"]) == pytest.approx(
        float(glob[b"before"]) + longest, abs=1e-6
    )
    user_before = float(client.hget("ss:{rev}:user", "al") or 0)
    assert 0 < user_before <= now
    user_until = client.zscore("ss:{rev}:user:until", "al")
    assert user_until == pytest.approx(user_before + longest, abs=1e-6)
    logged = [rev for _, rev in client.xrange("ss:{rev}:log")]
    assert [float(f[b"before"]) for f in logged] == [float(glob[b"before"]), user_before]


CAP = 1000
BUDGET = RevKeys().budget("idp")
KEYS = [*RevKeys().all(), BUDGET]  # the publisher's budget is KEYS[9]
REV_LOG = RevKeys().log


def _plant(client: redis.Redis, kind: str, n: int = CAP, until: float | None = None) -> None:
    """``n`` distinct revocations of ``kind`` charged to the budget, in one apply_batch call."""
    until = time.time() + 600 if until is None else until
    revs = [
        Revocation(kind, f"{kind}-{i}", before=100.0 if kind == "user" else 0.0, until=until)
        for i in range(n)
    ]
    ids = _batch(client, [revocation_args(rev, epoch="E", cap=CAP, budget=9) for rev in revs])
    assert None not in ids and b"over_capacity" not in ids


def _charged(client: redis.Redis, rev: Revocation, cap: int = CAP, budget: int = 9) -> Any:
    script = client.register_script(APPLY_REVOCATION)
    return script(keys=KEYS, args=revocation_args(rev, epoch="E", cap=cap, budget=budget))


@pytest.mark.redis
@pytest.mark.parametrize("kind", ["session", "token", "user"])
def test_a_full_budget_refuses_and_writes_nothing(client: redis.Redis, kind: str) -> None:
    later = time.time() + 600
    _plant(client, kind, until=later)
    assert client.zcard(BUDGET) == CAP
    before = dump_all(client)
    new = Revocation(kind, "one-too-many", before=100.0, until=later)
    assert _charged(client, new) == b"over_capacity"
    batch = [revocation_args(new, epoch="E", cap=CAP, budget=9)] * 2
    assert _batch(client, batch, KEYS) == [b"over_capacity"] * 2  # refused items, not an error
    assert dump_all(client) == before  # neither state nor log nor budget
    # what the publisher planted already still applies (idempotent; a later until still grows)
    assert _charged(client, Revocation(kind, f"{kind}-7", before=100.0, until=later)) is None
    assert _charged(client, Revocation(kind, f"{kind}-7", before=100.0, until=later + 60))
    assert _charged(client, new, budget=0) is not None  # operators' events carry no budget
    assert _charged(client, Revocation("key", "k-new"), cap=1) is not None  # keys: not charged


@pytest.mark.redis
def test_charges_end_when_their_revocations_expire(client: redis.Redis) -> None:
    _plant(client, "token", until=time.time() - 1)  # every charge has expired
    assert _charged(client, Revocation("token", "fresh", until=time.time() + 600)) is not None
    assert client.zcard(BUDGET) == 1  # the expired charges were pruned with the write
    assert 0 < client.pttl(BUDGET) <= 601_000  # the budget lives as long as its longest charge


@pytest.mark.redis
def test_a_logout_event_is_charged_too(client: redis.Redis, redis_url: str) -> None:
    """A publisher's session.revoke of one of our session ids (the logout script) and its
    user.revoke without before (logout_all) plant revocations as well: charged, refused once
    the budget is full, and then nothing is written (the session stays)."""
    settings = make_settings(redis_url=redis_url, max_revocations=CAP)
    _plant(client, "token")
    with SessionService(settings) as svc:
        sid = svc.login("alice").session_id
        core = svc.core
        for op in (
            core.logout(sid, origin=Origin(budget=BUDGET, cap=CAP)),
            core.logout_all("alice", origin=Origin(budget=BUDGET, cap=CAP), clamp=True),
        ):
            call = next(op)
            before = dump_all(client)
            reply: Any = client.eval(
                REGISTRY[call.script].text, len(call.keys), *call.keys, *call.args
            )
            assert b"over_capacity" in reply
            assert dump_all(client) == before
        assert [s.session_id for s in svc.list_sessions("alice")] == [sid]


@pytest.mark.redis
def test_the_session_service_is_never_capped(client: redis.Redis, redis_url: str) -> None:
    """A logout must always log out: the session service's revocations carry no budget."""
    settings = make_settings(redis_url=redis_url, max_revocations=CAP)
    with SessionService(settings) as svc:
        pairs = [svc.login("alice"), svc.login("bob")]
        _plant(client, "session")  # the publisher's budget is full
        assert svc.logout(pairs[0].session_id) is True
        assert client.zscore("ss:{rev}:sid", pairs[0].session_id) is not None
        assert svc.logout_all("bob") == 1
        assert client.hget("ss:{rev}:user", "bob") is not None
    assert client.zcard("ss:{rev}:sid") == CAP + 1 and client.zcard(BUDGET) == CAP


@pytest.mark.redis
def test_a_revocation_sent_again_and_again_is_logged_at_most_once_a_minute(
    client: redis.Redis,
) -> None:
    """Each new send asks for a slightly later until; an extension is granted a minute more
    than asked, so the sends of the next minute change nothing and append nothing."""
    until = time.time() + 600
    assert _charged(client, Revocation("session", "S", until=until), budget=0) is not None
    assert _charged(client, Revocation("session", "S", until=until + 0.5), budget=0) is not None
    for n in range(1, 60):
        assert _charged(client, Revocation("session", "S", until=until + 0.5 + n), budget=0) is None
    assert client.xlen(REV_LOG) == 2
    assert client.zscore("ss:{rev}:sid", "S") == pytest.approx(until + 60.5)
