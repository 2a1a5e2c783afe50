"""The browser tier's own plumbing (tests/browser_harness.py): the live server starts, serves,
stops and leaves no thread behind; a failed startup is an error; asyncio works beside Playwright.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import httpx2 as httpx
import pytest
from browser_harness import LiveServer, run_in_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"hello {request.url.hostname}")


APP = Starlette(routes=[Route("/", hello)])


def test_live_server_serves_both_origins_and_stops_cleanly() -> None:
    before = set(threading.enumerate())
    with LiveServer(APP) as server:
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert server.cross_site_url == f"http://localhost:{server.port}"
        with httpx.Client() as client:
            assert client.get(server.url).text == "hello 127.0.0.1"
            assert client.get(server.cross_site_url).text == "hello localhost"
        assert set(threading.enumerate()) - before  # the server thread
    assert set(threading.enumerate()) == before
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url)


def test_live_server_fixture_gives_one_port_per_app(live_server: Callable[..., Any]) -> None:
    first, second = live_server(APP), live_server(APP)
    assert first.port != second.port
    assert httpx.get(second.url).text == "hello 127.0.0.1"


def test_a_failed_startup_is_an_error() -> None:
    async def refuse(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no"})

    with pytest.raises(RuntimeError, match="did not start"), LiveServer(refuse, lifespan="on"):
        pass


@pytest.mark.browser
def test_asyncio_runs_beside_playwright(browser_context: Callable[..., Any]) -> None:
    page = browser_context().new_page()
    page.set_content("<p>x</p>")
    coro = asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="running event loop"):  # Playwright's loop's mark
        asyncio.run(coro)
    coro.close()
    assert run_in_thread(asyncio.run, asyncio.sleep(0, "done")) == "done"
    assert page.inner_text("p") == "x"  # Playwright unaffected


def test_asyncio_runs_after_a_browser_test() -> None:
    assert asyncio.run(asyncio.sleep(0, "done")) == "done"
