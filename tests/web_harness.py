"""The web contract's test harness: an app per framework, and a client that acts like a browser.

``WebApp`` is what a contract test needs of any adapter: ``client`` (an httpx-style client on
``https://testserver``), ``auth`` (the adapter's object), ``validator``. ``Browser`` wraps the
client with what a same-origin page sends (``Sec-Fetch-Site: same-origin``, ``Origin``) and the
CSRF token it read from the cookie. The apps of every adapter are ``web_apps.py``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx2 as httpx

from sessionsvc import Settings, generate_jwks
from sessionsvc.integrations.web.config import WebSettings

ORIGIN = "https://testserver"
USERS = {"alice": "alice-password", "bob": "bob-password"}
CSRF_SECRET = "0123456789abcdef0123456789abcdef-test-only"


def web_settings(**overrides: Any) -> WebSettings:
    values: dict[str, Any] = {"csrf_secret": CSRF_SECRET, "_env_file": None}
    values.update(overrides)
    return WebSettings(**values)


def app_settings(redis_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "access_jwks": json.dumps(generate_jwks("EdDSA", "web-access")),
        "refresh_jwks": json.dumps(generate_jwks("EdDSA", "web-refresh")),
        "issuer": "https://auth.example.test",
        "audience": "api.example.test",
        "redis_url": redis_url,
        "env": "production",
        "_env_file": None,
    }
    values.update(overrides)
    return Settings(**values)


def check_user(username: str, password: str) -> str | None:
    """The app's credential check of the tests."""
    return username if USERS.get(username) == password else None


@dataclass
class Browser:
    """One browser on a shared test client: its own cookie jar (swapped in for each of its
    requests), the headers a same-origin page adds, and the CSRF token it keeps."""

    client: Any
    csrf: str | None = None
    jar: httpx.Cookies = field(default_factory=httpx.Cookies)

    def headers(self, **extra: str) -> dict[str, str]:
        h = {"sec-fetch-site": "same-origin", "origin": ORIGIN}
        if self.csrf:
            h["x-csrf-token"] = self.csrf
        h.update(extra)
        return {k: v for k, v in h.items() if v}

    def login(self, user: str = "alice", password: str | None = None, **fields: Any) -> Any:
        body = {"username": user, "password": password or USERS[user], **fields}
        response = self.request("POST", "/auth/login", json=body)
        if response.status_code == 200 and "csrf_token" in response.json():
            self.csrf = response.json()["csrf_token"]
        return response

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """A request with this browser's cookies and same-origin headers (``headers=`` adds or,
        with an empty value, removes one)."""
        headers = self.headers(**kwargs.pop("headers", {}))
        self.client.cookies = self.jar
        try:
            return self.client.request(method, path, headers=headers, **kwargs)
        finally:
            self.jar = self.client.cookies
            self.client.cookies = httpx.Cookies()

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def cookie(self, name: str) -> str | None:
        return self.jar.get(name)


def ticks(closed: threading.Event) -> Iterator[str]:
    """An app's event source: ``hello``, then ``ping`` every 50 ms; sets ``closed`` when the
    stream closes it."""
    try:
        yield "hello"
        while True:
            time.sleep(0.05)
            yield "ping"
    finally:
        closed.set()


async def aticks(closed: threading.Event) -> AsyncIterator[str]:
    """``ticks`` for asyncio."""
    try:
        yield "hello"
        while True:
            await asyncio.sleep(0.05)
            yield "ping"
    finally:
        closed.set()
