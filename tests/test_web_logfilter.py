"""The access-log filter (``sessionsvc.integrations.web.logfilter``): each server's record
shape (uvicorn, gunicorn, werkzeug, anything else), a JWT under an innocent name or in a path,
no false positives on ordinary parameters, an idempotent ``install``; a formatted record shows
no token. uvicorn is also run for real, its logging configured as it configures it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest
import uvicorn
from uvicorn.logging import AccessFormatter

from sessionsvc.embedded import free_port
from sessionsvc.integrations.web.logfilter import (
    REDACTED,
    SENSITIVE_PARAMS,
    TokenQueryFilter,
    install,
    redact,
)

JWT = "eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz"
OPAQUE = "Zm9yZ2V0LW1lLW5vdA"  # a token that is no JWT: only its name gives it away


def record(msg: str, args: Any, name: str = "test") -> logging.LogRecord:
    """A record as ``logger.info(msg, *args)`` makes it (a lone mapping becomes the args)."""
    return logging.getLogger(name).makeRecord(name, logging.INFO, __file__, 1, msg, args, None)


def scrubbed(rec: logging.LogRecord) -> str:
    assert TokenQueryFilter().filter(rec) is True  # never dropped
    return logging.Formatter().format(rec)


def test_a_uvicorn_access_record_keeps_its_shape_and_loses_its_token() -> None:
    path = f"/cb?state=s1&access_token={OPAQUE}&page=2"
    rec = record('%s - "%s %s HTTP/%s" %d', ("192.0.2.7:5123", "GET", path, "1.1", 200))
    text = scrubbed(rec)
    assert OPAQUE not in text
    line = f"GET /cb?state=s1&access_token={REDACTED}&page=2 HTTP/1.1"
    assert text == f'192.0.2.7:5123 - "{line}" 200'
    formatter = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', None)
    assert OPAQUE not in formatter.format(rec)  # uvicorn's own formatter reads the same tuple


def test_a_gunicorn_access_record_keeps_its_atoms_and_loses_its_tokens() -> None:
    class SafeAtoms(dict[str, Any]):  # as gunicorn's: a missing atom is "-"
        def __getitem__(self, key: str) -> Any:
            return super().__getitem__(key) if key in self else "-"

    atoms = SafeAtoms(
        h="192.0.2.7",
        r=f"GET /cb?code={OPAQUE}&state=s1 HTTP/1.1",
        U="/cb",
        q=f"code={OPAQUE}&state=s1",
        s="302",
        f=f"https://idp.example/authorize?id_token={OPAQUE}",
        a="Mozilla/5.0",
        **{"{query_string}e": f"code={OPAQUE}&state=s1"},
    )
    fmt = '%(h)s %(l)s "%(r)s" %(s)s "%(f)s" "%(a)s" %(U)s?%(q)s %({query_string}e)s'
    rec = record(fmt, (atoms,))
    assert rec.args is atoms
    text = scrubbed(rec)
    assert OPAQUE not in text
    assert rec.args is atoms and atoms["l"] == "-"  # the same mapping, rewritten in place
    assert atoms["q"] == f"code={REDACTED}&state=s1" and atoms["U"] == "/cb"
    assert text.startswith(f'192.0.2.7 - "GET /cb?code={REDACTED}&state=s1 HTTP/1.1" 302 "')


def test_a_werkzeug_record_loses_the_token_of_its_request_line() -> None:
    line = f"\x1b[1mGET /reset?token={OPAQUE}&lang=en HTTP/1.1\x1b[0m"  # styled on a terminal
    rec = record('127.0.0.1 - - [01/Dec/2026 15:28:35] "%s" %s %s', (line, "200", "-"))
    text = scrubbed(rec)
    assert OPAQUE not in text
    assert f"GET /reset?token={REDACTED}&lang=en HTTP/1.1" in text and text.endswith(" 200 -")


def test_anything_else_is_scrubbed_in_its_message_and_every_string_argument() -> None:
    rec = record(
        f"proxy saw /cb?jwt={OPAQUE} and %s, %d, %s",
        (f"/x?CSRF_Token={OPAQUE}", 3, f"https://a.example/?refresh_token={OPAQUE}"),
    )
    assert OPAQUE not in scrubbed(rec)


def test_a_jwt_under_an_innocent_name_or_in_a_path_is_redacted() -> None:
    for url in (f"/cb?next={JWT}&x=1", f"/verify/{JWT}/ok", f"/a?auth=Bearer%20{JWT}"):
        assert JWT not in redact(url) and REDACTED in redact(url)
        assert "eyJ" not in scrubbed(record('"%s"', (url,)))


def test_names_match_in_any_case_and_percent_encoded_and_in_a_nested_query() -> None:
    assert redact(f"/?Access_Token={OPAQUE}") == f"/?Access_Token={REDACTED}"
    assert redact(f"/?id%5Ftoken={OPAQUE}&a=1") == f"/?id%5Ftoken={REDACTED}&a=1"
    nested = f"/login?next=%2Fcb%3Fcode%3D{OPAQUE}%26a%3D1&b=2"
    assert redact(nested) == f"/login?next=%2Fcb%3Fcode%3D{REDACTED}%26a%3D1&b=2"
    assert all(redact(f"/?{n}={OPAQUE}") == f"/?{n}={REDACTED}" for n in SENSITIVE_PARAMS)


def test_ordinary_parameters_are_left_alone() -> None:
    for url in (
        "/search?q=token&page=2&sort=code_desc&codec=h264&tokens=5&heyJoe=a.b.c",
        "/search?q=what%3F&next=%2Fhome&token=&ids=1,2;3",
        "/files/report.v2.final.pdf?download=1",
        "GET / HTTP/1.1",
    ):
        assert redact(url) == url
        rec = record('"%s"', (url,))
        assert scrubbed(rec) == f'"{url}"'


def test_a_record_that_cannot_be_checked_is_kept_without_its_text() -> None:
    class Broken(dict[str, Any]):
        def items(self) -> Any:
            raise RuntimeError("no")

    rec = record(f"%(r)s /?token={OPAQUE}", (Broken(r="x"),))
    text = scrubbed(rec)
    assert OPAQUE not in text and "could not be checked" in text


@pytest.fixture
def loggers() -> Iterator[list[logging.Logger]]:
    """The loggers ``install`` touches, without filters before and after."""
    names = ("uvicorn.access", "gunicorn.access", "werkzeug", "hypercorn.access")
    found = [logging.getLogger(n) for n in names]
    saved = [list(lg.filters) for lg in found]
    for lg in found:
        lg.filters = [f for f in lg.filters if not isinstance(f, TokenQueryFilter)]
    yield found
    for lg, filters in zip(found, saved, strict=True):
        lg.filters = filters


def test_install_adds_one_filter_per_logger_however_often_it_runs(
    loggers: list[logging.Logger],
) -> None:
    install()
    install()
    install(["hypercorn.access", "uvicorn.access"])
    counts = [sum(isinstance(f, TokenQueryFilter) for f in lg.filters) for lg in loggers]
    assert counts == [1, 1, 1, 1]


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(logging.Formatter().format(record))


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 400, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def test_a_real_uvicorn_logs_no_token_once_installed(loggers: list[logging.Logger]) -> None:
    """``install`` before uvicorn configures its logging (``dictConfig``): the filter stays."""
    install()
    port = free_port()
    config = uvicorn.Config(_app, host="127.0.0.1", port=port, lifespan="off", ws="none")
    captured = Captured()
    logging.getLogger("uvicorn.access").addHandler(captured)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.started
        url = f"http://127.0.0.1:{port}/api?access_token={OPAQUE}&next={JWT}&page=1"
        assert httpx.get(url).status_code == 400
        deadline = time.monotonic() + 5
        while not captured.lines and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        server.should_exit = True
        thread.join(10)
        logging.getLogger("uvicorn.access").removeHandler(captured)
    [line] = captured.lines
    assert OPAQUE not in line and JWT not in line
    assert f"/api?access_token={REDACTED}&next={REDACTED}&page=1" in line
