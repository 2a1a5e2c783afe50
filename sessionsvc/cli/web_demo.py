"""The web part of ``sessionsvc demo``: the example app (``examples/webapp``) driven over HTTP,
and ``sessionsvc demo --serve``, which serves it for a browser.

The walkthrough talks to the app as two browsers would (cookies kept by hand, as a browser
keeps them: over ``http://127.0.0.1`` Chromium accepts the ``Secure`` prefixed cookies), shows
the cookies, a cross-site request refused, the sessions list, and a sign-out on one device
reaching the other device's open event stream. It needs the ``fastapi`` extra and uvicorn and
a source checkout (the example app is not part of the wheel); without them it says so.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sessionsvc.config import Settings
from sessionsvc.embedded import free_port

__all__ = ["example_app", "serve", "web_walkthrough"]

Say = Callable[[str], None]
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "webapp" / "app.py"


def example_app(settings: Settings, *, heartbeat: float = 15.0) -> Any:
    """The example app on ``settings`` (a development CSRF key made up for this process)."""
    from sessionsvc.integrations.web.config import WebSettings  # noqa: PLC0415 (an extra)

    if not EXAMPLE.is_file():
        raise RuntimeError("the example app ships with the source repository (examples/webapp)")
    spec = importlib.util.spec_from_file_location("sessionsvc_example_webapp", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    web = WebSettings(csrf_secret=secrets.token_urlsafe(32), _env_file=None)  # type: ignore[call-arg, arg-type]
    return module.create_app(settings, web, heartbeat=heartbeat)


@contextlib.contextmanager
def _served(app: Any, port: int) -> Iterator[str]:
    import uvicorn  # noqa: PLC0415 (optional)

    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    if not server.started:
        raise RuntimeError("the example app did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


class _Device:
    """A browser, reduced to what the walkthrough needs: its cookies and same-origin headers."""

    def __init__(self, base: str) -> None:
        self.base, self.csrf = base, ""
        self.cookies: dict[str, tuple[str, str]] = {}  # name -> (value, path)

    def cookie_header(self, path: str) -> str:
        """The cookies a browser sends to ``path`` (a cookie's ``Path`` scopes it)."""
        return "; ".join(
            f"{name}={value}"
            for name, (value, scope) in self.cookies.items()
            if path == scope or path.startswith(scope.rstrip("/") + "/")
        )

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any, list[str]]:
        sent = {"sec-fetch-site": "same-origin", "origin": self.base, "x-csrf-token": self.csrf}
        sent.update(headers or {})
        cookie = self.cookie_header(path.split("?", maxsplit=1)[0])
        if cookie:
            sent["cookie"] = cookie
        data = None if body is None else json.dumps(body).encode()
        if data is not None:
            sent["content-type"] = "application/json"
        request = urllib.request.Request(self.base + path, data, sent, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (http only)
                status, raw, set_cookies = response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            status, raw, set_cookies = error.code, error.read(), error.headers
        lines = set_cookies.get_all("set-cookie") or []
        for line in lines:
            name, _, rest = line.partition("=")
            value, *attributes = (part.strip() for part in rest.split(";"))
            scope = next((a[5:] for a in attributes if a.startswith("Path=")), "/")
            if "Max-Age=0" in attributes:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = (value, scope)
        parsed = json.loads(raw) if raw[:1] in (b"{", b"[") else raw.decode()
        if isinstance(parsed, dict) and "csrf_token" in parsed:
            self.csrf = parsed["csrf_token"]
        return status, parsed, lines


def _short(line: str) -> str:
    name, _, rest = line.partition("=")
    value, _, attributes = rest.partition(";")
    return f"{name}={value[:12]}…;{attributes}"


def web_walkthrough(say: Say, settings: Settings) -> None:
    """Drive the example app over HTTP (numbered after the terminal walkthrough)."""
    try:
        app = example_app(settings)
    except (ImportError, RuntimeError) as exc:
        say(f"\n10. Web: skipped ({exc}; install sessionsvc[fastapi] and uvicorn)")
        return
    with _served(app, free_port()) as base:
        say(f"\n10. Web: the example app (FastAPI) at {base}")
        laptop, phone = _Device(base), _Device(base)
        _, _, cookies = laptop.call("POST", "/auth/login", _login("laptop"))
        say("   alice signs in on her laptop; the response sets:")
        for line in cookies:
            say(f"     Set-Cookie: {_short(line)}")
        status, me, _ = laptop.call("GET", "/api/me")
        say(f"   GET /api/me with the cookies: {status} sub={me['sub']} (one local validation)")
        evil = {"origin": "https://evil.example", "sec-fetch-site": "cross-site"}
        status, body, _ = laptop.call("POST", "/auth/logout", headers=evil)
        say(f"   a form on https://evil.example posts to /auth/logout: {status} {body['error']}")
        status, body, _ = laptop.call("POST", "/auth/logout", headers={"x-csrf-token": ""})
        say(f"   same origin but without the CSRF token: {status} {body['error']}")
        phone_sid = phone.call("POST", "/auth/login", _login("phone"))[1]["session_id"]
        stream = _EventStream(phone, "/api/events")
        status, listed, _ = laptop.call("GET", "/auth/sessions")
        names = ", ".join(
            s["device"] + (" (this device)" if s["current"] else "") for s in listed["sessions"]
        )
        say(f"   her phone signs in too; GET /auth/sessions: {names}")
        start = time.perf_counter()
        laptop.call("DELETE", f"/auth/sessions/{phone_sid}")
        event = stream.revoked(timeout=5)
        took = (time.perf_counter() - start) * 1000
        say(
            f"   the laptop signs the phone out; the phone's open page heard '{event}' "
            f"{took:.1f} ms later"
        )
        status, body, _ = phone.call("GET", "/api/me")
        say(f"   the phone's next API call: {status} {body.get('error_description', body)}")
        stream.close()


def _login(device: str) -> dict[str, str]:
    return {"username": "alice", "password": "alice-demo-password", "device": device}


class _EventStream:
    """A device's open ``text/event-stream``, read by a thread until it sees ``revoked``."""

    def __init__(self, device: _Device, path: str) -> None:
        cookie = device.cookie_header(path)
        request = urllib.request.Request(device.base + path, headers={"cookie": cookie})  # noqa: S310
        self._response = urllib.request.urlopen(request, timeout=30)  # noqa: S310
        self._reason: list[str] = []
        self._seen = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            for raw in self._response:
                line = raw.decode().strip()
                if line == "event: revoked":
                    data = self._response.readline().decode().removeprefix("data: ")
                    self._reason.append(json.loads(data)["reason"])
                    self._seen.set()
                    return

    def revoked(self, timeout: float) -> str:
        """The reason of the ``revoked`` event (waiting up to ``timeout`` seconds)."""
        self._seen.wait(timeout)
        return self._reason[0] if self._reason else "nothing (timed out)"

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._response.close()


def serve(settings: Settings, port: int, say: Say = print) -> int:
    """Serve the example app at ``http://127.0.0.1:<port>`` until Ctrl-C."""
    import uvicorn  # noqa: PLC0415 (optional)

    app = example_app(settings)
    say(f"sessionsvc example app: http://127.0.0.1:{port}")
    say("demo users: alice / alice-demo-password, bob / bob-demo-password (Ctrl-C stops)")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
    return 0
