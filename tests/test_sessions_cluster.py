"""Sessions on a real 3-primary Redis Cluster: every operation in single-slot steps
(``sessionsvc.sessions.cluster``), sync and async, and the steps' invariants under
interleaving: a revocation is recorded before its session ends, a refresh racing a
logout-everywhere mints nothing its cutoff misses, a half-done logout-everywhere is finished
by the next operation that meets it."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
import redis.cluster
from conftest import ManualClock, make_settings
from redis.crc import key_slot
from revocation_harness import claims_of
from sessions_harness import logins_around_a_logout_all, read_log

from sessionsvc import (
    AsyncSessionService,
    RefreshReuseDetected,
    SessionNotFound,
    SessionService,
    TokenRejected,
    Validator,
)
from sessionsvc._redis.run import Effect, Op, run
from sessionsvc._redis.scripts import SCRIPTS, Call
from sessionsvc.errors import OverCapacity
from sessionsvc.sessions.core import Origin
from sessionsvc.sessions.keys import user_tag

pytestmark = [pytest.mark.redis, pytest.mark.cluster]

T = TypeVar("T")
Make = Callable[..., Any]
BOTH = pytest.mark.parametrize("make", ["sync", "async"], indirect=True)


class AsyncOnLoop:
    """``AsyncSessionService`` on an event loop in a thread, called synchronously."""

    def __init__(self, settings: Any, clock: Callable[[], float]) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

        async def build() -> AsyncSessionService:
            return AsyncSessionService(settings, clock=clock)

        self.service = self.run(build())

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.service, name)
        return lambda *args, **kwargs: self.run(method(*args, **kwargs))

    def close(self) -> None:
        self.run(self.service.aclose())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


@pytest.fixture
def make(
    request: pytest.FixtureRequest, redis_cluster_url: str, clock: ManualClock
) -> Iterator[Make]:
    """``make(**overrides)`` → a session service on the cluster (``BOTH``: also the async one),
    with ``.validator`` (fed by ``feed``) and ``.url``."""
    made: list[Any] = []
    kind = getattr(request, "param", "sync")

    def build(*, clock: Callable[[], float] = clock, **overrides: Any) -> Any:
        settings = make_settings(redis_url=redis_cluster_url, redis_cluster=True, **overrides)
        svc: Any = (
            AsyncOnLoop(settings, clock)
            if kind == "async"
            else SessionService(settings, clock=clock)
        )
        made.append(svc)
        svc.validator = Validator(settings, clock=clock)
        return svc

    yield build
    for svc in made:
        svc.close()


@pytest.fixture
def client(redis_cluster_url: str) -> Iterator[redis.cluster.RedisCluster]:
    c = redis.cluster.RedisCluster.from_url(redis_cluster_url)
    yield c
    c.close()


def log(url: str) -> list[Any]:
    return read_log(url, cluster=True)


def feed(svc: Any, url: str) -> None:
    for rev, _ in log(url):
        svc.validator.revoke(rev)


def rejected(call: Callable[[], object]) -> str:
    with pytest.raises(TokenRejected) as info:
        call()
    return info.value.reason


def one(effect: Effect) -> Op[Any]:
    return (yield effect)


class Stepper:
    """Drive an op one effect at a time on ``client``: other operations can run between."""

    def __init__(self, client: Any, op: Op[Any]) -> None:
        self.client, self.op = client, op
        self.effect: Any = next(op)
        self.done, self.value = False, None

    def step(self) -> str:
        """Run the pending effect; return the name of the next one ('' when the op returned)."""
        reply = run(self.client, one(self.effect))
        try:
            self.effect = self.op.send(reply)
        except StopIteration as stop:
            self.done, self.value, self.effect = True, stop.value, None
            return ""
        except OverCapacity as refused:  # (the op's answer to a full budget)
            self.done, self.value, self.effect = True, refused, None
            return ""
        return self.name

    @property
    def name(self) -> str:
        return getattr(self.effect, "script", type(self.effect).__name__)


@BOTH
def test_every_operation_works_on_a_cluster(make: Make, redis_cluster_url: str) -> None:
    svc = make()
    pair = svc.login("alice", device="laptop")
    svc.validator.validate(pair.access_token)
    [info] = svc.list_sessions("alice")
    assert info == svc.get_session(pair.session_id) and info.device == "laptop"
    again = svc.refresh(pair.refresh_token)
    assert again.session_id == pair.session_id
    other = svc.login("alice")
    assert svc.logout(pair.session_id) is True
    assert [i.session_id for i in svc.list_sessions("alice")] == [other.session_id]
    assert svc.logout_all("alice") == 1
    assert svc.list_sessions("alice") == []
    assert [(r.kind, m["reason"]) for r, m in log(redis_cluster_url)] == [
        ("session", "logout"),
        ("user", "logout_all"),
    ]
    feed(svc, redis_cluster_url)
    for token in (pair.access_token, again.access_token, other.access_token):
        assert rejected(lambda t=token: svc.validator.validate(t)) == "revoked"
    assert rejected(lambda: svc.refresh(again.refresh_token)) == "revoked"


def test_users_live_in_their_own_slots(make: Make, client: Any) -> None:
    svc = make()
    subs = ("alice", "bob", "carol", "dave")
    for sub in subs:
        svc.login(sub)
    indexes = [svc.core.keys.index(sub) for sub in subs]
    assert all(client.exists(k) for k in indexes)
    slots = {key_slot(k.encode()) for k in indexes}
    assert len(slots) == 4 and key_slot(b"ss:{rev}:log") not in slots


def test_reuse_revokes_the_session_before_it_ends(
    make: Make, redis_cluster_url: str, clock: ManualClock
) -> None:
    svc = make()
    t0 = svc.login("alice")
    t1 = svc.refresh(t0.refresh_token)
    t2 = svc.refresh(t1.refresh_token)
    with pytest.raises(RefreshReuseDetected):
        svc.refresh(t0.refresh_token)
    [(rev, meta)] = log(redis_cluster_url)
    assert (rev.kind, rev.value, meta["reason"]) == ("session", t0.session_id, "refresh_reuse")
    with pytest.raises(SessionNotFound):
        svc.get_session(t0.session_id)
    assert rejected(lambda: svc.refresh(t2.refresh_token)) == "revoked"


def test_overlap_answers_the_current_token(make: Make, redis_cluster_url: str) -> None:
    svc = make()
    t0 = svc.login("alice")
    t1 = svc.refresh(t0.refresh_token)
    assert svc.refresh(t0.refresh_token).refresh_token == t1.refresh_token
    assert log(redis_cluster_url) == []


def test_the_cap_evicts_the_oldest_revoking_it_first(
    make: Make, redis_cluster_url: str, clock: ManualClock
) -> None:
    svc = make(max_sessions_per_user=2)
    pairs = []
    for _ in range(3):
        pairs.append(svc.login("alice"))
        clock.now += 1
    assert {i.session_id for i in svc.list_sessions("alice")} == {p.session_id for p in pairs[1:]}
    [(rev, meta)] = log(redis_cluster_url)
    assert (rev.kind, rev.value, meta["reason"]) == ("session", pairs[0].session_id, "evicted")
    assert rejected(lambda: svc.refresh(pairs[0].refresh_token)) == "revoked"


def test_logout_all_covers_tokens_a_node_ahead_issued(
    make: Make, redis_cluster_url: str, clock: ManualClock
) -> None:
    """The cutoff is raised past the sessions' last activity, as on one Redis: a refresh on a
    node 3 s ahead issued tokens that a logout-everywhere from this node still covers."""
    svc = make()
    pair = svc.login("alice")
    clock.now += 3
    ahead = svc.refresh(pair.refresh_token)
    clock.now -= 3
    assert svc.logout_all("alice") == 1
    [(rev, _)] = log(redis_cluster_url)
    assert rev.before > claims_of(ahead.access_token)["iat"]
    feed(svc, redis_cluster_url)
    assert rejected(lambda: svc.validator.validate(ahead.access_token)) == "revoked"


def test_a_login_behind_a_logout_everywhere_is_issued_from_its_cutoff(
    make: Make, clock: ManualClock
) -> None:
    svc = make()
    svc.login("alice")
    clock.now += 20.25
    svc.logout_all("alice")
    cutoff = clock.now
    clock.now -= 20.25
    pair = svc.login("alice")
    assert claims_of(pair.access_token)["iat"] >= cutoff
    [info] = svc.list_sessions("alice")
    assert info.created >= cutoff


def test_a_refresh_that_read_before_a_logout_everywhere_is_refused(
    make: Make, client: Any, redis_cluster_url: str, clock: ManualClock
) -> None:
    """rev_read, then a whole logout-everywhere, then the rotation: the rotation meets the
    ended session (or the fence) and hands out nothing."""
    svc = make()
    pair = svc.login("alice")
    clock.now += 1
    refresh = Stepper(client, svc.core.refresh(pair.refresh_token))
    assert refresh.step() == "user_refresh"  # read {rev}: nothing revoked yet
    assert svc.logout_all("alice") == 1
    with pytest.raises(TokenRejected, match="revoked"):
        refresh.step()


def test_a_refresh_meeting_an_open_fence_finishes_the_logout_first(
    make: Make, client: Any, redis_cluster_url: str, clock: ManualClock
) -> None:
    """The logout-everywhere stops after opening its fence (a crash): a refresh that meets
    the fence applies the user revocation, closes the fence, and is refused; the logout's own
    remaining steps then change nothing."""
    svc = make()
    pair = svc.login("alice")
    clock.now += 1
    logout = Stepper(client, svc.core.logout_all("alice"))
    assert logout.step() == "apply_own"  # the fence is open, nothing revoked yet
    assert log(redis_cluster_url) == []
    assert rejected(lambda: svc.refresh(pair.refresh_token)) == "revoked"
    [(rev, meta)] = log(redis_cluster_url)
    assert (rev.kind, rev.value, meta["reason"]) == ("user", "alice", "logout_all")
    while not logout.done:
        logout.step()
    assert len(log(redis_cluster_url)) == 1 and svc.list_sessions("alice") == []
    feed(svc, redis_cluster_url)
    assert rejected(lambda: svc.validator.validate(pair.access_token)) == "revoked"
    clock.now += 1
    svc.validator.validate(svc.login("alice").access_token)  # the fence is closed


def test_a_login_meeting_an_open_fence_finishes_the_logout_first(
    make: Make, client: Any, redis_cluster_url: str, clock: ManualClock
) -> None:
    svc = make()
    old = svc.login("alice")
    clock.now += 1
    Stepper(client, svc.core.logout_all("alice")).step()  # fence open, then a crash
    clock.now += 1
    new = svc.login("alice")
    assert [i.session_id for i in svc.list_sessions("alice")] == [new.session_id]
    feed(svc, redis_cluster_url)
    assert rejected(lambda: svc.validator.validate(old.access_token)) == "revoked"
    svc.validator.validate(new.access_token)


def test_a_logout_interrupted_after_its_revocation_hides_the_session(
    make: Make, client: Any, redis_cluster_url: str
) -> None:
    """logout's revocation is applied, then a crash before the session ends: the leftover
    hash is neither listed nor refreshable (and the refresh removes it)."""
    svc = make()
    pair, other = svc.login("alice"), svc.login("alice")
    logout = Stepper(client, svc.core.logout(pair.session_id))
    assert logout.step() == "apply_own"
    assert logout.step() == "user_end"
    assert [i.session_id for i in svc.list_sessions("alice")] == [other.session_id]
    with pytest.raises(SessionNotFound):
        svc.get_session(pair.session_id)
    assert rejected(lambda: svc.refresh(pair.refresh_token)) == "revoked"
    assert client.exists(svc.core.keys.session("alice", pair.session_id)) == 0


def test_logout_all_while_logins_run(make: Make, redis_cluster_url: str) -> None:
    svc = make(clock=time.time)
    ended, pairs = logins_around_a_logout_all(svc)
    assert len(log(redis_cluster_url)) == 1  # finished by whichever op came first: once
    survivors = {i.session_id for i in svc.list_sessions("alice")}
    assert ended > 0 and survivors, (ended, len(survivors))
    assert len(pairs) == ended + len(survivors)
    feed(svc, redis_cluster_url)
    for pair in pairs:
        if pair.session_id not in survivors:
            assert rejected(lambda p=pair: svc.validator.validate(p.access_token)) == "revoked"
        else:
            svc.validator.validate(pair.access_token)


def test_refreshes_racing_a_logout_everywhere_mint_nothing_it_misses(
    make: Make, redis_cluster_url: str
) -> None:
    """Four threads refresh their chains while the user is logged out everywhere: every access
    token handed out either predates the cutoff (refused) or belongs to no session at all
    after it; no refresh succeeds once the logout has returned."""
    svc = make(clock=time.time)
    chains = [svc.login("alice") for _ in range(4)]
    stop, done = threading.Event(), threading.Event()
    minted: list[Any] = []
    after: list[Any] = []

    def keep_refreshing(i: int) -> None:
        pair = chains[i]
        while not stop.is_set():
            try:
                pair = svc.refresh(pair.refresh_token)
            except TokenRejected:
                return
            (after if done.is_set() else minted).append(pair)

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(keep_refreshing, i) for i in range(4)]
        time.sleep(0.15)
        svc.logout_all("alice")
        done.set()
        time.sleep(0.05)
        stop.set()
        for f in futures:
            f.result()
    assert minted and not after
    feed(svc, redis_cluster_url)
    for pair in minted:
        assert rejected(lambda p=pair: svc.validator.validate(p.access_token)) == "revoked"


def test_a_login_in_the_second_of_a_logout_everywhere_is_not_born_revoked(
    make: Make, redis_cluster_url: str, clock: ManualClock
) -> None:
    svc = make()
    clock.now = 1_800_000_000.5
    svc.logout_all("alice")
    clock.now += 0.2
    pair = svc.login("alice")
    assert claims_of(pair.access_token)["iat"] == 1_800_000_001
    feed(svc, redis_cluster_url)
    svc.validator.validate(pair.access_token)


def test_a_session_marked_to_end_never_comes_back_after_its_revocation_expires(
    make: Make, client: Any, redis_cluster_url: str
) -> None:
    """A logout stops after its revocation; the revocation, which outlives only the access
    tokens, expires (pruned here). The session is still refused, revoked again and ended."""
    svc = make()
    pair = svc.login("alice")
    logout = Stepper(client, svc.core.logout(pair.session_id))
    logout.step()
    logout.step()  # marked and revoked; user_end never runs
    client.zrem("ss:{rev}:sid", pair.session_id)  # what housekeeping does once it expired
    assert rejected(lambda: svc.refresh(pair.refresh_token)) == "revoked"
    assert client.zscore("ss:{rev}:sid", pair.session_id) is not None  # revoked again
    assert client.exists(svc.core.keys.session("alice", pair.session_id)) == 0


def test_an_eviction_that_stops_short_leaves_the_evicted_session_refused(
    make: Make, client: Any, clock: ManualClock
) -> None:
    svc = make(max_sessions_per_user=1)
    old = svc.login("alice")
    clock.now += 1
    login = Stepper(client, svc.core.login("alice"))
    names = [login.step() for _ in range(3)]  # rev_read, user_login (evict), apply_batch
    assert names == ["user_login", "apply_batch", "rev_read"]  # then a crash
    client.zrem("ss:{rev}:sid", old.session_id)  # its revocation expired
    assert svc.list_sessions("alice") == []
    assert rejected(lambda: svc.refresh(old.refresh_token)) == "revoked"


def fill_budget(client: Any, publisher: str = "idp") -> tuple[str, Origin]:
    """A publisher's budget holding one live charge, its cap 1: its next revocation is refused."""
    budget = f"ss:{{rev}}:budget:{publisher}"
    client.zadd(budget, {"session:other": 10_000_000_000})
    return budget, Origin(publisher, "1-0", budget, 1)


