"""Sessions in Redis, against SessionService. AsyncSessionService has the same body (its methods
are declared once, ``sessionsvc._redis.shells``) and another runner: the tests of what a runner
does (every operation end to end, one round trip each, script reloading) run against both."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
from conftest import ManualClock, make_settings
from redis.crc import key_slot
from sessions_harness import (
    AsyncFacade,
    SyncFacade,
    dump_all,
    logins_around_a_logout_all,
    poison_log,
    read_log,
)

from sessionsvc import (
    RefreshReuseDetected,
    SessionNotFound,
    StoreUnavailable,
    TokenRejected,
    Validator,
)
from sessionsvc.errors import InvalidArgument
from sessionsvc.revocation.events import Lifetimes

pytestmark = pytest.mark.redis

Make = Callable[..., Any]


BOTH = pytest.mark.parametrize("make", ["sync", "async"], indirect=True)


@pytest.fixture
def make(request: pytest.FixtureRequest, redis_url: str, clock: ManualClock) -> Iterator[Make]:
    """``make(**settings_overrides)`` → a facade over the sync (or, ``BOTH``, the async) service."""
    facades: list[Any] = []
    factory = AsyncFacade if getattr(request, "param", "sync") == "async" else SyncFacade

    def build(*, clock: Callable[[], float] = clock, **overrides: Any) -> Any:
        settings = make_settings(**{"redis_url": redis_url, **overrides})
        facade = factory(settings, clock)
        facade.settings = settings
        facade.validator = Validator(settings, clock=clock)
        facades.append(facade)
        return facade

    yield build
    for facade in facades:
        facade.close()


def rejected(call: Callable[[], object]) -> str:
    with pytest.raises(TokenRejected) as info:
        call()
    return info.value.reason


def feed(svc: Any, url: str) -> None:
    """Apply every logged revocation to ``svc.validator`` (what the validator feed will do)."""
    for rev, _ in read_log(url):
        svc.validator.revoke(rev)


@BOTH
def test_login_list_get(make: Make, clock: ManualClock) -> None:
    svc = make()
    pair = svc.login(
        "alice",
        ip="203.0.113.7",
        user_agent="Firefox/140",
        device="laptop",
        claims={"roles": ["reader"]},
    )
    assert pair.expires_in == svc.settings.access_ttl
    assert pair.refresh_expires_in == svc.settings.refresh_ttl
    claims = svc.validator.validate(pair.access_token)
    assert (claims["sub"], claims["sid"], claims["roles"]) == (
        "alice",
        pair.session_id,
        ("reader",),
    )
    [info] = svc.list_sessions("alice")
    assert info == svc.get_session(pair.session_id)
    assert (info.session_id, info.sub, info.created, info.last_seen) == (
        pair.session_id,
        "alice",
        clock.now,
        clock.now,
    )
    assert (info.ip, info.user_agent, info.device) == ("203.0.113.7", "Firefox/140", "laptop")
    assert info.expires_at == clock.now + svc.settings.idle_timeout
    assert info.absolute_expires_at == clock.now + svc.settings.absolute_timeout
    assert svc.list_sessions("bob") == []


@BOTH
def test_one_round_trip_per_operation(make: Make, redis_url: str, clock: ManualClock) -> None:
    svc = make()

    def ops() -> list[Callable[[], object]]:
        pair = svc.login("alice")
        state = {"pair": pair}
        return [
            lambda: state.__setitem__("pair", svc.login("alice")),
            lambda: state.__setitem__("pair", svc.refresh(state["pair"].refresh_token)),
            lambda: svc.list_sessions("alice"),
            lambda: svc.get_session(state["pair"].session_id),
            lambda: svc.logout(state["pair"].session_id),
            lambda: svc.logout_all("alice"),
        ]

    for op in ops():  # first use loads each script (EVALSHA → NOSCRIPT → SCRIPT LOAD → EVALSHA)
        op()
    clock.now += 1
    for op in [*ops()[:-1], lambda: svc.logout_all("alice")]:
        svc.commands.clear()
        op()
        assert svc.commands == ["EVALSHA"]
    client = redis.Redis.from_url(redis_url)
    client.script_flush()  # a failover or restart forgets scripts: reloaded transparently
    client.close()
    clock.now += 1
    svc.commands.clear()
    svc.login("alice")
    assert svc.commands == ["EVALSHA", "SCRIPT LOAD", "EVALSHA"]


@BOTH
def test_refresh_rotates_and_keeps_claims(make: Make, clock: ManualClock) -> None:
    svc = make()
    first = svc.login("alice", claims={"scope": "read"})
    clock.now += 60
    second = svc.refresh(first.refresh_token)
    assert second.session_id == first.session_id
    assert second.refresh_token != first.refresh_token
    assert second.refresh_expires_in == svc.settings.refresh_ttl - 60  # absolute timeout caps it
    claims = svc.validator.validate(second.access_token)
    assert (claims["iat"], claims["scope"]) == (int(clock.now), "read")
    info = svc.get_session(first.session_id)
    assert info.last_seen == clock.now
    assert info.idle_expires_at == clock.now + svc.settings.idle_timeout
    assert svc.refresh(second.refresh_token).session_id == first.session_id


def test_overlap_answers_the_current_token(make: Make, clock: ManualClock) -> None:
    svc = make()
    t0 = svc.login("alice")
    t1 = svc.refresh(t0.refresh_token)
    clock.now += svc.settings.refresh_overlap  # still inside the window (inclusive)
    again = svc.refresh(t0.refresh_token)  # a retry after a lost response
    assert again.refresh_token == t1.refresh_token  # byte-identical: no fork
    assert again.access_token != t1.access_token
    svc.validator.validate(again.access_token)
    t2 = svc.refresh(t1.refresh_token)  # the chain goes on
    assert t2.refresh_token not in (t0.refresh_token, t1.refresh_token)
    assert read_log(svc.settings.redis_url.get_secret_value()) == []


def test_previous_token_after_the_window_is_reuse(make: Make, clock: ManualClock) -> None:
    svc = make()
    t0 = svc.login("alice")
    t1 = svc.refresh(t0.refresh_token)
    clock.now += svc.settings.refresh_overlap + 0.5
    with pytest.raises(RefreshReuseDetected) as info:
        svc.refresh(t0.refresh_token)
    assert info.value.reason == "revoked" and info.value.session_id == t0.session_id
    assert rejected(lambda: svc.refresh(t1.refresh_token)) == "revoked"


def test_fifty_concurrent_refreshes_get_one_answer(make: Make, redis_url: str) -> None:
    svc = make()
    pair = svc.login("alice")
    barrier = threading.Barrier(50)

    def refresh(_: int) -> Any:
        barrier.wait()
        return svc.refresh(pair.refresh_token)

    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(refresh, range(50)))
    assert len({r.refresh_token for r in results}) == 1  # one rotation, 49 overlap answers
    assert len({r.access_token for r in results}) == 50
    assert results[0].refresh_token != pair.refresh_token
    assert read_log(redis_url) == []  # no spurious revocation
    assert svc.get_session(pair.session_id).session_id == pair.session_id
    svc.refresh(results[0].refresh_token)


def test_replay_of_a_twice_old_token_revokes_the_session(
    make: Make, redis_url: str, clock: ManualClock
) -> None:
    svc = make()
    t0 = svc.login("alice")
    t1 = svc.refresh(t0.refresh_token)
    t2 = svc.refresh(t1.refresh_token)
    svc.validator.validate(t2.access_token)
    with pytest.raises(RefreshReuseDetected):
        svc.refresh(t0.refresh_token)  # inside the window, but not the immediately previous one
    with pytest.raises(SessionNotFound):
        svc.get_session(t0.session_id)
    assert svc.list_sessions("alice") == []
    [(rev, meta)] = read_log(redis_url)
    assert (rev.kind, rev.value, meta["reason"]) == ("session", t0.session_id, "refresh_reuse")
    # its access tokens: issued up to the leeway ahead, accepted up to the leeway past exp
    assert rev.until == clock.now + svc.settings.access_ttl + 2 * svc.settings.leeway
    svc.validator.revoke(rev)
    assert rejected(lambda: svc.validator.validate(t2.access_token)) == "revoked"
    assert rejected(lambda: svc.refresh(t2.refresh_token)) == "revoked"


def test_idle_timeout_slides(make: Make, clock: ManualClock) -> None:
    svc = make(idle_timeout=3600)
    pair = svc.login("alice")
    for _ in range(3):
        clock.now += 3000
        pair = svc.refresh(pair.refresh_token)
    clock.now += 3600
    assert rejected(lambda: svc.refresh(pair.refresh_token)) == "expired"
    assert svc.list_sessions("alice") == []


def test_absolute_timeout(make: Make, clock: ManualClock) -> None:
    svc = make(idle_timeout=3600, absolute_timeout=7200)
    pair = svc.login("alice")
    clock.now += 3000
    pair = svc.refresh(pair.refresh_token)
    clock.now += 3000
    pair = svc.refresh(pair.refresh_token)
    assert pair.refresh_expires_in == 1200  # the refresh token ends with the session
    assert svc.get_session(pair.session_id).expires_at == clock.now + 1200
    clock.now += 1201  # inside the token's leeway: the session's own check answers
    assert rejected(lambda: svc.refresh(pair.refresh_token)) == "expired"
    with pytest.raises(SessionNotFound):
        svc.get_session(pair.session_id)


def test_index_is_pruned_and_every_key_expires(
    make: Make, redis_url: str, clock: ManualClock
) -> None:
    svc = make(idle_timeout=3600, absolute_timeout=7200)
    a = svc.login("alice")
    clock.now += 10
    b = svc.login("alice")
    client = redis.Redis.from_url(redis_url)
    try:
        idx = svc.service.core.keys.index("alice")
        sessions = [k for k in client.keys("ss:{u:*") if k != idx.encode()]
        assert len(sessions) == 2
        for key in sessions:
            assert 3_590_000 < client.pttl(key) <= 3_600_000  # the idle timeout
        # the index lives as long as its longest possible session (absolute expiry), no longer
        assert 7_190_000 < client.pttl(idx) <= 7_200_000
        clock.now += 3595  # a's idle timeout has passed, b's not
        assert [i.session_id for i in svc.list_sessions("alice")] == [b.session_id]
        assert client.zrange(idx, 0, -1) == [b.session_id.encode()]  # pruned on read
        assert rejected(lambda: svc.refresh(a.refresh_token)) == "revoked"
        b2 = svc.refresh(b.refresh_token)  # slides b's idle expiry, not the index
        assert client.pttl(svc.service.core.keys.session("alice", b.session_id)) > 3_590_000
        assert client.pttl(idx) <= 7_200_000
        clock.now += 3601
        assert svc.list_sessions("alice") == []
        assert client.exists(idx) == 0  # emptied, hence gone
        assert rejected(lambda: svc.refresh(b2.refresh_token)) == "revoked"
        assert client.keys("ss:{u:*") == []
    finally:
        client.close()


def test_cap_evicts_the_oldest_and_revokes_it(
    make: Make, redis_url: str, clock: ManualClock
) -> None:
    svc = make(max_sessions_per_user=2)
    pairs = []
    for _ in range(3):
        pairs.append(svc.login("alice"))
        clock.now += 1
    assert {i.session_id for i in svc.list_sessions("alice")} == {p.session_id for p in pairs[1:]}
    [(rev, meta)] = read_log(redis_url)
    assert (rev.kind, rev.value, meta["reason"]) == ("session", pairs[0].session_id, "evicted")
    feed(svc, redis_url)
    assert rejected(lambda: svc.validator.validate(pairs[0].access_token)) == "revoked"
    svc.validator.validate(pairs[2].access_token)
    assert rejected(lambda: svc.refresh(pairs[0].refresh_token)) == "revoked"
    clock.now += 1
    svc.refresh(pairs[1].refresh_token)  # activity does not matter: the oldest login goes
    svc.login("alice")
    assert pairs[1].session_id not in {i.session_id for i in svc.list_sessions("alice")}
    assert [m["reason"] for _, m in read_log(redis_url)] == ["evicted", "evicted"]


def test_cap_ignores_sessions_that_already_timed_out(
    make: Make, redis_url: str, clock: ManualClock
) -> None:
    svc = make(max_sessions_per_user=2, idle_timeout=600)
    first = svc.login("alice")
    clock.now += 1
    second = svc.login("alice")
    client = redis.Redis.from_url(redis_url)
    client.delete(svc.service.core.keys.session("alice", first.session_id))  # its TTL ran out
    client.close()
    third = svc.login("alice")
    assert read_log(redis_url) == []  # nothing live was evicted, nothing revoked
    assert {i.session_id for i in svc.list_sessions("alice")} == {
        second.session_id,
        third.session_id,
    }


@BOTH
def test_logout_one(make: Make, redis_url: str) -> None:
    svc = make()
    a, b = svc.login("alice"), svc.login("alice")
    assert svc.logout(a.session_id) is True
    assert [i.session_id for i in svc.list_sessions("alice")] == [b.session_id]
    assert svc.logout(a.session_id) is False  # idempotent
    [(rev, meta)] = read_log(redis_url)  # the repeat changed nothing, so logged nothing
    assert (rev.kind, rev.value, meta["reason"], meta["source"]) == (
        "session",
        a.session_id,
        "logout",
        "sessionsvc",
    )
    feed(svc, redis_url)
    assert rejected(lambda: svc.validator.validate(a.access_token)) == "revoked"
    svc.validator.validate(b.access_token)
    assert rejected(lambda: svc.refresh(a.refresh_token)) == "revoked"


def test_logout_all(make: Make, redis_url: str, clock: ManualClock) -> None:
    svc = make()
    pairs = [svc.login("alice") for _ in range(3)]
    bob = svc.login("bob")
    clock.now += 5
    assert svc.logout_all("alice", reason="password_changed") == 3
    assert svc.list_sessions("alice") == []
    assert len(svc.list_sessions("bob")) == 1
    [(rev, meta)] = read_log(redis_url)
    assert (rev.kind, rev.value, rev.before, meta["reason"]) == (
        "user",
        "alice",
        clock.now,
        "password_changed",
    )
    feed(svc, redis_url)
    for pair in pairs:
        assert rejected(lambda p=pair: svc.validator.validate(p.access_token)) == "revoked"
        assert rejected(lambda p=pair: svc.refresh(p.refresh_token)) == "revoked"
    svc.validator.validate(bob.access_token)
    clock.now += 1
    svc.validator.validate(svc.login("alice").access_token)  # a new login is not affected


def test_logout_all_while_logins_run(make: Make, redis_url: str) -> None:
    svc = make(clock=time.time)
    ended, pairs = logins_around_a_logout_all(svc)
    client = redis.Redis.from_url(redis_url)
    before = float(client.hget("ss:{rev}:user", "alice") or 0)
    client.close()
    survivors = {i.session_id: i for i in svc.list_sessions("alice")}
    assert ended > 0 and survivors and before > 0, (ended, len(survivors), before)
    assert len(pairs) == ended + len(survivors)  # every session either ended or survived
    assert all(info.created >= before for info in survivors.values())
    feed(svc, redis_url)
    for pair in pairs:
        if pair.session_id not in survivors:  # born before the logout: nothing of it survives
            assert rejected(lambda p=pair: svc.validator.validate(p.access_token)) == "revoked"
            assert rejected(lambda p=pair: svc.refresh(p.refresh_token)) == "revoked"
        else:  # born after it, even in the same second: its tokens are not born revoked
            svc.validator.validate(pair.access_token)


def _iat(token: str) -> int:
    from revocation_harness import claims_of

    return int(claims_of(token)["iat"])


def test_a_login_behind_a_logout_everywhere_issues_tokens_from_its_cutoff(
    make: Make, redis_url: str, clock: ManualClock
) -> None:
    """A logout-everywhere on a node 20 s ahead (its cutoff is not clamped: it covers that
    node's tokens) must not lock the user out of a node 20 s behind it (within the leeway):
    the login is issued from the cutoff (iat ≥ before, session created ≥ before)."""
    svc = make()
    svc.login("alice")
    clock.now += 20.25  # the node that logs the user out everywhere is ahead
    svc.logout_all("alice")
    cutoff = clock.now
    clock.now -= 20.25
    pair = svc.login("alice")  # used to fail: 'superseded' three times, SessionError
    assert _iat(pair.access_token) == _iat(pair.refresh_token) == math.ceil(cutoff)
    [info] = svc.list_sessions("alice")
    assert info.created >= cutoff
    feed(svc, redis_url)
    assert svc.validator.validate(pair.access_token)["sid"] == pair.session_id
    again = svc.refresh(pair.refresh_token)
    assert _iat(again.access_token) >= cutoff
    svc.validator.validate(again.access_token)


def test_a_login_and_refresh_behind_a_global_cutoff(make: Make, redis_url: str) -> None:
    """An all.revoke applied as of Redis' clock, a node whose clock is 20 s behind: a session
    created after the cutoff (by a node ahead) refreshes, and a new login succeeds; their access
    tokens carry iat ≥ before, so a validator with the same clock accepts them."""
    from revocation_harness import Applier

    from sessionsvc import Revocation

    clock = ManualClock(time.time() + 5)  # a node ahead logs in after the cutoff below
    svc = make(clock=clock)
    cutoff = time.time()
    client = redis.Redis.from_url(redis_url)
    Applier(client)(Revocation("all", before=cutoff, until=cutoff + 3600))
    client.close()
    early = svc.login("alice")
    clock.now = cutoff - 20  # the same session, refreshed on a node 20 s behind
    refreshed = svc.refresh(early.refresh_token)
    late = svc.login("bob")
    feed(svc, redis_url)
    for pair in (refreshed, late):
        assert _iat(pair.access_token) >= cutoff
        svc.validator.validate(pair.access_token)
    [info] = svc.list_sessions("bob")
    assert info.created >= cutoff


def test_a_cutoff_beyond_the_leeway_still_refuses_a_login(make: Make, clock: ManualClock) -> None:
    from sessionsvc import SessionError

    svc = make()
    clock.now += svc.settings.leeway + 1  # a node more than the leeway ahead
    svc.logout_all("alice")
    clock.now -= svc.settings.leeway + 1
    with pytest.raises(SessionError, match="leeway"):
        svc.login("alice")


def test_a_session_ends_only_once_its_revocation_is_logged(make: Make, redis_url: str) -> None:
    """With the log append failing (a poisoned log), logout, logout_all, eviction and refresh
    reuse raise and leave the sessions, the index and the revocation state as they were."""
    svc = make(max_sessions_per_user=2)
    a, b = svc.login("alice"), svc.login("alice")
    rotated = svc.refresh(svc.refresh(b.refresh_token).refresh_token)
    client = redis.Redis.from_url(redis_url)
    try:
        poison_log(client)
        before = dump_all(client)
        attempts = [
            lambda: svc.logout(a.session_id),
            lambda: svc.logout_all("alice"),
            lambda: svc.login("alice"),  # at the cap: evicts the oldest
            lambda: svc.refresh(b.refresh_token),  # a twice-old token: reuse
        ]
        for attempt in attempts:
            with pytest.raises(StoreUnavailable, match="last possible ID"):
                attempt()
            assert dump_all(client) == before
    finally:
        client.close()
    assert {i.session_id for i in svc.list_sessions("alice")} == {a.session_id, b.session_id}
    svc.validator.validate(rotated.access_token)


def test_bad_input(make: Make) -> None:
    svc = make()
    pair = svc.login("alice")
    unknown = pair.session_id[:-4] + ("AAAA" if not pair.session_id.endswith("AAAA") else "BBBB")
    with pytest.raises(SessionNotFound):
        svc.get_session(unknown)
    assert svc.logout(unknown) is False
    for junk in ("", "nope", "a.b", "YWxpY2U=.AAAAAAAAAAAAAAAAAAAAAA", "x" * 300):
        with pytest.raises(SessionNotFound):
            svc.get_session(junk)
        with pytest.raises(SessionNotFound):
            svc.logout(junk)
    assert rejected(lambda: svc.refresh("garbage")) == "malformed"
    assert rejected(lambda: svc.refresh(pair.access_token)) == "wrong_type"
    assert rejected(lambda: svc.refresh("a" * 10_000)) == "too_large"
    with pytest.raises(ValueError):
        svc.login("")
    with pytest.raises(ValueError):
        svc.login("x" * 129)
    with pytest.raises(ValueError):
        svc.login("alice", ip=1234)


def test_forged_sid_in_a_refresh_token(make: Make) -> None:
    svc = make()
    alice = svc.login("alice")
    issuer = svc.service.core.issuer
    forged = issuer.refresh_token("bob", alice.session_id)
    assert rejected(lambda: svc.refresh(forged)) == "malformed"


def test_awkward_user_ids_stay_in_one_slot(make: Make, redis_url: str) -> None:
    svc = make()
    for sub in ("a}b:{c", "ü@example.com", "{rev}", "x" * 128):
        pair = svc.login(sub)
        assert [i.sub for i in svc.list_sessions(sub)] == [sub]
        client = redis.Redis.from_url(redis_url)
        keys = [k for k in client.keys("ss:{u:*") if client.type(k) in (b"hash", b"zset")]
        client.close()
        assert len({key_slot(k) for k in keys}) == 1
        assert svc.get_session(pair.session_id).sub == sub
        assert svc.logout_all(sub) == 1


def test_redis_down_is_store_unavailable(make: Make) -> None:
    from redis_server import free_port

    from sessionsvc import StoreUnavailable

    svc = make(redis_url=f"redis://127.0.0.1:{free_port()}/0", redis_connect_timeout=0.2)
    with pytest.raises(StoreUnavailable):
        svc.login("alice")
    with pytest.raises(StoreUnavailable):
        svc.list_sessions("alice")


def test_scripts_touch_declared_keys_of_two_hash_tags(make: Make, redis_url: str) -> None:
    """Cluster readiness: every key a script touches is declared in KEYS, except the session
    hashes that logout_all, eviction and listing find through the (declared) index — those
    share its hash tag. Each script spans at most the user's tag and {rev}."""
    svc = make(max_sessions_per_user=1)
    monitor_client = redis.Redis.from_url(redis_url)
    with monitor_client.monitor() as monitor:
        svc.login("a}b:{c")
        second = svc.login("a}b:{c")  # evicts the first
        third = svc.refresh(second.refresh_token)
        svc.refresh(second.refresh_token)  # the overlap answer
        svc.refresh(third.refresh_token)
        with pytest.raises(RefreshReuseDetected):
            svc.refresh(second.refresh_token)
        pair = svc.login("a}b:{c")
        svc.list_sessions("a}b:{c")
        svc.get_session(pair.session_id)
        svc.logout(pair.session_id)
        svc.login("a}b:{c")
        svc.login("a}b:{c", idp_issuer="https://idp.example.test", idp_sid="a}b:{c")
        svc.logout_all("a}b:{c")
        marker = redis.Redis.from_url(redis_url)
        marker.echo("end-of-test")
        marker.close()
        scripts: list[tuple[list[str], list[str]]] = []
        while True:
            words = monitor.next_command()["command"].split(" ")
            if words[0] == "ECHO":
                break
            if words[0] == "EVALSHA":
                scripts.append((words[3 : 3 + int(words[2])], []))
            elif scripts and words[0] not in ("SCRIPT", "HELLO", "CLIENT"):
                scripts[-1][1].append(words[1])
    monitor_client.close()

    def tag(key: str) -> str:
        return key[key.index("{") : key.index("}") + 1]

    scripts = [s for s in scripts if s[1]]  # (an EVALSHA answered NOSCRIPT touches nothing)
    assert len(scripts) == 14  # (the IdP login's index: one script, one key of its own)
    for declared, touched in scripts:
        for key in touched:
            assert key in declared or (
                key.startswith(
                    tuple(k[: -len("idx")] + "s:" for k in declared if k.endswith("idx"))
                )
            ), (key, declared)
        assert len({tag(k) for k in declared + touched}) <= 2


def test_a_login_in_the_second_of_a_logout_everywhere_is_not_born_revoked(
    make: Make, redis_url: str, clock: ManualClock
) -> None:
    """Tokens carry whole seconds: a login 0.2 s after a logout-everywhere at .5 would have
    iat = floor(now) < the cutoff. It is issued from ceil(cutoff) instead."""
    svc = make()
    clock.now = 1_800_000_000.5
    svc.logout_all("alice")
    clock.now += 0.2
    pair = svc.login("alice")
    assert _iat(pair.access_token) == 1_800_000_001
    feed(svc, redis_url)
    svc.validator.validate(pair.access_token)


# -- identity providers' sessions (their back-channel logout names their sid) ------------------

IDP, IDP_SID = "https://idp.example.test", "idp-session-1"


def _idp_key(svc: Any, issuer: str = IDP, idp_sid: str = IDP_SID) -> str:
    return str(svc.service.core.keys.idp(issuer, idp_sid))


@BOTH
def test_a_login_records_the_idp_session_in_the_session(make: Make) -> None:
    svc = make()
    pair = svc.login("alice", idp_issuer=IDP, idp_sid=IDP_SID)
    plain = svc.login("alice")
    info = svc.get_session(pair.session_id)
    assert (info.idp_issuer, info.idp_sid) == (IDP, IDP_SID)
    assert {(i.session_id, i.idp_sid) for i in svc.list_sessions("alice")} == {
        (pair.session_id, IDP_SID),
        (plain.session_id, None),
    }
    assert (svc.get_session(plain.session_id).idp_issuer, info.idp_issuer) == (None, IDP)


@BOTH
def test_sessions_for_idp_finds_every_session_of_that_idp_session(make: Make) -> None:
    svc = make()
    a = svc.login("alice", idp_issuer=IDP, idp_sid=IDP_SID)
    b = svc.login("bob", idp_issuer=IDP, idp_sid=IDP_SID)
    svc.login("alice", idp_issuer=IDP, idp_sid="another-idp-session")
    svc.login("alice", idp_issuer="https://other.example.test", idp_sid=IDP_SID)
    assert svc.sessions_for_idp(IDP, IDP_SID) == sorted([a.session_id, b.session_id])


@BOTH
def test_an_unknown_idp_session_has_no_sessions(make: Make) -> None:
    svc = make()
    svc.login("alice", idp_issuer=IDP, idp_sid=IDP_SID)
    assert svc.sessions_for_idp(IDP, "never-seen") == []


@BOTH
def test_a_login_recording_an_idp_session_is_two_round_trips(make: Make) -> None:
    svc = make()
    svc.login("alice", idp_issuer=IDP, idp_sid=IDP_SID)  # (loads both scripts)
    svc.commands.clear()
    svc.login("alice", idp_issuer=IDP, idp_sid=IDP_SID)
    assert svc.commands == ["EVALSHA", "EVALSHA"]
    svc.commands.clear()
    svc.sessions_for_idp(IDP, IDP_SID)
    assert svc.commands == ["SMEMBERS"]


def test_the_idp_index_lives_the_absolute_timeout_and_the_access_tokens(
    make: Make, redis_url: str
) -> None:
    svc = make(absolute_timeout=7200)
    svc.login("alice", idp_issuer=IDP, idp_sid=IDP_SID)
    ttl = (7200 + Lifetimes.of(svc.settings).longest_access) * 1000
    with redis.Redis.from_url(redis_url) as client:
        assert ttl - 10_000 < client.pttl(_idp_key(svc)) <= ttl


def test_the_idp_index_ttl_is_extended_never_shortened(make: Make, redis_url: str) -> None:
    svc = make(absolute_timeout=7200)
    ttl = (7200 + Lifetimes.of(svc.settings).longest_access) * 1000
    key = _idp_key(svc)
    with redis.Redis.from_url(redis_url) as client:
        svc.login("alice", idp_issuer=IDP, idp_sid=IDP_SID)
        client.pexpire(key, 1000)  # as if recorded long ago
        svc.login("bob", idp_issuer=IDP, idp_sid=IDP_SID)
        assert ttl - 10_000 < client.pttl(key) <= ttl  # extended
        client.pexpire(key, 10 * ttl)
        svc.login("carol", idp_issuer=IDP, idp_sid=IDP_SID)
        assert client.pttl(key) > 9 * ttl  # not shortened
        client.persist(key)  # (one without a TTL, written by hand, gets one)
        svc.login("dave", idp_issuer=IDP, idp_sid=IDP_SID)
        assert ttl - 10_000 < client.pttl(key) <= ttl


@BOTH
def test_the_idp_index_is_written_before_the_session(make: Make, redis_url: str) -> None:
    """The login script fails after the index was written (the user's index holds another type:
    its first write fails, nothing written): the IdP session's index names a sid, no session
    exists, and logging that sid out ends nothing."""
    svc = make()
    with redis.Redis.from_url(redis_url) as client:
        client.set(svc.service.core.keys.index("alice"), "not a zset")
        with pytest.raises(StoreUnavailable):
            svc.login("alice", idp_issuer=IDP, idp_sid=IDP_SID)
        [sid] = svc.sessions_for_idp(IDP, IDP_SID)
        assert client.exists(svc.service.core.keys.session("alice", sid)) == 0
        assert client.keys("ss:{u:*") == [svc.service.core.keys.index("alice").encode()]
        client.delete(svc.service.core.keys.index("alice"))  # (the fault repaired)
    assert svc.logout(sid) is False


def test_bad_idp_arguments_write_nothing(make: Make, redis_url: str) -> None:
    svc = make()
    for kwargs in (
        {"idp_issuer": IDP},
        {"idp_sid": IDP_SID},
        {"idp_issuer": IDP, "idp_sid": ""},
        {"idp_issuer": IDP, "idp_sid": "x" * 257},
        {"idp_issuer": "https://idp\x1b", "idp_sid": IDP_SID},
    ):
        with pytest.raises(InvalidArgument):
            svc.login("alice", **kwargs)
    with pytest.raises(InvalidArgument):
        svc.sessions_for_idp(IDP, "")
    with redis.Redis.from_url(redis_url) as client:
        assert dump_all(client) == {}
    assert svc.commands == []


@BOTH
def test_a_logout_leaves_the_idp_index_harmless(make: Make, redis_url: str) -> None:
    """The index keeps the ended session's sid until it expires: the IdP's logout then logs it
    out again, which ends nothing and logs nothing."""
    svc = make()
    pair = svc.login("alice", idp_issuer=IDP, idp_sid=IDP_SID)
    assert svc.logout(pair.session_id) is True
    assert svc.sessions_for_idp(IDP, IDP_SID) == [pair.session_id]
    assert svc.logout(pair.session_id) is False
    with pytest.raises(SessionNotFound):
        svc.get_session(pair.session_id)
    assert [rev.value for rev, _ in read_log(redis_url)] == [pair.session_id]
