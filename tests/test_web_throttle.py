"""Login throttling (``sessionsvc.integrations.web.throttle``) against a real Redis: failures
counted per user name and per client address in fixed windows, the limits, ``Retry-After`` as
the window's remainder, the reset on success, how addresses are grouped, garbage names still
counted, every key in its own slot; the same ops under ``run`` and ``arun``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
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


def fail(client: redis.Redis, throttle: LoginThrottle, name: str, ip: str | None, n: int) -> None:
    for _ in range(n):
        run(client, throttle.failed(name, ip))


@pytest.mark.redis
def test_failures_count_per_user_name_and_per_address(client: redis.Redis) -> None:
    throttle = make_throttle()
    fail(client, throttle, "alice", "192.0.2.7", 2)
    fail(client, throttle, "bob", "192.0.2.7", 1)
    fail(client, throttle, "alice", "198.51.100.1", 1)
    assert count(client, throttle.user_key("alice")) == 3
    assert count(client, throttle.user_key("bob")) == 1
    assert count(client, throttle.ip_key("192.0.2.7")) == 3
    assert count(client, throttle.ip_key("198.51.100.1")) == 1


@pytest.mark.redis
def test_a_counter_expires_with_its_window_from_the_first_failure(client: redis.Redis) -> None:
    throttle = make_throttle()
    run(client, throttle.failed("alice", "192.0.2.7"))
    for key in (throttle.user_key("alice"), throttle.ip_key("192.0.2.7")):
        assert key is not None
        first = client.pttl(key)
        assert 0 < first <= WINDOW * 1000
        run(client, throttle.failed("alice", "192.0.2.7"))
        assert client.pttl(key) <= first  # a later failure does not extend the window


@pytest.mark.redis
def test_at_the_user_limit_check_answers_the_windows_remainder(client: redis.Redis) -> None:
    throttle = make_throttle(users=3)
    fail(client, throttle, "alice", "192.0.2.7", 2)
    assert run(client, throttle.check("alice", "192.0.2.7")) is None
    fail(client, throttle, "alice", "192.0.2.7", 1)
    before = client.pttl(throttle.user_key("alice"))
    wait = run(client, throttle.check("alice", "192.0.2.7"))
    after = client.pttl(throttle.user_key("alice"))
    assert wait is not None and after <= wait * 1000 <= before <= WINDOW * 1000
    assert run(client, throttle.check("alice", "203.0.113.9")) is not None  # from anywhere
    assert run(client, throttle.check("bob", "192.0.2.7")) is None  # another name goes on


@pytest.mark.redis
def test_at_the_address_limit_every_name_from_it_waits(client: redis.Redis) -> None:
    throttle = make_throttle(users=100, ips=3)
    for name in ("a", "b", "c"):
        fail(client, throttle, name, "192.0.2.7", 1)
    ip_key = throttle.ip_key("192.0.2.7")
    assert ip_key is not None
    before = client.pttl(ip_key)
    wait = run(client, throttle.check("someone-else", "192.0.2.7"))
    assert wait is not None and wait * 1000 <= before
    assert run(client, throttle.check("someone-else", "192.0.2.8")) is None


@pytest.mark.redis
def test_a_success_resets_the_name_and_not_the_address(client: redis.Redis) -> None:
    throttle = make_throttle(users=3, ips=4)
    fail(client, throttle, "alice", "192.0.2.7", 3)
    assert run(client, throttle.check("alice", "192.0.2.8")) is not None
    run(client, throttle.succeeded("alice"))
    assert not client.exists(throttle.user_key("alice"))
    assert run(client, throttle.check("alice", "192.0.2.8")) is None
    assert count(client, throttle.ip_key("192.0.2.7")) == 3
    fail(client, throttle, "alice", "192.0.2.7", 1)
    assert run(client, throttle.check("alice", "192.0.2.7")) is not None  # the address's limit


@pytest.mark.redis
def test_an_ipv6_client_is_counted_by_its_64(client: redis.Redis) -> None:
    throttle = make_throttle(users=100, ips=2)
    fail(client, throttle, "a", "2001:db8:1:2::1", 1)
    fail(client, throttle, "b", "2001:DB8:1:2:a:b:c:d", 1)  # another address of the same host
    assert throttle.ip_key("2001:db8:1:2:ffff::1") == "ss:{ip:2001:db8:1:2::/64}:login_fail"
    assert run(client, throttle.check("c", "2001:db8:1:2:ffff::1")) is not None
    assert run(client, throttle.check("c", "2001:db8:1:3::1")) is None  # the next /64
    assert client_network("fe80::1%eth0") == "fe80::/64"  # a zone id is dropped


@pytest.mark.redis
def test_an_ipv4_mapped_client_is_counted_as_ipv4(client: redis.Redis) -> None:
    throttle = make_throttle(users=100, ips=2)
    fail(client, throttle, "a", "::ffff:192.0.2.7", 1)
    fail(client, throttle, "b", "192.0.2.7", 1)
    assert throttle.ip_key("::ffff:192.0.2.7") == "ss:{ip:192.0.2.7}:login_fail"
    assert run(client, throttle.check("c", "::ffff:c000:207")) is not None


@pytest.mark.redis
def test_no_client_address_means_no_address_counter(client: redis.Redis) -> None:
    throttle = make_throttle()
    for no_address in (None, "", "testclient", "/run/app.sock"):
        assert throttle.ip_key(no_address) is None
        run(client, throttle.failed("alice", no_address))
    assert client.keys("*") == [throttle.user_key("alice").encode()]
    assert count(client, throttle.user_key("alice")) == 4


@pytest.mark.redis
def test_names_user_tag_refuses_are_still_counted(client: redis.Redis) -> None:
    throttle = make_throttle(users=100, ips=5)
    garbage = ["", "\x00admin", "a" * 129, "\ud800", "tab\there"]
    for name in garbage:
        run(client, throttle.failed(name, "192.0.2.7"))
    tags = [login_tag(name) for name in garbage]
    assert len(set(tags)) == len(garbage)  # each its own counter ...
    assert all(t.startswith("~") and "}" not in t for t in tags)  # ... never a real user's
    assert all(count(client, throttle.user_key(name)) == 1 for name in garbage)
    assert count(client, throttle.ip_key("192.0.2.7")) == len(garbage)
    assert run(client, throttle.check("\x00other", "192.0.2.7")) is not None  # by the address


@pytest.mark.redis
def test_each_counter_lives_in_its_own_slot_one_call_each(client: redis.Redis) -> None:
    throttle = make_throttle()
    user_key, ip_key = throttle.user_key("alice"), throttle.ip_key("192.0.2.7")
    assert user_key == f"ss:{{u:{user_tag('alice')}}}:login_fail"
    assert ip_key == "ss:{ip:192.0.2.7}:login_fail"
    assert key_slot(user_key.encode()) == key_slot(SessionKeys("ss").index("alice").encode())
    assert key_slot(ip_key.encode()) == key_slot(b"ip:192.0.2.7")
    for op in (throttle.check("alice", "192.0.2.7"), throttle.failed("alice", "192.0.2.7")):
        calls = list(_calls(op))
        assert [c.keys for c in calls] == [[user_key], [ip_key]]
    assert [c.keys for c in _calls(throttle.succeeded("alice"))] == [[user_key]]


def _calls(op: Op[Any]) -> Iterator[Any]:
    """The calls of ``op``, each answered as an empty counter."""
    try:
        call = op.send(None)
        while True:
            yield call
            call = op.send([0, 0])
    except StopIteration:
        return


@pytest.mark.redis
def test_a_counter_without_an_expiry_gets_the_window_when_read(client: redis.Redis) -> None:
    throttle = make_throttle(users=3)
    client.set(throttle.user_key("alice"), "7")  # not written by the scripts
    wait = run(client, throttle.check("alice", None))
    assert wait is not None and wait <= WINDOW
    assert 0 < client.pttl(throttle.user_key("alice")) <= WINDOW * 1000


@pytest.mark.redis
def test_a_key_that_is_not_a_counter_is_an_error_that_writes_nothing(client: redis.Redis) -> None:
    throttle = make_throttle()
    client.hset(throttle.user_key("alice"), "x", "1")
    with pytest.raises(StoreUnavailable):
        run(client, throttle.failed("alice", None))
    client.delete(throttle.user_key("alice"))
    client.set(throttle.user_key("alice"), "many")
    with pytest.raises(StoreUnavailable):
        run(client, throttle.check("alice", None))
    assert client.get(throttle.user_key("alice")) == b"many"
    assert client.pttl(throttle.user_key("alice")) == -1


@pytest.mark.redis
def test_the_same_ops_run_on_asyncio(redis_url: str) -> None:
    throttle = make_throttle(users=2)

    async def scenario() -> list[float | None]:
        aclient = redis.asyncio.Redis.from_url(redis_url)
        try:
            seen = [await arun(aclient, throttle.check("alice", "2001:db8::1"))]
            for _ in range(2):
                await arun(aclient, throttle.failed("alice", "2001:db8::1"))
            seen.append(await arun(aclient, throttle.check("alice", "2001:db8::1")))
            await arun(aclient, throttle.succeeded("alice"))
            seen.append(await arun(aclient, throttle.check("alice", "2001:db8::1")))
            return seen
        finally:
            await aclient.aclose()

    first, locked, reset = asyncio.run(scenario())
    assert first is None and locked is not None and 0 < locked <= WINDOW and reset is None


def test_throttled_is_a_429_with_whole_seconds_to_wait() -> None:
    response = throttled(12.3).response()
    assert response.status == 429
    assert response.get("retry-after") == ["13"]
    assert response.body["error"] == "too_many_attempts"
    assert throttled(0.0).response().get("retry-after") == ["1"]  # never "0": retry now