def test_a_refused_logout_everywhere_leaves_another_ones_fence_in_place(
    make: Make, client: Any, clock: ManualClock
) -> None:
    svc = make()
    pair = svc.login("alice")
    _, origin = fill_budget(client)
    refused = Stepper(client, svc.core.logout_all("alice", origin=origin, clamp=True))
    refused.step()  # its fence entry
    ours = Stepper(client, svc.core.logout_all("alice"))
    ours.step()  # ours, with the same or a later cutoff
    while not refused.done:
        refused.step()
    assert isinstance(refused.value, OverCapacity)  # over capacity: nothing ended
    assert [k for k in client.hkeys(svc.core.keys.fence_of(user_tag("alice"))) if k[:2] == b"p:"]
    clock.now += 5  # a node ahead
    assert rejected(lambda: svc.refresh(pair.refresh_token)) == "revoked"  # fenced: finished
    while not ours.done:
        ours.step()


def test_finishing_a_publishers_logout_everywhere_charges_its_budget(
    make: Make, client: Any, redis_cluster_url: str
) -> None:
    """A publisher's logout-everywhere stops after its fence; the refresh that finishes it
    applies it as the publisher: its full budget refuses it, so nothing is revoked or ended."""
    svc = make()
    pair = svc.login("alice")
    budget, origin = fill_budget(client)
    Stepper(client, svc.core.logout_all("alice", origin=origin, clamp=True)).step()
    again = svc.refresh(pair.refresh_token)  # the pending entry finished (refused), closed
    assert again.session_id == pair.session_id
    assert log(redis_cluster_url) == [] and client.zcard(budget) == 1
    assert client.hget("ss:{rev}:user", "alice") is None


