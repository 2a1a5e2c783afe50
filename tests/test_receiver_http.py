"""ReceiverServer: the IdP listener on a real socket (127.0.0.1:0), slow and oversized clients,
and 1,000 concurrent pushes."""

from __future__ import annotations

import asyncio
import http.client
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from workers.receiver import ReceiverCore
from workers.receiver_http import MAX_HEAD, ReceiverServer

TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lkcCJ9.c2lnbmF0dXJl"


class Intake:
    """A thread-safe fake intake that records every token it is handed."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay, self.tokens, self.lock = delay, Counter[str](), threading.Lock()

    def backchannel_logout(self, logout_token: str) -> None:
        self.security_event(logout_token, None)

    def security_event(self, set_token: str, authorization: str | None) -> None:
        time.sleep(self.delay)
        with self.lock:
            self.tokens[set_token] += 1


def serve(intake: Intake, **kw: Any) -> ReceiverServer:
    return ReceiverServer(ReceiverCore(intake, max_body=1024), "127.0.0.1", 0, **kw).start()


@pytest.fixture
def intake() -> Intake:
    return Intake()


@pytest.fixture
def server(intake: Intake) -> Iterator[ReceiverServer]:
    receiver = serve(intake, read_timeout=1.0)
    yield receiver
    receiver.close()


def request(body: str, path: str = "/ssf/events", ctype: str = "application/secevent+jwt") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\n"
    return f"{head}Content-Length: {len(body)}\r\n\r\n{body}".encode()


def exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send ``data``, read the answer until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        return read_all(sock)


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer else 0


def test_a_push_round_trip(server: ReceiverServer, intake: Intake) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    headers = {"Content-Type": "application/secevent+jwt", "Authorization": "Bearer x"}
    conn.request("POST", "/ssf/events", TOKEN, headers)
    response = conn.getresponse()
    assert (response.status, response.read()) == (202, b"")
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Connection"] == "close"
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("POST", "/backchannel-logout", f"logout_token={TOKEN}x", form)
    assert conn.getresponse().status == 200
    assert intake.tokens == Counter({TOKEN: 1, f"{TOKEN}x": 1})


def test_a_slowloris_connection_is_cut_while_others_are_served(server: ReceiverServer) -> None:
    slow = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    started = time.monotonic()
    slow.sendall(b"POST /ssf/events HTTP/1.1\r\n")
    for i in range(4):  # a byte now and then: never a complete head
        slow.sendall(f"X-{i}: 1\r\n".encode())
        assert status(exchange(server.port, request(TOKEN))) == 202
        time.sleep(0.1)
    assert read_all(slow) == b""  # cut without an answer
    assert 0.9 < time.monotonic() - started < 3.0  # read_timeout is 1 s
    slow.close()


def test_an_oversized_body_is_413_without_being_read(
    server: ReceiverServer, intake: Intake
) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST /ssf/events HTTP/1.1\r\nContent-Type: application/secevent+jwt\r\n")
        sock.sendall(b"Content-Length: 50000000\r\n\r\n" + b"a" * 4096)  # 4 KiB of 50 MB
        answer = read_all(sock)
    assert status(answer) == 413 and b'"err": "invalid_request"' in answer
    assert not intake.tokens


def test_a_chunked_body_is_411(server: ReceiverServer) -> None:
    head = b"POST /ssf/events HTTP/1.1\r\nContent-Type: application/secevent+jwt\r\n"
    answer = exchange(
        server.port, head + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    )
    assert status(answer) == 411


def test_a_head_over_8_kib_is_431(server: ReceiverServer) -> None:
    head = b"POST /ssf/events HTTP/1.1\r\nX-Big: " + b"a" * MAX_HEAD + b"\r\n\r\n"
    assert status(exchange(server.port, head)) == 431


def test_garbage_is_400(server: ReceiverServer) -> None:
    assert status(exchange(server.port, b"HELLO\r\n\r\n")) == 400
    assert status(exchange(server.port, b"POST / HTTP/1.1\r\nbad header\r\n\r\n")) == 400


def test_an_intake_failing_unexpectedly_is_500_and_the_server_goes_on(
    server: ReceiverServer, intake: Intake
) -> None:
    def broken(set_token: str, authorization: str | None) -> None:
        raise RuntimeError(set_token)

    intake.security_event = broken  # type: ignore[method-assign]
    answer = exchange(server.port, request(TOKEN))
    assert status(answer) == 500 and TOKEN.encode() not in answer
    del intake.security_event
    assert status(exchange(server.port, request(TOKEN))) == 202


def test_a_server_closed_without_starting_releases_its_port(intake: Intake) -> None:
    receiver = ReceiverServer(ReceiverCore(intake), "127.0.0.1", 0)
    receiver.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", receiver.port), timeout=1)


def test_connections_beyond_the_limit_are_answered_503(intake: Intake) -> None:
    receiver = serve(intake, max_connections=2, read_timeout=2.0)
    try:
        held = [socket.create_connection(("127.0.0.1", receiver.port)) for _ in range(2)]
        time.sleep(0.2)  # both accepted, both waiting for a head
        answer = exchange(receiver.port, request(TOKEN))
        assert status(answer) == 503 and b"Retry-After: 5" in answer
        assert not intake.tokens
        for sock in held:
            sock.close()
    finally:
        receiver.close()


async def push(port: int, token: str) -> tuple[str, int]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request(token))
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=15)
        return token, status(answer)
    finally:
        writer.close()


@pytest.mark.faults
def test_1000_concurrent_pushes_are_all_answered_and_each_202_handed_over_once() -> None:
    intake = Intake(delay=0.002)  # a Redis round trip
    receiver = serve(intake, workers=16, max_connections=200)
    try:
        tokens = [f"{TOKEN}x{i}" for i in range(1000)]

        async def flood() -> list[tuple[str, int]]:
            return await asyncio.gather(*(push(receiver.port, t) for t in tokens))

        started = time.monotonic()
        answers = asyncio.run(flood())
        elapsed = time.monotonic() - started
        counts = Counter(code for _, code in answers)
        print(f"1000 pushes in {elapsed:.2f} s: {dict(counts)}")
        assert set(counts) <= {202, 503} and sum(counts.values()) == 1000  # every one answered
        accepted = {t for t, code in answers if code == 202}
        assert accepted and all(intake.tokens[t] == 1 for t in accepted)
        assert set(intake.tokens) == accepted  # a 503 was never handed over
        deadline = time.monotonic() + 5
        while receiver.connections and time.monotonic() < deadline:
            time.sleep(0.05)
        assert receiver.connections == 0  # none left hanging
        assert status(exchange(receiver.port, request(TOKEN))) == 202  # still answering
    finally:
        receiver.close()
