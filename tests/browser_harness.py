"""Pytest fixtures for the browser tier: Debian's ``chromium`` driven by Playwright's sync API,
and ASGI apps served by uvicorn on 127.0.0.1 from a background thread.

Fixtures (registered with ``pytest_plugins`` in ``tests/conftest.py``):

- ``chromium`` (session): a Playwright ``Browser`` of ``/usr/bin/chromium``, headless. Skips
  when the binary is missing (``apt-get install -y chromium``), fails instead when
  ``SESSIONSVC_REQUIRE_BROWSER=1`` (CI, ``.ci/run``). ``playwright install`` is never needed.
- ``browser_context`` (function): ``browser_context(**options) -> BrowserContext``, a new
  isolated context ("device": its own cookies and storage) per call, closed after the test.
- ``screenshot`` (function): ``screenshot(page, name) -> Path``, a full-page PNG at
  ``test-artifacts/screenshots/<test name>-<name>.png``.
- ``live_server`` (function): ``live_server(app, **uvicorn_options) -> LiveServer``, the app
  served on a free port of 127.0.0.1 until the end of the test (``.url``), also reachable as
  another site (``.cross_site_url``, ``http://localhost:<port>``); stopped and joined after it.

Event loops: Playwright's sync API runs its asyncio loop in a greenlet of the main thread and,
between its calls, leaves that loop marked as the main thread's *running* loop
(``wait_for_future`` in ``playwright/_impl/_greenlets.py``). With the mark set, every
``asyncio.run`` in the main thread raises "cannot be called from a running event loop" — and
many tests of this suite call ``asyncio.run``. So the mark (with the loop's async-generator
hooks) is set only while a test that uses ``chromium`` runs, and cleared after it
(``_playwright_loop``). Inside a browser test, run a coroutine in another thread
(``run_in_thread(asyncio.run, coro)``); the live servers have their own loops in their threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Playwright

CHROMIUM = "/usr/bin/chromium"
REQUIRE_BROWSER = "SESSIONSVC_REQUIRE_BROWSER"
SCREENSHOTS = Path("test-artifacts") / "screenshots"
_VERSION = pytest.StashKey[str]()
T = TypeVar("T")


def browser_required() -> bool:
    """``SESSIONSVC_REQUIRE_BROWSER=1``: a missing browser fails the browser tests."""
    return os.environ.get(REQUIRE_BROWSER, "") == "1"


def _unavailable(reason: str) -> None:
    if browser_required():
        pytest.fail(f"{reason}, and {REQUIRE_BROWSER}=1 requires the browser tests", pytrace=False)
    pytest.skip(f"{reason}: apt-get install -y chromium (or deselect: -m 'not browser')")


def chromium_version() -> str | None:
    """``chromium --version`` (``Chromium 156.0.… built on Debian …``), or ``None``."""
    if not shutil.which(CHROMIUM):
        return None
    try:
        done = subprocess.run(
            [CHROMIUM, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def launch_args() -> list[str]:
    """Chromium flags for containers: no sandbox as root (Chromium refuses to start as root
    with it), and no /dev/shm for shared memory (often 64 MB in a container; Debian's launcher
    adds the flag itself only when it can measure /dev/shm)."""
    args = ["--disable-dev-shm-usage"]
    if os.geteuid() == 0:
        args.append("--no-sandbox")
    return args


def run_in_thread(func: Callable[..., T], *args: Any) -> T:
    """``func(*args)`` in a new thread, joined: e.g. ``asyncio.run(coro)`` inside a browser test,
    where Playwright's loop holds the main thread's running-loop mark."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="browser-test") as pool:
        return pool.submit(func, *args).result()


class _PlaywrightLoop:
    """Sets and clears Playwright's running-loop mark on the main thread (see the docstring of
    this module). Captured right after ``sync_playwright().start()``, which leaves it set."""

    def __init__(self, outside_hooks: Any) -> None:
        self.loop = asyncio.events._get_running_loop()
        self.hooks = sys.get_asyncgen_hooks()
        self.outside_hooks = outside_hooks

    def enter(self) -> None:
        asyncio.events._set_running_loop(self.loop)
        sys.set_asyncgen_hooks(*self.hooks)

    def leave(self) -> None:
        asyncio.events._set_running_loop(None)
        sys.set_asyncgen_hooks(*self.outside_hooks)


class _Chromium:
    """Playwright plus one launched Chromium, for the whole test session."""

    def __init__(self) -> None:
        from playwright.sync_api import sync_playwright

        outside_hooks = sys.get_asyncgen_hooks()
        self.playwright: Playwright = sync_playwright().start()
        self.mark = _PlaywrightLoop(outside_hooks)
        try:
            self.browser: Browser = self.playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=launch_args()
            )
        except BaseException:
            self.playwright.stop()
            self.mark.leave()
            raise

    def close(self) -> None:
        self.mark.enter()
        try:
            self.browser.close()
        finally:
            self.playwright.stop()
            self.mark.leave()


