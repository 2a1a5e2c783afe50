"""The example web app in Debian's Chromium: the issue's acceptance scenario.

Two browser contexts (a "laptop" and a "phone") sign in as alice through the login form. The
laptop's "Your sessions" page signs the phone out; the phone's open page shows the signed-out
banner at once, without a reload (server-sent events, ended by the validator's listener), and
its next API call answers 401. Also "Sign out other devices", "Sign out everywhere", signing in
again on the page that was signed out, and forms on another site (and on a sibling origin of the
same site) posting to the app in the signed-in browser.

The app is served by uvicorn (``live_server``) on a real redis-server; screenshots of each step
go to ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from browser_harness import LiveServer
from fastapi import FastAPI
from playwright.sync_api import BrowserContext, Page, expect
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route
from web_harness import app_settings, web_settings

from examples.webapp.app import DEMO_USERS, create_app
from sessionsvc.revocation.view import Revocation

pytestmark = [pytest.mark.browser, pytest.mark.redis]

TIMEOUT = 15_000  # ms: generous, for a slow machine; the waits end as soon as the page is there
PHONE_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0.0.0 Mobile Safari/537.36"
)
PHONE = {
    "viewport": {"width": 390, "height": 760},
    "is_mobile": True,
    "has_touch": True,
    "user_agent": PHONE_UA,
}
LAPTOP = {"viewport": {"width": 1100, "height": 700}}
Shot = Callable[[Page, str], Any]

ATTACKER_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Win a prize</title></head>
<!-- another site's page: forms that post to the example app at {app} -->
<body><h1>You won a prize!</h1>
<form id="logout" method="post" action="{app}/auth/logout">
  <button>Claim it</button></form>
<form id="logout-all" method="post" action="{app}/auth/logout-all">
  <input type="hidden" name="csrf_token" value="v1.guessed"><button>Claim it now</button></form>
<form id="login" method="post" action="{app}/auth/login">
  <input type="hidden" name="username" value="bob">
  <input type="hidden" name="password" value="bob-demo-password">
  <button>Claim it as bob</button></form>
</body></html>
"""


@dataclass
class Webapp:
    """The example app, served; ``app`` is the ASGI app itself (its live-sign-out registry)."""

    app: FastAPI
    server: LiveServer

    @property
    def url(self) -> str:
        return self.server.url

    def watches(self, session_id: str) -> list[int]:
        """The keys (increasing with each new one) of the watched live connections of
        ``session_id``: the event streams the server has registered for it."""
        ended = self.app.state.live.registry.ended_by(Revocation("session", session_id))
        return [watch.key for watch, _ in ended]

    def wait_for_stream(self, device: Device, newer_than: int = -1) -> None:
        """Until the server watches a stream of the device's session opened after the
        watch ``newer_than`` (the page's own stream, not one of a page it navigated away
        from)."""
        sid = device.session_id()
        wait_until(
            lambda: max(self.watches(sid), default=-1) > newer_than,
            f"the {device.name}'s event stream is watched",
        )

    def newest_watch(self, device: Device) -> int:
        return max(self.watches(device.session_id()), default=-1)


@pytest.fixture
def webapp(redis_url: str, live_server: Callable[..., LiveServer]) -> Webapp:
    app = create_app(app_settings(redis_url, env="development"), web_settings())
    return Webapp(app, live_server(app))


@dataclass
class Device:
    name: str
    context: BrowserContext
    page: Page

    def api_status(self, path: str = "/api/me") -> int:
        """The status of a ``fetch(path)`` from the device's open page (no refresh attempt)."""
        status: int = self.page.evaluate("(p) => fetch(p).then((r) => r.status)", path)
        return status

    def session_id(self) -> str:
        sid: str = self.page.evaluate("fetch('/api/me').then((r) => r.json())")["session_id"]
        return sid


def wait_until(condition: Callable[[], bool], what: str, timeout: float = TIMEOUT / 1000) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.02)


