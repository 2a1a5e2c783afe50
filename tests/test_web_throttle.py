"""Login throttling (``sessionsvc.integrations.web.throttle``) against a real Redis: every
attempt reserved per user name and per client address in fixed windows *before* the credential
check, so the limits bound the attempts that get through however many arrive at once (threads
under ``run``, tasks under ``arun``); ``Retry-After`` as the window's remainder; a success resets
the name and gives the address its attempt back; how addresses are grouped, names normalised,
garbage names still counted; every key in its own slot, one script call each."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
import redis.asyncio
from redis.crc import key_slot

from sessionsvc._redis.run import Op, arun, run
from sessionsvc.errors import StoreUnavailable
from sessionsvc.integrations.web.config import WebSettings
from sessionsvc.integrations.web.throttle import (
    LoginThrottle,
    client_network,
    login_name,
    login_tag,
    throttled,
)
from sessionsvc.sessions.keys import SessionKeys, user_tag

WINDOW = 60


def make_throttle(users: int = 3, ips: int = 1000) -> LoginThrottle:
    web = WebSettings(
        login_user_attempts=users, login_ip_attempts=ips, login_window=WINDOW, _env_file=None
    )
    return LoginThrottle(web, "ss")


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


def count(client: redis.Redis, key: str | None) -> int:
    assert key is not None
    return int(client.get(key) or 0)


def attempts(
    client: redis.Redis, throttle: LoginThrottle, name: str, ip: str | None, n: int
) -> list[float | None]:
    """``n`` attempts one after the other: what ``check`` answered each."""
    return [run(client, throttle.check(name, ip)) for _ in range(n)]


@pytest.mark.redis
def test_every_attempt_is_counted_per_user_name_and_per_address(client: redis.Redis) -> None:
    throttle = make_throttle()
    attempts(client, throttle, "alice", "192.0.2.7", 2)
    attempts(client, throttle, "bob", "192.0.2.7", 1)
    attempts(client, throttle, "alice", "198.51.100.1", 1)
    assert count(client, throttle.user_key("alice")) == 3
    assert count(client, throttle.user_key("bob")) == 1
    assert count(client, throttle.ip_key("192.0.2.7")) == 3
    assert count(client, throttle.ip_key("198.51.100.1")) == 1


@pytest.mark.redis
def test_a_counter_expires_with_its_window_from_the_first_attempt(client: redis.Redis) -> None:
    throttle = make_throttle()
    run(client, throttle.check("alice", "192.0.2.7"))
    for key in (throttle.user_key("alice"), throttle.ip_key("192.0.2.7")):
        assert key is not None
        first = client.pttl(key)
        assert 0 < first <= WINDOW * 1000
        run(client, throttle.check("alice", "192.0.2.7"))
        assert client.pttl(key) <= first  # a later attempt does not extend the window


@pytest.mark.redis
def test_the_limit_is_reached_by_attempts_and_answers_the_windows_remainder(
    client: redis.Redis,
) -> None:
    throttle = make_throttle(users=3)
    assert attempts(client, throttle, "alice", "192.0.2.7", 3) == [None, None, None]
    before = client.pttl(throttle.user_key("alice"))
    wait = run(client, throttle.check("alice", "192.0.2.7"))  # the 4th: over the limit
    after = client.pttl(throttle.user_key("alice"))
    assert wait is not None and after <= wait * 1000 <= before <= WINDOW * 1000
    assert run(client, throttle.check("alice", "203.0.113.9")) is not None  # from anywhere
    assert run(client, throttle.check("bob", "192.0.2.7")) is None  # another name goes on
    # a refused attempt is still counted for the address (and the name); the window stays
    assert count(client, throttle.ip_key("192.0.2.7")) == 5
    assert client.pttl(throttle.user_key("alice")) <= before


@pytest.mark.redis
def test_over_the_address_limit_every_name_waits_and_is_not_counted(client: redis.Redis) -> None:
    throttle = make_throttle(users=100, ips=3)
    for name in ("a", "b", "c"):
        assert run(client, throttle.check(name, "192.0.2.7")) is None
    ip_key = throttle.ip_key("192.0.2.7")
    assert ip_key is not None
    before = client.pttl(ip_key)
    wait = run(client, throttle.check("someone-else", "192.0.2.7"))
    assert wait is not None and wait * 1000 <= before
    # the address refused it before the name's counter was touched: an address over its limit
    # cannot lock out names
    assert not client.exists(throttle.user_key("someone-else"))
    assert run(client, throttle.check("someone-else", "192.0.2.8")) is None


@pytest.mark.redis
@pytest.mark.parametrize(("users", "ips", "names"), [(5, 1000, ["alice"] * 20), (100, 5, None)])
def test_concurrent_attempts_cannot_exceed_the_limit_threads(
    client: redis.Redis, users: int, ips: int, names: list[str] | None
) -> None:
    """20 attempts at once, each on its own thread and connection, against a limit of 5 (of
    one name, or of one address for 20 names): exactly 5 get through."""
    throttle = make_throttle(users=users, ips=ips)
    names = names or [f"user{i}" for i in range(20)]
    start = threading.Barrier(len(names))

    def attempt(name: str) -> float | None:
        start.wait()
        return run(client, throttle.check(name, "192.0.2.7"))

    with ThreadPoolExecutor(len(names)) as pool:
        answers = list(pool.map(attempt, names))
    assert sum(a is None for a in answers) == 5
    assert all(0 < a <= WINDOW for a in answers if a is not None)


@pytest.mark.redis
def test_concurrent_attempts_cannot_exceed_the_limit_asyncio(redis_url: str) -> None:
    throttle = make_throttle(users=5)

    async def scenario() -> list[float | None]:
        aclient = redis.asyncio.Redis.from_url(redis_url)
        try:
            ops = [arun(aclient, throttle.check("alice", f"192.0.2.{i}")) for i in range(20)]
            return list(await asyncio.gather(*ops))
        finally:
            await aclient.aclose()

    answers = asyncio.run(scenario())
    assert sum(a is None for a in answers) == 5
    with redis.Redis.from_url(redis_url) as c:
        assert count(c, throttle.user_key("alice")) == 20  # all counted, 5 let through


@pytest.mark.redis
def test_a_success_resets_the_name_and_gives_the_address_its_attempt_back(
    client: redis.Redis,
) -> None:
    throttle = make_throttle(users=3, ips=4)
    ip_key = throttle.ip_key("192.0.2.7")
    assert attempts(client, throttle, "alice", "192.0.2.7", 3) == [None, None, None]
    window = client.pttl(ip_key)
    run(client, throttle.succeeded("alice", "192.0.2.7"))  # the third was the right password
    assert not client.exists(throttle.user_key("alice"))
    assert count(client, ip_key) == 2
    assert 0 < client.pttl(ip_key) <= window  # its window goes on
    assert run(client, throttle.check("alice", "192.0.2.8")) is None  # the name is free again
    first, second, third = attempts(client, throttle, "bob", "192.0.2.7", 3)
    assert first is None and second is None  # the address's 3rd and 4th of 4
    assert third is not None and third * 1000 <= window  # its 5th


@pytest.mark.redis
def test_an_office_nat_keeps_its_budget_through_successful_logins(client: redis.Redis) -> None:
    throttle = make_throttle(users=3, ips=5)
    ip_key = throttle.ip_key("192.0.2.7")
    assert ip_key is not None
    for i in range(50):  # 50 colleagues log in right, one after the other
        assert run(client, throttle.check(f"colleague{i}", "192.0.2.7")) is None
        run(client, throttle.succeeded(f"colleague{i}", "192.0.2.7"))
    assert client.keys("*") == [ip_key.encode()] and count(client, ip_key) == 0


@pytest.mark.redis
def test_giving_back_never_goes_below_zero_nor_creates_a_counter(client: redis.Redis) -> None:
    throttle = make_throttle()
    ip_key = throttle.ip_key("192.0.2.7")
    assert ip_key is not None
    run(client, throttle.succeeded("alice", "192.0.2.7"))  # nothing reserved (window over)
    assert not client.exists(ip_key)
    run(client, throttle.check("alice", "192.0.2.7"))
    for _ in range(3):
        run(client, throttle.succeeded("alice", "192.0.2.7"))
    assert count(client, ip_key) == 0
    client.set(ip_key, "-3", px=5000)  # planted (a raw DECR): left as it is
    run(client, throttle.succeeded("alice", "192.0.2.7"))
    assert client.get(ip_key) == b"-3"


@pytest.mark.redis
def test_an_ipv6_client_is_counted_by_its_64(client: redis.Redis) -> None:
    throttle = make_throttle(users=100, ips=2)
    run(client, throttle.check("a", "2001:db8:1:2::1"))
    run(client, throttle.check("b", "2001:DB8:1:2:a:b:c:d"))  # another address of the same host
    assert throttle.ip_key("2001:db8:1:2:ffff::1") == "ss:{ip:2001:db8:1:2::/64}:login_fail"
    assert run(client, throttle.check("c", "2001:db8:1:2:ffff::1")) is not None
    assert run(client, throttle.check("c", "2001:db8:1:3::1")) is None  # the next /64
    assert client_network("fe80::1%eth0") == "fe80::/64"  # a zone id is dropped


@pytest.mark.redis
def test_an_ipv4_mapped_client_is_counted_as_ipv4(client: redis.Redis) -> None:
    throttle = make_throttle(users=100, ips=2)
    run(client, throttle.check("a", "::ffff:192.0.2.7"))
    run(client, throttle.check("b", "192.0.2.7"))
    assert throttle.ip_key("::ffff:192.0.2.7") == "ss:{ip:192.0.2.7}:login_fail"
    assert run(client, throttle.check("c", "::ffff:c000:207")) is not None
    run(client, throttle.succeeded("a", "::ffff:192.0.2.7"))  # given back to the same counter
    assert count(client, throttle.ip_key("192.0.2.7")) == 2


@pytest.mark.redis
def test_no_client_address_means_no_address_counter(client: redis.Redis) -> None:
    throttle = make_throttle(users=10)
    for no_address in (None, "", "testclient", "/run/app.sock"):
        assert throttle.ip_key(no_address) is None
        assert run(client, throttle.check("alice", no_address)) is None
    assert client.keys("*") == [throttle.user_key("alice").encode()]
    assert count(client, throttle.user_key("alice")) == 4
    run(client, throttle.succeeded("alice", None))
    assert client.keys("*") == []


@pytest.mark.redis
def test_names_user_tag_refuses_are_still_counted(client: redis.Redis) -> None:
    throttle = make_throttle(users=100, ips=5)
    garbage = ["", "\x00admin", "a" * 129, "\ud800", "tab\there"]
    for name in garbage:
        assert run(client, throttle.check(name, "192.0.2.7")) is None
    tags = [login_tag(login_name(name)) for name in garbage]
    assert len(set(tags)) == len(garbage)  # each its own counter ...
    assert all(t.startswith("~") and "}" not in t for t in tags)  # ... never a real user's
    assert all(count(client, throttle.user_key(name)) == 1 for name in garbage)
    assert count(client, throttle.ip_key("192.0.2.7")) == len(garbage)
    assert run(client, throttle.check("\x00other", "192.0.2.7")) is not None  # by the address


@pytest.mark.redis
def test_normalised_names_share_a_counter(client: redis.Redis) -> None:
    throttle = make_throttle(users=5)
    variants = ["Alice", "alice", " alice", "ALICE\t", "ａｌｉｃｅ"]  # the last: full width
    assert {login_name(v) for v in variants} == {"alice"}
    assert {throttle.user_key(v) for v in variants} == {f"ss:{{u:{user_tag('alice')}}}:login_fail"}
    for i, name in enumerate(variants):
        assert run(client, throttle.check(name, f"192.0.2.{i}")) is None
    assert run(client, throttle.check("aLiCe ", "192.0.2.99")) is not None  # the 6th of one name
    assert login_name("Straße") == login_name("STRASSE")  # case folding, not lower()
    assert login_name(" \x00Admin ") == login_name("\x00admin")  # refused names too
    assert throttle.user_key(" \x00Admin ") == throttle.user_key("\x00admin")
    assert login_name("ǰ") == login_name(login_name("ǰ"))  # NFKC again after folding
    run(client, throttle.succeeded("ALICE", None))  # a success resets the shared counter
    assert not client.exists(throttle.user_key("alice"))


@pytest.mark.redis
def test_each_counter_lives_in_its_own_slot_one_call_each(client: redis.Redis) -> None:
    throttle = make_throttle()
    user_key, ip_key = throttle.user_key("alice"), throttle.ip_key("192.0.2.7")
    assert user_key == f"ss:{{u:{user_tag('alice')}}}:login_fail"
    assert ip_key == "ss:{ip:192.0.2.7}:login_fail"
    assert key_slot(user_key.encode()) == key_slot(SessionKeys("ss").index("alice").encode())
    assert key_slot(ip_key.encode()) == key_slot(b"ip:192.0.2.7")
    within = [(c.script, c.keys) for c in _calls(throttle.check("alice", "192.0.2.7"), [1, 1])]
    assert within == [("login_reserve", [ip_key]), ("login_reserve", [user_key])]
    over = [(c.script, c.keys) for c in _calls(throttle.check("alice", "192.0.2.7"), [1001, 1])]
    assert over == [("login_reserve", [ip_key])]  # the address refused: the name is not counted
    success = [(c.script, c.keys) for c in _calls(throttle.succeeded("alice", "192.0.2.7"), 1)]
    assert success == [("login_reset", [user_key]), ("login_release", [ip_key])]


def _calls(op: Op[Any], reply: Any) -> Iterator[Any]:
    """The calls of ``op``, each answered ``reply``."""
    try:
        call = op.send(None)
        while True:
            yield call
            call = op.send(reply)
    except StopIteration:
        return


@pytest.mark.redis
def test_a_counter_without_an_expiry_gets_the_window(client: redis.Redis) -> None:
    throttle = make_throttle(users=3)
    client.set(throttle.user_key("alice"), "7")  # not written by the scripts
    wait = run(client, throttle.check("alice", None))
    assert wait is not None and wait <= WINDOW
    assert 0 < client.pttl(throttle.user_key("alice")) <= WINDOW * 1000
    assert client.get(throttle.user_key("alice")) == b"8"
    ip_key = throttle.ip_key("192.0.2.7")
    assert ip_key is not None
    client.set(ip_key, "4")
    run(client, throttle.succeeded("alice", "192.0.2.7"))  # giving back gives the window too
    assert client.get(ip_key) == b"3" and 0 < client.pttl(ip_key) <= WINDOW * 1000


@pytest.mark.redis
@pytest.mark.parametrize("planted", ["many", "1.5", "007", " 3", ""])
def test_a_key_that_is_not_a_counter_is_an_error_that_writes_nothing(
    client: redis.Redis, planted: str
) -> None:
    throttle = make_throttle()
    user_key, ip_key = throttle.user_key("alice"), throttle.ip_key("192.0.2.7")
    assert ip_key is not None
    client.set(user_key, planted)
    with pytest.raises(StoreUnavailable):
        run(client, throttle.check("alice", None))
    assert client.get(user_key) == planted.encode() and client.pttl(user_key) == -1
    client.set(ip_key, planted)
    with pytest.raises(StoreUnavailable):
        run(client, throttle.check("alice", "192.0.2.7"))  # the address's, first
    with pytest.raises(StoreUnavailable):
        run(client, _release(throttle, ip_key))
    assert client.get(ip_key) == planted.encode() and client.pttl(ip_key) == -1
    assert client.get(user_key) == planted.encode()


@pytest.mark.redis
def test_a_key_of_another_type_is_an_error_that_writes_nothing(client: redis.Redis) -> None:
    throttle = make_throttle()
    ip_key = throttle.ip_key("192.0.2.7")
    assert ip_key is not None
    for key in (throttle.user_key("alice"), ip_key):
        client.hset(key, "x", "1")
    with pytest.raises(StoreUnavailable):
        run(client, throttle.check("alice", None))
    with pytest.raises(StoreUnavailable):
        run(client, throttle.check("alice", "192.0.2.7"))
    with pytest.raises(StoreUnavailable):
        run(client, _release(throttle, ip_key))
    for key in (throttle.user_key("alice"), ip_key):
        assert client.hgetall(key) == {b"x": b"1"} and client.pttl(key) == -1


def _release(throttle: LoginThrottle, ip_key: str) -> Op[Any]:
    """``succeeded``'s second call alone (its first, the name's DEL, would succeed)."""
    op = throttle.succeeded("nobody", "192.0.2.7")
    next(op)
    release = op.send(0)
    assert release.keys == [ip_key]
    return (yield release)  # type: ignore[no-any-return]


@pytest.mark.redis
def test_the_same_ops_run_on_asyncio(redis_url: str) -> None:
    throttle = make_throttle(users=2)

    async def scenario() -> list[float | None]:
        aclient = redis.asyncio.Redis.from_url(redis_url)
        try:
            seen = [await arun(aclient, throttle.check("alice", "2001:db8::1")) for _ in range(3)]
            await arun(aclient, throttle.succeeded("alice", "2001:db8::1"))
            seen.append(await arun(aclient, throttle.check("alice", "2001:db8::1")))
            return seen
        finally:
            await aclient.aclose()

    first, second, locked, reset = asyncio.run(scenario())
    assert first is None and second is None and reset is None
    assert locked is not None and 0 < locked <= WINDOW
    with redis.Redis.from_url(redis_url) as c:
        assert c.get("ss:{ip:2001:db8::/64}:login_fail") == b"3"  # 4 attempts, 1 given back


def test_throttled_is_a_429_with_whole_seconds_to_wait() -> None:
    response = throttled(12.3).response()
    assert response.status == 429
    assert response.get("retry-after") == ["13"]
    assert response.body["error"] == "too_many_attempts"
    assert throttled(0.0).response().get("retry-after") == ["1"]  # never "0": retry now