@pytest.fixture(scope="session")
def _chromium_session(request: pytest.FixtureRequest) -> Iterator[_Chromium]:
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"Debian's chromium is not installed ({CHROMIUM} is missing)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("the playwright package is not installed (./dev installs .[dev])")
    session = _Chromium()
    request.config.stash[_VERSION] = f"Chromium {session.browser.version} ({CHROMIUM})"
    try:
        yield session
    finally:
        session.close()


@pytest.fixture(scope="session")
def chromium(_chromium_session: _Chromium) -> Browser:
    """Debian's Chromium (``/usr/bin/chromium``), headless, launched once per test session."""
    return _chromium_session.browser


@pytest.fixture(autouse=True)
def _playwright_loop(request: pytest.FixtureRequest) -> Iterator[None]:
    """Playwright's running-loop mark on the main thread only during tests that use it."""
    if "chromium" not in request.fixturenames:
        yield
        return
    mark = request.getfixturevalue("_chromium_session").mark
    mark.enter()
    try:
        yield
    finally:
        mark.leave()


@pytest.fixture
def browser_context(chromium: Browser) -> Iterator[Callable[..., BrowserContext]]:
    """``browser_context(**options)``: a new isolated context (``Browser.new_context``
    options), one per simulated device; all closed after the test."""
    contexts: list[BrowserContext] = []

    def new(**options: Any) -> BrowserContext:
        context = chromium.new_context(**options)
        contexts.append(context)
        return context

    yield new
    for context in reversed(contexts):
        context.close()


def _file_part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "unnamed"


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Callable[[Page, str], Path]:
    """``screenshot(page, name)``: a full-page PNG of ``page`` at
    ``test-artifacts/screenshots/<test name>-<name>.png`` (kept by CI); returns the path."""
    folder = request.config.rootpath / SCREENSHOTS
    test = _file_part(request.node.name)

    def take(page: Page, name: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{test}-{_file_part(name)}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


class LiveServer:
    """An ASGI app served by uvicorn in a daemon thread on ``127.0.0.1:<port>``.

    ``url`` is ``http://127.0.0.1:<port>``; ``cross_site_url`` (``http://localhost:<port>``)
    reaches the same server as another *site* (an IP address and a host name share no
    registrable domain), and both are potentially trustworthy to Chromium, so ``Secure``
    cookies work on each. A second ``live_server(app)`` gives another port on the same site.
    """

    def __init__(self, app: Any, **uvicorn_options: Any) -> None:
        import uvicorn

        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))  # bound here: no race for a "free" port
        self.port: int = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.cross_site_url = f"http://localhost:{self.port}"
        options: dict[str, Any] = {
            "log_config": None,  # leave the test process's logging alone
            "log_level": "warning",
            "access_log": False,
            "http": "h11",
            "ws": "none",
            "lifespan": "auto",
            "timeout_graceful_shutdown": 5,
            **uvicorn_options,
        }
        self._server = uvicorn.Server(uvicorn.Config(app, **options))
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._serve, name=f"live-server-{self.port}", daemon=True
        )

    def _serve(self) -> None:
        try:
            self._server.run(sockets=[self._socket])
        except BaseException as exc:  # SystemExit on a failed startup; re-raised by start/stop
            self._error = exc

    def start(self, timeout: float = 20.0) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the live server on {self.url} did not start") from self._error
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Shut down (uvicorn closes idle keep-alive connections), join the thread, re-raise
        what the server thread raised."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=15)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(timeout=5)
        self._socket.close()
        if self._thread.is_alive():
            raise RuntimeError(f"the live server thread on {self.url} did not stop")
        if self._error is not None and not isinstance(self._error, SystemExit):
            raise RuntimeError(f"the live server on {self.url} failed") from self._error

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@pytest.fixture
def live_server() -> Iterator[Callable[..., LiveServer]]:
    """``live_server(app, **uvicorn_options)``: ``app`` served until the end of the test."""
    with contextlib.ExitStack() as stack:

        def serve(app: Any, **uvicorn_options: Any) -> LiveServer:
            return stack.enter_context(LiveServer(app, **uvicorn_options))

        yield serve


def pytest_report_header(config: pytest.Config) -> str:
    """The browser the browser tests would use (``chromium --version``), in pytest's header."""
    required = f", {REQUIRE_BROWSER}=1" if browser_required() else ""
    return f"browser: {chromium_version() or f'no {CHROMIUM}'}{required}"


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """One line naming the browser, when the browser tests launched it."""
    version = config.stash.get(_VERSION, None)
    if version is not None:
        terminalreporter.write_line(f"browser tests ran in {version}")
