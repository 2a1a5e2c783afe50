"""The cookie behaviour the web design relies on, checked in the real Chromium (Debian's
``/usr/bin/chromium``): prefixed cookies over http://127.0.0.1 (a potentially trustworthy
origin), the path-scoped refresh cookie, HttpOnly against ``document.cookie``, a cross-site
form POST (``Sec-Fetch-Site`` and ``SameSite=Lax``), and ``Clear-Site-Data``.

A tiny Starlette app sets the cookies exactly as written below and records, for every request,
the cookies and fetch-metadata headers it saw; the assertions are about those records.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

pytestmark = pytest.mark.browser

ACCESS = "__Host-ss-access"
REFRESH = "__Secure-ss-refresh"
CSRF = "__Host-ss-csrf"
SET_COOKIES = [
    f"{ACCESS}=acc-1; Path=/; Secure; HttpOnly; SameSite=Lax",
    f"{REFRESH}=ref-1; Path=/auth/refresh; Secure; HttpOnly; SameSite=Strict",
    f"{CSRF}=csrf-1; Path=/; Secure; SameSite=Lax",
    # Controls: each breaks its prefix's rule, so a browser must drop it.
    "__Host-ss-bad-path=1; Path=/auth/refresh; Secure; HttpOnly; SameSite=Strict",
    "__Secure-ss-not-secure=1; Path=/; HttpOnly; SameSite=Lax",
]
EVERYTHING = {ACCESS: "acc-1", REFRESH: "ref-1", CSRF: "csrf-1"}
ON_ROOT_PATH = {ACCESS: "acc-1", CSRF: "csrf-1"}


@dataclass(frozen=True)
class Seen:
    """One request as the server saw it."""

    method: str
    host: str
    path: str
    cookies: dict[str, str]
    fetch_site: str | None
    fetch_mode: str | None
    fetch_dest: str | None


class CookieApp:
    """The Starlette app and what it saw (``seen``, in order)."""

    def __init__(self, clear_site_data: str = '"cookies"') -> None:
        self.seen: list[Seen] = []
        self.clear_site_data = clear_site_data
        self.app = Starlette(
            routes=[
                Route("/login", self.login),
                Route("/attacker", self.attacker),
                Route("/auth/logout", self.logout, methods=["POST"]),
                Route("/{path:path}", self.echo, methods=["GET", "POST"]),
            ]
        )

    def record(self, request: Request) -> Seen:
        seen = Seen(
            method=request.method,
            host=request.url.hostname or "",
            path=request.url.path,
            cookies=dict(request.cookies),
            fetch_site=request.headers.get("sec-fetch-site"),
            fetch_mode=request.headers.get("sec-fetch-mode"),
            fetch_dest=request.headers.get("sec-fetch-dest"),
        )
        self.seen.append(seen)
        return seen

    def last(self, path: str) -> Seen:
        return [seen for seen in self.seen if seen.path == path][-1]

    async def login(self, request: Request) -> HTMLResponse:
        self.record(request)
        response = HTMLResponse("<h1>signed in</h1>")
        for value in SET_COOKIES:
            response.headers.append("set-cookie", value)
        return response

    async def attacker(self, request: Request) -> HTMLResponse:
        """A page that posts a form to ``?target=`` (and links to it)."""
        self.record(request)
        target = html.escape(request.query_params["target"])
        return HTMLResponse(
            f"<h1>attacker</h1><form method=post action='{target}/api/transfer'>"
            "<input type=hidden name=amount value=100><button id=go>win a prize</button></form>"
            f"<a id=link href='{target}/auth/refresh'>a link</a>"
        )

    async def logout(self, request: Request) -> HTMLResponse:
        self.record(request)
        return HTMLResponse("signed out", headers={"clear-site-data": self.clear_site_data})

    async def echo(self, request: Request) -> HTMLResponse:
        seen = self.record(request)
        rows = "".join(
            f"<tr><th>{html.escape(name)}</th><td>{html.escape(str(value))}</td></tr>"
            for name, value in [
                ("request", f"{seen.method} {seen.host}{seen.path}"),
                ("Sec-Fetch-Site", seen.fetch_site),
                ("Sec-Fetch-Mode", seen.fetch_mode),
                ("Sec-Fetch-Dest", seen.fetch_dest),
                ("cookies sent", ", ".join(sorted(seen.cookies)) or "(none)"),
            ]
        )
        return HTMLResponse(
            "<style>body{font:16px sans-serif}th{text-align:left;padding-right:2em}</style>"
            f"<h1>what the server saw</h1><table>{rows}</table>"
        )


@pytest.fixture
def cookie_app() -> CookieApp:
    return CookieApp()


def fetch(page: Any, path: str, method: str = "GET") -> int:
    """A same-origin ``fetch`` from ``page`` (credentials: the default, same-origin)."""
    status: int = page.evaluate(
        "async ([path, method]) => (await fetch(path, {method})).status", [path, method]
    )
    return status


def signed_in(browser_context: Callable[..., Any], url: str) -> Any:
    """A page of a new context after ``GET url/login`` (the cookies set)."""
    page = browser_context().new_page()
    page.goto(f"{url}/login")
    return page


def test_prefixed_cookies_are_stored_as_set(
    browser_context: Callable[..., Any], live_server: Any, cookie_app: CookieApp
) -> None:
    server = live_server(cookie_app.app)
    page = signed_in(browser_context, server.url)

    stored = {cookie["name"]: cookie for cookie in page.context.cookies()}
    assert set(stored) == set(EVERYTHING)  # both controls dropped: the prefixes are enforced
    expected = {
        ACCESS: ("/", True, "Lax"),
        REFRESH: ("/auth/refresh", True, "Strict"),
        CSRF: ("/", False, "Lax"),
    }
    for name, (path, http_only, same_site) in expected.items():
        cookie = stored[name]
        assert cookie["domain"] == "127.0.0.1"  # host-only
        assert cookie["path"] == path
        assert cookie["secure"] is True
        assert cookie["httpOnly"] is http_only
        assert cookie["sameSite"] == same_site


def test_refresh_cookie_goes_only_to_its_path(
    browser_context: Callable[..., Any], live_server: Any, cookie_app: CookieApp
) -> None:
    server = live_server(cookie_app.app)
    page = signed_in(browser_context, server.url)

    for path in ["/api/x", "/auth", "/auth/refreshed", "/auth/refresh", "/auth/refresh/x"]:
        assert fetch(page, path, "POST") == 200
    sent = {path: cookie_app.last(path).cookies for path in ["/api/x", "/auth", "/auth/refresh"]}
    assert sent == {"/api/x": ON_ROOT_PATH, "/auth": ON_ROOT_PATH, "/auth/refresh": EVERYTHING}
    assert cookie_app.last("/auth/refreshed").cookies == ON_ROOT_PATH  # not a path prefix
    assert cookie_app.last("/auth/refresh/x").cookies == EVERYTHING  # below the path
    assert cookie_app.last("/auth/refresh").fetch_site == "same-origin"

    page.goto(f"{server.url}/api/x")  # a navigation, too
    assert cookie_app.last("/api/x").cookies == ON_ROOT_PATH


def test_http_only_cookies_are_invisible_to_scripts(
    browser_context: Callable[..., Any], live_server: Any, cookie_app: CookieApp
) -> None:
    server = live_server(cookie_app.app)
    page = signed_in(browser_context, server.url)

    assert page.evaluate("document.cookie") == f"{CSRF}=csrf-1"
    page.goto(f"{server.url}/auth/refresh")  # the refresh cookie's own path: still hidden
    assert cookie_app.last("/auth/refresh").cookies == EVERYTHING
    assert page.evaluate("document.cookie") == f"{CSRF}=csrf-1"


def test_cross_site_form_post_is_marked_and_carries_no_cookie(
    browser_context: Callable[..., Any],
    live_server: Any,
    cookie_app: CookieApp,
    screenshot: Callable[..., Any],
) -> None:
    server = live_server(cookie_app.app)
    page = signed_in(browser_context, server.url)

    page.goto(f"{server.cross_site_url}/attacker?target={server.url}")
    assert cookie_app.last("/attacker").host == "localhost"
    page.click("#go")
    page.wait_for_url(f"{server.url}/api/transfer")
    posted = cookie_app.last("/api/transfer")
    screenshot(page, "cross-site-post")
    assert (posted.method, posted.host) == ("POST", "127.0.0.1")
    assert posted.fetch_site == "cross-site"
    assert (posted.fetch_mode, posted.fetch_dest) == ("navigate", "document")
    assert posted.cookies == {}  # SameSite=Lax (and Strict) withheld from a cross-site POST
    assert "cookies sent</th><td>(none)" in page.content()

    # The control: the same form on the app's own origin does carry the Lax cookies.
    page.goto(f"{server.url}/attacker?target={server.url}")
    page.click("#go")
    page.wait_for_url(f"{server.url}/api/transfer")
    posted = cookie_app.last("/api/transfer")
    assert posted.fetch_site == "same-origin"
    assert posted.cookies == ON_ROOT_PATH


def test_cross_site_link_carries_lax_but_not_strict(
    browser_context: Callable[..., Any], live_server: Any, cookie_app: CookieApp
) -> None:
    server = live_server(cookie_app.app)
    page = signed_in(browser_context, server.url)

    page.goto(f"{server.cross_site_url}/attacker?target={server.url}")
    page.click("#link")  # a top-level GET navigation to the refresh cookie's path
    page.wait_for_url(f"{server.url}/auth/refresh")
    followed = cookie_app.last("/auth/refresh")
    assert (followed.method, followed.fetch_site) == ("GET", "cross-site")
    assert followed.cookies == ON_ROOT_PATH  # Lax: sent; the Strict refresh cookie: not


@pytest.mark.parametrize("directives", ['"cookies"', '"cache", "cookies", "storage"'])
def test_clear_site_data_removes_the_cookies(
    browser_context: Callable[..., Any], live_server: Any, directives: str
) -> None:
    app = CookieApp(clear_site_data=directives)
    server = live_server(app.app)
    page = signed_in(browser_context, server.url)
    other = page.context.new_page()
    other.goto(f"{server.cross_site_url}/login")  # the same cookies on another site
    assert len(page.context.cookies()) == 2 * len(EVERYTHING)

    assert fetch(page, "/auth/logout", "POST") == 200
    assert app.last("/auth/logout").cookies == ON_ROOT_PATH
    left = {(cookie["domain"], cookie["name"]) for cookie in page.context.cookies()}
    assert left == {("localhost", name) for name in EVERYTHING}  # only the other site's remain
    assert fetch(page, "/auth/refresh", "POST") == 200
    assert app.last("/auth/refresh").cookies == {}
    assert page.evaluate("document.cookie") == ""
