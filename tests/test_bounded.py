"""``BoundedConnection`` against a real Redis, RESP2 and RESP3: the same replies as
``HotConnection`` (hiredis) on normal traffic, bounded replies for a 50 MB field or 100,000
fields, exact reply boundaries in ``many()``, disconnect on failures, and peak memory measured
in a subprocess."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hiredis
import pytest
import redis
from redis.exceptions import NoPermissionError, NoScriptError, ResponseError

from sessionsvc._redis import bounded
from sessionsvc._redis.bounded import BoundedConnection, Oversized, Truncated, resp_digest
from sessionsvc._redis.hotconn import HotConnection
from sessionsvc.embedded import RedisProcess

pytestmark = pytest.mark.redis

BIG = bytes(range(256)) * 204_800  # 50 MiB, not one repeated byte
BIG_SHA = hashlib.sha256(BIG).hexdigest()


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def client(request: pytest.FixtureRequest, redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url, protocol=request.param)
    yield c
    c.close()


@pytest.fixture
def admin(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


@pytest.fixture
def bc(client: redis.Redis) -> Iterator[BoundedConnection]:
    b = BoundedConnection(client)
    yield b
    b.close()


@pytest.fixture
def hot(client: redis.Redis) -> Iterator[HotConnection]:
    h = HotConnection(client)
    yield h
    h.close()


def norm(value: Any) -> Any:
    """Comparable form: exceptions as (class, args), pushes as lists, types kept."""
    if isinstance(value, BaseException):
        return ("exception", type(value), value.args)
    if isinstance(value, dict):
        return ("dict", [(norm(k), norm(v)) for k, v in value.items()])
    if isinstance(value, list):
        return [norm(v) for v in value]
    return (type(value), value)


def call(conn: Any, *args: Any) -> Any:
    try:
        return conn(*args)
    except ResponseError as exc:
        return exc


def fill(admin: redis.Redis) -> list[tuple[Any, ...]]:
    """Streams, a group, scripts, hashes… and commands whose replies are compared (each gives
    the same reply when repeated)."""
    for i in range(5):
        admin.xadd("s", {"type": "token.revoke", "jti": f"j{i}", "n": str(i)})
    admin.xgroup_create("s", "g", id="0")
    admin.xreadgroup("g", "c", {"s": ">"}, count=3)
    admin.xadd("empty", {"k": "v"})
    admin.xgroup_create("empty", "g", id="$")
    admin.hset("h", mapping={"a": "1", "b": "2"})
    admin.sadd("set", "x", "y")
    admin.zadd("z", {"m1": 1.5, "m2": 2})
    admin.set("fl", "1.5")
    nested = (
        "return {1, {2, {'x', false}}, 'y', redis.status_reply('OK'), redis.error_reply('ERR in')}"
    )
    return [
        ("XRANGE", "s", "-", "+"),
        ("XREVRANGE", "s", "+", "-", "COUNT", "2"),
        ("XREADGROUP", "GROUP", "g", "c", "COUNT", "10", "STREAMS", "s", "0"),
        ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "empty", ">"),  # a null reply
        ("XREAD", "COUNT", "10", "STREAMS", "s", "empty", "0", "0"),
        ("XAUTOCLAIM", "s", "g", "c2", "0", "0-0", "COUNT", "10"),
        ("XPENDING", "s", "g"),
        ("XINFO", "STREAM", "s"),
        ("XINFO", "STREAM", "s", "FULL"),
        ("XINFO", "GROUPS", "s"),
        ("XACK", "s", "g", "0-1"),
        ("EVAL", nested, "0"),
        ("EVAL", "redis.setresp(3); return redis.call('HGETALL', KEYS[1])", "1", "h"),
        ("EVAL", "return redis.call('XRANGE', KEYS[1], '-', '+')", "1", "s"),
        ("EVALSHA", "0" * 40, "0"),
        ("HGETALL", "h"),
        ("SMEMBERS", "set"),
        ("ZRANGE", "z", "0", "-1", "WITHSCORES"),
        ("GET", "missing"),
        ("LPUSH", "s", "x"),  # WRONGTYPE
        ("XADD", "s", "bad-id", "f", "v"),
        ("INCRBYFLOAT", "fl", "0"),
        ("PING",),
    ]


def test_normal_replies_equal_hiredis_through_both_paths(
    admin: redis.Redis, hot: HotConnection, bc: BoundedConnection
) -> None:
    for command in fill(admin):
        expected = norm(call(hot, *command))
        assert norm(call(bc, *command)) == expected, command  # hiredis path
        first, pong = bc.many(command, ("PING",))  # ReplyParser path
        assert norm(first) == expected, command
        assert pong == b"PONG"


def test_error_replies_get_the_classes_hotconnection_gets(
    redis_url: str, admin: redis.Redis, client: redis.Redis
) -> None:
    admin.execute_command("ACL", "SETUSER", "bc-limited", "on", ">pw", "~*", "+@all", "-xadd")
    admin.set("str", "v")
    limited = redis.Redis.from_url(
        redis_url.replace("redis://", "redis://bc-limited:pw@"),
        protocol=client.get_connection_kwargs().get("protocol", 2),
    )
    try:
        for conn in (BoundedConnection(limited), HotConnection(limited)):
            with pytest.raises(NoScriptError):
                conn("EVALSHA", "0" * 40, "0")
            with pytest.raises(NoPermissionError):
                conn("XADD", "s", "*", "f", "v")
            with pytest.raises(ResponseError) as wrong:
                conn("XLEN", "str")
            assert type(wrong.value) is ResponseError and "WRONGTYPE" in str(wrong.value)
            noscript, ok = conn.many(("EVALSHA", "0" * 40, "0"), ("PING",))
            assert isinstance(noscript, NoScriptError) and ok == b"PONG"
            conn.close()
    finally:
        limited.close()
        admin.execute_command("ACL", "DELUSER", "bc-limited")


def test_the_handshake_is_redis_pys_acl_user_client_name_resp3(
    redis_url: str, admin: redis.Redis
) -> None:
    admin.execute_command("ACL", "SETUSER", "bc-user", "on", ">secret", "~*", "+@all")
    client = redis.Redis.from_url(
        redis_url.replace("redis://", "redis://bc-user:secret@"),
        protocol=3,
        client_name="bounded-test",
        decode_responses=True,  # ignored: bytes out
    )
    conn = BoundedConnection(client)
    try:
        assert conn("ACL", "WHOAMI") == b"bc-user"
        assert conn("CLIENT", "GETNAME") == b"bounded-test"
        assert b"resp=3" in conn("CLIENT", "INFO")
    finally:
        conn.close()
        client.close()
        admin.execute_command("ACL", "DELUSER", "bc-user")


def test_the_redis_py_internals_used_are_there(client: redis.Redis) -> None:
    conn = client.connection_pool.get_connection()
    try:
        conn.send_command("PING")
        assert isinstance(bounded._socket(conn), socket.socket)
        make = bounded._error_factory(conn)
        assert type(make("NOSCRIPT No matching script")) is NoScriptError
        assert type(make("NOPERM no")) is NoPermissionError
        assert conn.read_response() in (b"PONG", "PONG")
        conn.disconnect()
        with pytest.raises(redis.ConnectionError):
            bounded._socket(conn)
    finally:
        client.connection_pool.release(conn)


def big_stream(admin: redis.Redis, key: str = "big") -> tuple[bytes, list[bytes], bytes]:
    """Entries small, big (a 50 MB field), small; returns the ids and the big entry's fields."""
    first = admin.xadd(key, {"type": "token.revoke", "jti": "before"})
    fields = [b"type", b"token.revoke", b"jti", b"x", b"blob", BIG, b"after", b"tail"]
    big_id = admin.execute_command("XADD", key, "*", *fields)
    last = admin.xadd(key, {"type": "token.revoke", "jti": "after"})
    assert isinstance(first, bytes) and isinstance(big_id, bytes) and isinstance(last, bytes)
    return big_id, fields, last