def test_thousands_of_sids_are_read_in_one_step(client: Any) -> None:
    sids = [f"S-{i}" for i in range(10_000)]  # past Lua's unpack limit (about 8,000)
    keys = SCRIPTS["rev_read"].rev_keys("ss")
    reply = run(client, one(Call("rev_read", keys, ["alice", "", "", *sids])))
    assert len(reply) == 4 + len(sids) and set(reply[4:]) == {0}


# -- identity providers' sessions ------------------------------------------------------------

IDP, IDP_SID = "https://idp.example.test", "idp-session-1"


@BOTH
def test_a_login_recording_an_idp_session_works_on_a_cluster(make: Make) -> None:
    svc = make()
    a = svc.login("alice", idp_issuer=IDP, idp_sid=IDP_SID)
    b = svc.login("bob", idp_issuer=IDP, idp_sid=IDP_SID)
    info = svc.get_session(a.session_id)
    assert (info.idp_issuer, info.idp_sid) == (IDP, IDP_SID)
    assert svc.sessions_for_idp(IDP, IDP_SID) == sorted([a.session_id, b.session_id])
    assert svc.sessions_for_idp(IDP, "never-seen") == []


def test_the_idp_index_lives_in_a_slot_of_its_own(make: Make, client: Any) -> None:
    svc = make()
    svc.login("alice", idp_issuer=IDP, idp_sid=IDP_SID)
    key = svc.core.keys.idp(IDP, IDP_SID)
    assert client.exists(key) == 1
    assert key_slot(key.encode()) not in {
        key_slot(svc.core.keys.index("alice").encode()),
        key_slot(b"ss:{rev}:log"),
    }


def test_the_idp_index_is_written_before_the_session_on_a_cluster(make: Make, client: Any) -> None:
    """The index step runs first; a crash right after it leaves a member naming no session."""
    svc = make()
    login = Stepper(client, svc.core.login("alice", idp_issuer=IDP, idp_sid=IDP_SID))
    assert login.name == "login_idp"
    assert login.step() == "rev_read"  # then a crash
    [sid] = svc.sessions_for_idp(IDP, IDP_SID)
    assert client.exists(svc.core.keys.session("alice", sid)) == 0
    with pytest.raises(SessionNotFound):
        svc.get_session(sid)
    assert svc.logout(sid) is False