def sign_in(
    new_context: Callable[..., BrowserContext],
    webapp: Webapp,
    name: str,
    shot: Shot,
    options: dict[str, Any],
) -> Device:
    """A new context that signs in as alice through the home page's form, as a user would,
    naming the device; returns once the page shows the account and follows the session."""
    context = new_context(**options)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT)
    page.goto(webapp.url + "/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("User").fill("alice")
    page.get_by_label("Password").fill(DEMO_USERS["alice"])
    page.get_by_label("Device").fill(name)
    shot(page, f"{name}-1-login-form")
    page.get_by_role("button", name="Sign in").click()
    device = Device(name, context, page)
    expect_signed_in(device, webapp)
    return device


def expect_signed_in(device: Device, webapp: Webapp) -> None:
    """The page shows the account (it reloaded after the login, with no form field in its
    URL) and its event stream is open and watched by the server."""
    page = device.page
    expect(page.locator("#account")).to_be_visible()  # (hidden until the reloaded page knows)
    expect(page.locator("#who")).to_have_text("alice")
    assert page.url == webapp.url + "/", page.url
    webapp.wait_for_stream(device)


def open_sessions(device: Device) -> Page:
    """The device's "Your sessions" page, once its table is filled and its stream watched."""
    page = device.page
    page.get_by_role("link", name="Your sessions").click()
    expect(page.get_by_role("heading", name="Your sessions")).to_be_visible()
    expect(page.locator("#sessions tr").first).to_be_visible()
    return page


def row(page: Page, device: str) -> Any:
    return page.locator("#sessions tr", has_text=device)


def expect_signed_out_live(device: Device, reason: str) -> None:
    """The device's open page shows the banner without a reload (the page's marker, set
    before, survives), and its next API call is refused."""
    banner = device.page.locator("#signed-out")
    expect(banner).to_be_visible(timeout=TIMEOUT)
    expect(banner).to_have_text(f"You were signed out ({reason}).")
    expect(device.page.locator("#login")).to_be_visible()
    expect(device.page.locator("#account")).to_be_hidden()
    assert device.page.evaluate("window.__not_reloaded") is True, "the page was reloaded"
    assert device.api_status() == 401


def mark_not_reloaded(device: Device) -> None:
    device.page.evaluate("window.__not_reloaded = true")


# -- the acceptance scenario ---------------------------------------------------------------------


def test_signing_the_phone_out_from_the_laptop_ends_its_open_page_at_once(
    webapp: Webapp, browser_context: Callable[..., BrowserContext], screenshot: Shot
) -> None:
    laptop = sign_in(browser_context, webapp, "laptop", screenshot, LAPTOP)
    phone = sign_in(browser_context, webapp, "phone", screenshot, PHONE)
    screenshot(phone.page, "phone-2-signed-in")
    mark_not_reloaded(phone)

    page = open_sessions(laptop)
    expect(page.locator("#sessions tr")).to_have_count(2)
    expect(row(page, "laptop").locator(".tag")).to_have_text("this device")
    expect(row(page, "phone").locator(".tag")).to_have_count(0)
    expect(row(page, "phone")).to_contain_text("127.0.0.1")
    screenshot(page, "laptop-2-sessions")

    expect(row(page, "laptop")).to_contain_text("Chrome")
    expect(row(page, "phone")).to_contain_text("Chrome 156 on Android")
    row(page, "phone").get_by_role("button", name="Sign out phone").click()
    expect(page.locator("#sessions tr")).to_have_count(1)
    expect(row(page, "laptop")).to_be_visible()
    screenshot(page, "laptop-3-phone-signed-out")

    expect_signed_out_live(phone, "session revoked")
    screenshot(phone.page, "phone-3-signed-out-banner")
    assert laptop.api_status() == 200  # the laptop is still signed in


def test_sign_out_other_devices(
    webapp: Webapp, browser_context: Callable[..., BrowserContext], screenshot: Shot
) -> None:
    laptop = sign_in(browser_context, webapp, "laptop", screenshot, LAPTOP)
    phone = sign_in(browser_context, webapp, "phone", screenshot, PHONE)
    tablet = sign_in(browser_context, webapp, "tablet", screenshot, LAPTOP)
    home_stream = webapp.newest_watch(phone)
    open_sessions(phone)  # the phone keeps its own "Your sessions" page open
    expect(phone.page.locator("#sessions tr")).to_have_count(3)
    webapp.wait_for_stream(phone, newer_than=home_stream)
    screenshot(phone.page, "phone-sessions")
    for device in (phone, tablet):
        mark_not_reloaded(device)
    page = open_sessions(laptop)
    expect(page.locator("#sessions tr")).to_have_count(3)
    page.get_by_role("button", name="Sign out other devices").click()
    expect(page.locator("#sessions tr")).to_have_count(1)
    expect(row(page, "laptop").locator(".tag")).to_have_text("this device")
    screenshot(page, "laptop-others-signed-out")
    for device in (phone, tablet):
        expect_signed_out_live(device, "session revoked")
    expect(phone.page.get_by_text("You are not signed in.")).to_be_visible()
    screenshot(phone.page, "phone-sessions-signed-out")
    assert laptop.api_status() == 200


def test_sign_out_everywhere(
    webapp: Webapp, browser_context: Callable[..., BrowserContext], screenshot: Shot
) -> None:
    laptop = sign_in(browser_context, webapp, "laptop", screenshot, LAPTOP)
    phone = sign_in(browser_context, webapp, "phone", screenshot, PHONE)
    mark_not_reloaded(phone)
    page = open_sessions(laptop)
    mark_not_reloaded(laptop)
    page.get_by_role("button", name="Sign out everywhere").click()
    expect_signed_out_live(phone, "user signed out everywhere")
    banner = page.locator("#signed-out")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("You were signed out")
    expect(page.get_by_text("You are not signed in.")).to_be_visible()
    assert laptop.api_status() == 401
    screenshot(page, "laptop-signed-out-everywhere")
    screenshot(phone.page, "phone-signed-out-everywhere")


def test_the_signed_out_page_signs_in_again_without_a_reload(
    webapp: Webapp, browser_context: Callable[..., BrowserContext], screenshot: Shot
) -> None:
    """The form shown by a live sign-out has its handler too (it once was submitted by the
    browser itself: a GET with the password in the URL)."""
    laptop = sign_in(browser_context, webapp, "laptop", screenshot, LAPTOP)
    phone = sign_in(browser_context, webapp, "phone", screenshot, PHONE)
    mark_not_reloaded(phone)
    laptop.page.evaluate("(sid) => window.__sid = sid", phone.session_id())
    status = laptop.page.evaluate(
        """() => fetch('/auth/sessions/' + window.__sid, {method: 'DELETE', headers: {
            'X-CSRF-Token': document.cookie.match(/__Host-ss-csrf=([^;]+)/)[1]}})
            .then((r) => r.status)"""
    )
    assert status == 200
    expect_signed_out_live(phone, "session revoked")
    page = phone.page
    page.get_by_label("User").fill("alice")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#login-error")).to_have_text("Wrong user name or password.")
    assert page.evaluate("window.__not_reloaded") is True and page.url == webapp.url + "/"
    screenshot(page, "phone-wrong-password")
    page.get_by_label("Password").fill(DEMO_USERS["alice"])
    page.get_by_role("button", name="Sign in").click()
    expect_signed_in(phone, webapp)
    expect(page.locator("#signed-out")).to_be_hidden()
    page.get_by_role("button", name="Call the protected API").click()
    expect(page.locator("#api-result")).to_contain_text('"sub": "alice"')
    expect(page.locator("#api-result")).to_contain_text("200 {")
    screenshot(page, "phone-signed-in-again")


# -- another site's forms ------------------------------------------------------------------------


def attacker_app(target: str) -> Starlette:
    """Another site: one page of forms posting to ``target`` (the example app's origin)."""

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(ATTACKER_PAGE.format(app=target))

    return Starlette(routes=[Route("/", page)])


@pytest.mark.parametrize(
    ("site", "form", "status"),
    [
        # another site (http://localhost:<port>): SameSite=Lax keeps the access cookie off
        # its POST, so there is no session to act for
        ("cross-site", "logout", 401),
        ("cross-site", "logout-all", 401),
        ("cross-site", "login", 403),  # a login CSRF (signing the victim in as bob)
        # a sibling origin of the same site (http://127.0.0.1:<other port>): the cookies go
        # along, and the CSRF check (Sec-Fetch-Site: same-site, untrusted) refuses
        ("same-site", "logout", 403),
        ("same-site", "logout-all", 403),
        ("same-site", "login", 403),
    ],
)
def test_a_form_on_another_site_cannot_act_for_the_signed_in_user(
    webapp: Webapp,
    browser_context: Callable[..., BrowserContext],
    live_server: Callable[..., LiveServer],
    screenshot: Shot,
    site: str,
    form: str,
    status: int,
) -> None:
    laptop = sign_in(browser_context, webapp, "laptop", screenshot, LAPTOP)
    attacker = live_server(attacker_app(webapp.url))
    attacker_url = attacker.cross_site_url if site == "cross-site" else attacker.url
    evil = laptop.context.new_page()
    evil.set_default_timeout(TIMEOUT)
    evil.goto(attacker_url + "/")
    assert evil.evaluate("location.origin") == attacker_url != webapp.url
    screenshot(evil, "attacker-page")
    with evil.expect_response(lambda r: r.request.method == "POST") as answered:
        evil.locator(f"form#{form} button").click()
    response = answered.value
    assert response.url == f"{webapp.url}/auth/{form}"
    assert response.request.all_headers().get("sec-fetch-site") == site
    assert response.status == status, response.text()
    assert response.json()["error"] == ("csrf" if status == 403 else "unauthenticated")
    screenshot(evil, f"refused-{form}")
    # the laptop is still signed in as alice, in the same session, its page still live
    assert laptop.api_status() == 200
    assert laptop.page.evaluate("fetch('/api/me').then((r) => r.json())")["sub"] == "alice"
    expect(laptop.page.locator("#signed-out")).to_be_hidden()
    laptop.page.reload()
    expect(laptop.page.locator("#who")).to_have_text("alice")