def check_big_entries(entries: list[Any], big_id: bytes, fields: list[bytes]) -> None:
    (_, small1), (id2, big), (_, small2) = entries
    assert small1 == [b"type", b"token.revoke", b"jti", b"before"]
    assert small2 == [b"type", b"token.revoke", b"jti", b"after"] and id2 == big_id
    assert isinstance(big, Truncated)
    assert (big.count, big.size) == (8, sum(map(len, fields)))
    assert big.sha256 == resp_digest(fields)
    assert big[:5] == fields[:5]
    blob = big[5]
    assert isinstance(blob, Oversized)
    assert (blob.length, blob.sha256, bytes(blob)) == (len(BIG), BIG_SHA, BIG[:4096])
    assert big[6:] == [b"after", b"tail"]  # 4 + 12 + 3 + 1 + 4 + 4096 + 5 + 4 bytes ≤ 8192


def test_a_50_mb_field_comes_back_oversized(
    admin: redis.Redis, client: redis.Redis, bc: BoundedConnection
) -> None:
    big_id, fields, _ = big_stream(admin)
    admin.xgroup_create("big", "g", id="0")
    check_big_entries(bc("XRANGE", "big", "-", "+"), big_id, fields)
    reply = bc("XREADGROUP", "GROUP", "g", "c", "COUNT", "10", "STREAMS", "big", ">")
    ((stream, entries),) = reply.items() if isinstance(reply, dict) else reply
    assert stream == b"big"
    check_big_entries(entries, big_id, fields)
    assert bc("XLEN", "big") == 3  # in step
    # through many(): before the last reply (ReplyParser only) and as the last one
    ack, claimed, pong = bc.many(
        ("XACK", "big", "g", "0-1"), ("XAUTOCLAIM", "big", "g", "c2", "0", "0-0"), ("PING",)
    )
    assert ack == 0 and pong == b"PONG"
    check_big_entries(claimed[1], big_id, fields)
    ack, reread = bc.many(
        ("XACK", "big", "g", "0-1"),
        ("XREADGROUP", "GROUP", "g", "c2", "COUNT", "10", "STREAMS", "big", "0"),
    )
    assert ack == 0
    ((_, entries),) = reread.items() if isinstance(reread, dict) else reread
    check_big_entries(entries, big_id, fields)
    assert bc("ECHO", "next") == b"next"


def test_100_000_small_fields_come_back_truncated(
    admin: redis.Redis, bc: BoundedConnection
) -> None:
    fields = [b"field-%06d" % (i // 2) if i % 2 == 0 else b"v%d" % i for i in range(200_000)]
    admin.execute_command("XADD", "wide", "*", *fields)
    admin.xadd("wide", {"k": "v"})
    (_, wide), (_, small) = bc("XRANGE", "wide", "-", "+")
    assert isinstance(wide, Truncated) and small == [b"k", b"v"]
    assert len(wide) <= 64 and wide == fields[: len(wide)]
    assert (wide.count, wide.size) == (200_000, sum(map(len, fields)))
    assert wide.sha256 == resp_digest(fields)
    assert bc("PING") == b"PONG"


def test_many_small_replies_and_an_error_in_the_middle(
    admin: redis.Redis, hot: HotConnection, bc: BoundedConnection
) -> None:
    for i in range(3):
        admin.xadd("m", {"n": str(i)})
    admin.xgroup_create("m", "g", id="0")
    read = ("XREADGROUP", "GROUP", "g", "c", "COUNT", "10", "STREAMS", "m", "0")
    hot(*read[:-1], ">")
    ack, entries = bc.many(("XACK", "m", "g", "0-1"), read)
    assert ack == 0 and norm(entries) == norm(hot(*read))
    first, bad, length = bc.many(
        ("XADD", "m", "*", "k", "v"), ("XADD", "m", "bad-id", "k", "v"), ("XLEN", "m")
    )
    assert isinstance(first, bytes) and type(bad) is ResponseError and length == 4
    assert bc.many() == []
    assert bc("PING") == b"PONG"


def test_a_killed_connection_raises_once_then_reconnects(
    admin: redis.Redis, bc: BoundedConnection
) -> None:
    admin.client_kill_filter(_id=bc("CLIENT", "ID"))
    with pytest.raises(redis.ConnectionError):
        bc("PING")
    assert bc("PING") == b"PONG"


def test_a_socket_timeout_raises_redis_timeout_and_disconnects(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, socket_timeout=0.2)
    conn = BoundedConnection(client)
    try:
        with pytest.raises(redis.TimeoutError):
            conn("BLPOP", "nothing", "2")
        assert conn("ECHO", "fresh") == b"fresh"  # not the BLPOP's late reply
    finally:
        conn.close()
        client.close()


@pytest.mark.parametrize("after", [1, 20])
def test_an_interrupt_in_a_read_leaves_no_stale_reply(
    monkeypatch: pytest.MonkeyPatch, admin: redis.Redis, bc: BoundedConnection, after: int
) -> None:
    big_stream(admin)
    calls = 0
    real_recv = bounded._recv

    def interrupted(sock: socket.socket, chunk: bytearray) -> int:
        nonlocal calls
        calls += 1
        if calls == after:
            raise KeyboardInterrupt
        return real_recv(sock, chunk)

    bc("PING")
    monkeypatch.setattr(bounded, "_recv", interrupted)
    with pytest.raises(KeyboardInterrupt):
        bc("XRANGE", "big", "-", "+")  # interrupted in hiredis's part, or in ReplyParser's
    monkeypatch.setattr(bounded, "_recv", real_recv)
    assert bc("ECHO", "fresh") == b"fresh"


def test_close_returns_the_connection_to_the_pool(client: redis.Redis) -> None:
    conn = BoundedConnection(client)
    conn("PING")
    assert len(client.connection_pool._in_use_connections) == 1
    conn.close()
    conn.close()
    assert len(client.connection_pool._in_use_connections) == 0


def test_close_disconnects_a_connection_holding_unread_bytes(client: redis.Redis) -> None:
    conn = BoundedConnection(client)
    conn("PING")
    redis_conn = conn._conn
    conn._pending = b">1\r\n"  # e.g. the start of a push read past the last reply
    conn.close()
    assert redis_conn._sock is None  # redis-py never sees a stream it cannot parse
    assert redis.Redis(connection_pool=client.connection_pool).ping()


@pytest.fixture(scope="module")
def debug_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    with RedisProcess(
        tmp_path_factory.mktemp("debug"), extra_args=["--enable-debug-command", "yes"]
    ) as server:
        server.start()
        yield server


def test_every_resp3_type_a_real_server_sends(debug_server: RedisProcess) -> None:
    client = redis.Redis.from_url(debug_server.url, protocol=3)
    conn, hot = BoundedConnection(client), HotConnection(client)
    try:
        for kind in ("string", "integer", "double", "bignum", "null", "array", "set", "map"):
            expected = norm(hot("DEBUG", "PROTOCOL", kind))
            assert norm(conn("DEBUG", "PROTOCOL", kind)) == expected
            assert norm(conn.many(("DEBUG", "PROTOCOL", kind), ("PING",))[0]) == expected
        for kind in ("verbatim", "true", "false"):
            assert norm(conn("DEBUG", "PROTOCOL", kind)) == norm(hot("DEBUG", "PROTOCOL", kind))
        # hiredis returns an attribute as a reply of its own; the leftover bytes send the reply
        # through ReplyParser, which skips it; a push before the reply is skipped
        assert conn("DEBUG", "PROTOCOL", "attrib") == b"Some real reply following the attribute"
        assert conn("DEBUG", "PROTOCOL", "push") == b"Some real reply following the push reply"
        assert conn.many(("DEBUG", "PROTOCOL", "attrib"), ("DEBUG", "PROTOCOL", "push")) == [
            b"Some real reply following the attribute",
            b"Some real reply following the push reply",
        ]
        assert conn("PING") == b"PONG"
    finally:
        conn.close()
        hot.close()
        client.close()


def wire(conn: BoundedConnection, data: bytes) -> tuple[Any, bytes]:
    """``_read_last`` over a socket pair carrying ``data``: the reply and the bytes kept."""
    a, b = socket.socketpair()
    with a, b:
        b.sendall(data)
        conn._reader = conn._hiredis()
        return conn._read_last(a), conn._pending


def test_bytes_past_a_reply_are_kept_for_the_next_read() -> None:
    conn = BoundedConnection(redis.Redis(), fast_limit=100)
    push = b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n"
    assert wire(conn, b"+OK\r\n" + push) == (b"OK", push)
    conn._pending = b"+OK\r\n" + push + b"$3\r\nab"
    a, b = socket.socketpair()
    with a, b:
        b.sendall(b"c\r\n")
        assert conn._read_last(a) == b"OK"
        assert conn._pending == push + b"$3\r\nab"
        assert conn._read_last(a) == b"abc" and conn._pending == b""


def test_a_reply_over_fast_limit_goes_through_the_bounded_parser() -> None:
    conn = BoundedConnection(redis.Redis(), max_bulk=10, fast_limit=100)
    small = b"*1\r\n$50\r\n" + b"x" * 50 + b"\r\n"
    reply, _ = wire(conn, small)
    assert reply == [b"x" * 50] and not isinstance(reply, Truncated)  # hiredis's
    reply, pending = wire(conn, b"*1\r\n$500\r\n" + b"x" * 500 + b"\r\n" + b"+NEXT\r\n")
    assert isinstance(reply, Truncated) and reply[0].length == 500 and pending == b"+NEXT\r\n"


MEMORY_SCRIPT = """
import json, re, resource, sys
import redis
from sessionsvc._redis.bounded import BoundedConnection
from sessionsvc._redis.hotconn import HotConnection

def peaks():
    status = open("/proc/self/status").read()
    hwm = int(re.search(r"VmHWM:\\s+(\\d+)", status).group(1)) if "VmHWM" in status else 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, hwm

kind, url = sys.argv[1], sys.argv[2]
client = redis.Redis.from_url(url)
conn = BoundedConnection(client) if kind == "bounded" else HotConnection(client)
conn("PING")
before = peaks()
reply = conn("XRANGE", "big", "-", "+")
after = peaks()
length = getattr(reply[1][1][5], "length", len(reply[1][1][5]))
print(json.dumps({"before": before, "after": after, "length": length}))
"""
# Linux keeps ru_maxrss across execve: a child of this (large) test process starts with the
# test process's peak. A grandchild, forked from a fresh small interpreter, starts clean.
RELAY = (
    "import subprocess, sys; print(subprocess.run([sys.executable, '-c', *sys.argv[1:]],"
    " check=True, capture_output=True, text=True).stdout, end='')"
)


def peak_growth_mb(kind: str, url: str) -> tuple[float, float]:
    """(ru_maxrss growth, VmHWM growth) in MB while one reply holding BIG is read."""
    out = subprocess.run(
        [sys.executable, "-c", RELAY, MEMORY_SCRIPT, kind, url],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    report = json.loads(out.stdout)
    assert report["length"] == len(BIG)
    (rss0, hwm0), (rss1, hwm1) = report["before"], report["after"]
    return (rss1 - rss0) / 1024, (hwm1 - hwm0) / 1024


def test_peak_memory_reading_a_50_mb_entry(redis_url: str, admin: redis.Redis) -> None:
    big_stream(admin)
    bounded_mb, bounded_hwm = peak_growth_mb("bounded", redis_url)
    plain_mb, plain_hwm = peak_growth_mb("hot", redis_url)
    print(
        f"peak RSS growth (ru_maxrss / VmHWM): BoundedConnection {bounded_mb:.1f} / "
        f"{bounded_hwm:.1f} MB, HotConnection {plain_mb:.1f} / {plain_hwm:.1f} MB"
    )
    assert bounded_mb < 20 and bounded_hwm < 20
    assert plain_mb > 50  # redis-py + hiredis hold the whole value (and more)


def test_hiredis_push_type_exists() -> None:
    assert issubclass(hiredis.PushNotification, list)
