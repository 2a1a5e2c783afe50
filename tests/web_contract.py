"""The web contract, for every adapter: endpoints, cookies, CSRF, transports, errors.

Collected by ``tests/test_web_contract.py`` once per adapter (``web_apps.ADAPTERS``): the
fixtures ``adapter``, ``webapp`` (the adapter's test app, open), ``client`` (httpx-style, on
``https://testserver``) and ``browser``. A real redis-server; the validator follows the
revocation log.
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2 as httpx
import pytest
from web_apps import WebApp
from web_harness import ORIGIN, Browser, check_user

pytestmark = pytest.mark.redis


def cookies_set(response: Any) -> dict[str, str]:
    return {h.split("=", 1)[0]: h for h in response.headers.get_list("set-cookie")}


# -- login ---------------------------------------------------------------------------------------


def test_login_sets_the_three_cookies_with_their_attributes(browser: Browser) -> None:
    response = browser.login()
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"session_id", "expires_in", "csrf_token"}  # no token in the body
    cookies = cookies_set(response)
    assert set(cookies) == {"__Host-ss-access", "__Secure-ss-refresh", "__Host-ss-csrf"}
    access, csrf, refresh = (cookies[n] for n in sorted(cookies))
    for part in ("Max-Age=900", "Path=/", "Secure", "HttpOnly", "SameSite=Lax"):
        assert part in access.split("; ")
    for part in ("Path=/auth/refresh", "Secure", "HttpOnly", "SameSite=Strict"):
        assert part in refresh.split("; ")
    assert "HttpOnly" not in csrf and "Domain" not in access + refresh + csrf
    assert csrf.split(";")[0].split("=", 1)[1] == body["csrf_token"]


def test_bearer_login_answers_the_tokens_and_sets_no_cookie(browser: Browser) -> None:
    response = browser.login(transport="bearer")
    assert response.status_code == 200
    assert not response.headers.get_list("set-cookie")
    body = response.json()
    assert body["token_type"] == "Bearer" and body["access_token"] and body["refresh_token"]
    me = browser.get("/api/me", headers={"authorization": f"Bearer {body['access_token']}"})
    assert me.json()["transport"] == "bearer"


def test_wrong_password_is_401_and_the_throttle_answers_429_before_checking(
    adapter: Any, redis_url: str
) -> None:
    checked: list[str] = []

    def counting(username: str, password: str) -> str | None:
        checked.append(username)
        return check_user(username, password)

    with adapter.open(redis_url, {"login_user_attempts": 2}, authenticate_user=counting) as w:
        b = Browser(w.client)
        assert [b.login(password="nope").status_code for _ in range(2)] == [401, 401]
        locked = b.login()  # the right password, but locked out
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) >= 1
        assert checked == ["alice", "alice"]  # the credential check did not run
        assert b.login("bob").status_code == 200  # another user is not locked


def test_concurrent_wrong_logins_reach_the_credential_check_at_most_the_limit(
    adapter: Any, redis_url: str
) -> None:
    """10 wrong logins at once (threads on one client) with ``login_user_attempts=3``: each
    attempt is counted before the check, so the (slow) check runs 3 times, not 10."""
    checked: list[str] = []
    in_check = 0
    most_at_once = 0
    lock = threading.Lock()

    def enter(username: str, password: str) -> None:
        nonlocal in_check, most_at_once
        with lock:
            checked.append(username)
            in_check += 1
            most_at_once = max(most_at_once, in_check)

    def leave(username: str, password: str) -> str | None:
        nonlocal in_check
        with lock:
            in_check -= 1
        return check_user(username, password)

    slow = adapter.slow(enter, leave, 0.2)  # every other attempt arrives while one is checked
    body = {"username": "alice", "password": "nope"}
    headers = {"sec-fetch-site": "same-origin", "origin": ORIGIN}
    with adapter.open(redis_url, {"login_user_attempts": 3}, authenticate_user=slow) as w:
        c = w.client
        start = threading.Barrier(10)

        def attempt(_: int) -> int:
            start.wait()
            return int(c.post("/auth/login", json=body, headers=headers).status_code)

        with ThreadPoolExecutor(10) as pool:
            statuses = sorted(pool.map(attempt, range(10)))
        assert statuses == [401] * 3 + [429] * 7
        assert checked == ["alice"] * 3 and most_at_once >= 2  # (the checks overlapped)
        assert Browser(c).login().status_code == 429  # the right password waits too
        assert len(checked) == 3


def test_a_cross_site_login_is_refused(browser: Browser) -> None:
    body = {"username": "alice", "password": "alice-password"}
    cross = {"sec-fetch-site": "cross-site", "origin": "https://evil.example"}
    response = browser.post("/auth/login", json=body, headers=cross)
    assert response.status_code == 403 and response.json()["error"] == "csrf"
    no_metadata = {"sec-fetch-site": "", "origin": "https://evil.example"}
    evil = browser.post("/auth/login", json=body, headers=no_metadata)
    assert evil.status_code == 403


def test_login_takes_a_form_post(browser: Browser) -> None:
    data = {"username": "alice", "password": "alice-password"}
    response = browser.post("/auth/login", data=data)
    assert response.status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"username": "alice"},
        {"username": 1, "password": "x"},
        {"username": "a", "password": "b", "transport": "smoke"},
    ],
)
def test_a_bad_login_body_is_400(browser: Browser, body: dict[str, Any]) -> None:
    response = browser.post("/auth/login", json=body)
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


# -- protected routes ----------------------------------------------------------------------------


def test_a_protected_route_takes_the_access_cookie(browser: Browser) -> None:
    browser.login()
    me = browser.get("/api/me")
    assert me.status_code == 200 and me.json()["sub"] == "alice"
    assert me.json()["transport"] == "cookie"


def test_no_credentials_is_401_with_a_bare_bearer_challenge(client: Any) -> None:
    response = client.get("/api/me")
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert client.get("/api/maybe").json() == {"sub": None}


def test_a_bad_token_is_401_with_its_reason(client: Any) -> None:
    response = client.get("/api/me", headers={"authorization": "Bearer not.a.token"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        'Bearer error="invalid_token", error_description="malformed"'
    )


def test_a_bearer_request_ignores_the_cookies(browser: Browser) -> None:
    browser.login()  # valid cookies in the jar
    response = browser.get("/api/me", headers={"authorization": "Bearer not.a.token"})
    assert response.status_code == 401  # the cookie does not stand in


def test_a_token_in_the_url_is_refused(browser: Browser) -> None:
    token = browser.login(transport="bearer").json()["access_token"]
    for query in (f"access_token={token}", f"x={token}", "token=abc"):
        auth = {"authorization": f"Bearer {token}"}
        response = browser.get(f"/api/me?{query}", headers=auth)
        assert response.status_code == 400, query


def test_a_missing_scope_is_403(browser: Browser) -> None:
    browser.login()
    response = browser.get("/api/admin")
    assert response.status_code == 403
    assert response.headers["www-authenticate"].startswith('Bearer error="insufficient_scope"')


def test_a_stale_validator_answers_503_with_retry_after(webapp: WebApp, browser: Browser) -> None:
    browser.login()
    webapp.auth.validator.stale_after = -math.inf  # the feed could not prove freshness
    response = browser.get("/api/me")  # (fail_closed: the default policy)
    assert response.status_code == 503 and response.headers["retry-after"] == "1"


# -- CSRF ----------------------------------------------------------------------------------------


def test_an_unsafe_cookie_request_needs_the_csrf_token(browser: Browser) -> None:
    browser.login()
    token = browser.csrf
    browser.csrf = None
    assert browser.post("/api/things").status_code == 403  # missing
    browser.csrf = "v1.forged"
    assert browser.post("/api/things").status_code == 403  # forged
    browser.csrf = token
    assert browser.post("/api/things").status_code == 200


def test_another_sessions_csrf_token_is_refused(client: Any) -> None:
    a, b = Browser(client), Browser(client)
    a.login()
    b.login()
    a.csrf = b.csrf
    assert a.post("/api/things").status_code == 403


def test_the_csrf_token_may_come_as_a_form_field(browser: Browser) -> None:
    browser.login()
    token, browser.csrf = browser.csrf, None
    response = browser.post("/api/things", data={"csrf_token": token})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site", "origin": "https://sibling.example"},
        {"sec-fetch-site": "", "origin": "https://evil.example"},
    ],
)
def test_cross_site_unsafe_requests_are_refused_even_with_the_token(
    browser: Browser, headers: dict[str, str]
) -> None:
    browser.login()
    response = browser.post("/api/things", headers=headers)
    assert response.status_code == 403 and response.json()["error"] == "csrf"


def test_bearer_requests_need_no_csrf_token(browser: Browser) -> None:
    token = browser.login(transport="bearer").json()["access_token"]
    headers = {"authorization": f"Bearer {token}", "sec-fetch-site": "cross-site"}
    response = browser.client.post("/api/things", headers=headers)
    assert response.status_code == 200


# -- refresh -------------------------------------------------------------------------------------


def test_refresh_rotates_the_cookies_and_keeps_the_csrf_token(browser: Browser) -> None:
    first = browser.login()
    old = cookies_set(first)["__Secure-ss-refresh"]
    response = browser.post("/auth/refresh")
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    assert cookies_set(response)["__Secure-ss-refresh"] != old
    assert response.json()["csrf_token"] == first.json()["csrf_token"]
    assert browser.get("/api/me").status_code == 200


def test_bearer_refresh_takes_the_token_in_the_body(browser: Browser) -> None:
    tokens = browser.login(transport="bearer").json()
    response = browser.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert response.status_code == 200
    assert response.json()["refresh_token"] != tokens["refresh_token"]


def test_two_tabs_refreshing_at_once_end_with_the_same_cookies(browser: Browser) -> None:
    """Both tabs send the same refresh cookie (the second before it saw the first's answer)."""
    browser.login()
    before = httpx.Cookies(browser.jar)
    first = browser.post("/auth/refresh")
    browser.jar = httpx.Cookies(before)  # the second tab still holds the old cookies
    second = browser.post("/auth/refresh")
    assert [first.status_code, second.status_code] == [200, 200]
    refreshed = {cookies_set(r)["__Secure-ss-refresh"].split(";")[0] for r in (first, second)}
    assert len(refreshed) == 1  # the same current refresh token for both
    assert browser.get("/api/me").status_code == 200
    assert browser.post("/auth/refresh").status_code == 200  # and it keeps working


def test_refresh_token_reuse_revokes_clears_cookies_and_calls_the_hook(
    adapter: Any, redis_url: str
) -> None:
    stolen: list[str] = []
    with adapter.open(redis_url, on_theft_detected=lambda sid, req: stolen.append(sid)) as w:
        b = Browser(w.client)
        b.login()
        old = httpx.Cookies(b.jar)
        assert b.post("/auth/refresh").status_code == 200
        assert b.post("/auth/refresh").status_code == 200  # the old one is now two back
        access = b.cookie("__Host-ss-access")
        b.jar = old
        reused = b.post("/auth/refresh")
        assert reused.status_code == 401 and reused.json()["error"] == "invalid_grant"
        assert all("Max-Age=0" in h for h in reused.headers.get_list("set-cookie"))
        assert len(stolen) == 1
        me = b.get("/api/me", headers={"authorization": f"Bearer {access}"})
        assert me.status_code == 401  # the session's newest tokens are revoked too


def test_a_refresh_by_navigation_redirects_to_a_local_next(browser: Browser) -> None:
    browser.login()
    nav = {"sec-fetch-site": "same-origin", "origin": "", "x-csrf-token": ""}
    response = browser.get("/auth/refresh?next=/account", headers=nav, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/account"
    evil = browser.get("/auth/refresh?next=//evil.example/", headers=nav, follow_redirects=False)
    assert evil.status_code == 303 and evil.headers["location"] == "/"
    cross = browser.get("/auth/refresh?next=/", headers={"sec-fetch-site": "cross-site"})
    assert cross.status_code == 403


def test_a_refresh_without_a_refresh_token_is_401_and_clears_cookies(client: Any) -> None:
    response = client.post("/auth/refresh", headers={"sec-fetch-site": "same-origin"})
    assert response.status_code == 401
    assert all("Max-Age=0" in c for c in response.headers.get_list("set-cookie"))


# -- signing out ---------------------------------------------------------------------------------


def test_logout_clears_the_cookies_and_the_token_fails_at_once(browser: Browser) -> None:
    login = browser.login()
    access = cookies_set(login)["__Host-ss-access"].split(";")[0].split("=", 1)[1]
    response = browser.post("/auth/logout")
    assert response.status_code == 200
    assert response.headers["clear-site-data"] == '"cache", "cookies", "storage"'
    assert all("Max-Age=0" in c for c in response.headers.get_list("set-cookie"))
    again = browser.get("/api/me", headers={"authorization": f"Bearer {access}"})
    assert again.status_code == 401  # on this node, before the feed brings the revocation
    assert 'error_description="revoked"' in again.headers["www-authenticate"]


def test_the_sessions_list_marks_the_current_one(client: Any) -> None:
    laptop, phone = Browser(client), Browser(client)
    laptop.login(device="laptop")
    phone.login(device="phone")
    listed = laptop.get("/auth/sessions").json()["sessions"]
    assert [(s["device"], s["current"]) for s in listed] == [("laptop", True), ("phone", False)]


def test_deleting_one_session_only_works_for_the_callers_own(client: Any) -> None:
    laptop, phone, bob = Browser(client), Browser(client), Browser(client)
    laptop.login()
    phone_sid = phone.login().json()["session_id"]
    bob_sid = bob.login("bob").json()["session_id"]
    assert laptop.request("DELETE", f"/auth/sessions/{bob_sid}").status_code == 404
    assert laptop.request("DELETE", "/auth/sessions/not-a-sid").status_code == 404
    assert laptop.request("DELETE", f"/auth/sessions/{phone_sid}").status_code == 200
    assert phone.get("/api/me").status_code == 401
    assert bob.get("/api/me").status_code == 200


def test_revoke_others_and_logout_all(client: Any) -> None:
    laptop, phone = Browser(client), Browser(client)
    laptop.login()
    phone.login()
    assert laptop.post("/auth/sessions/revoke-others").json() == {"signed_out": 1}
    assert phone.get("/api/me").status_code == 401
    assert laptop.get("/api/me").status_code == 200
    assert laptop.post("/auth/logout-all").json() == {"signed_out": 1}
    assert laptop.get("/api/me").status_code == 401


def test_the_auth_endpoints_answer_only_their_methods(client: Any) -> None:
    assert client.options("/auth/login").status_code == 405  # (CORS off: no preflight)
    assert client.get("/auth/login").status_code == 405
    assert client.put("/auth/refresh").status_code == 405
    assert client.get("/auth/logout").status_code == 405


def test_jwks_publishes_public_access_keys_only(client: Any) -> None:
    keys = client.get("/.well-known/jwks.json").json()["keys"]
    assert keys and all("d" not in k and "k" not in k for k in keys)
    assert {k["kid"] for k in keys} == {"web-access"}


# -- CORS, logs ------------------------------------------------------------------------------


def test_cors_answers_listed_origins_only(adapter: Any, redis_url: str) -> None:
    preflight = {"access-control-request-method": "POST"}
    with adapter.open(redis_url, {"cors_origins": ["https://spa.example.com"]}) as w:
        c = w.client
        ok = c.options("/api/me", headers={"origin": "https://spa.example.com", **preflight})
        assert ok.status_code == 204
        assert ok.headers["access-control-allow-origin"] == "https://spa.example.com"
        assert ok.headers["access-control-allow-credentials"] == "true"
        other = c.options("/api/me", headers={"origin": "https://evil.example", **preflight})
        assert "access-control-allow-origin" not in other.headers
        plain = c.get("/.well-known/jwks.json", headers={"origin": "https://spa.example.com"})
        assert plain.headers["access-control-allow-origin"] == "https://spa.example.com"


def test_cors_is_off_by_default(client: Any) -> None:
    response = client.get("/.well-known/jwks.json", headers={"origin": "https://spa.example.com"})
    assert not [h for h in response.headers if h.startswith("access-control-")]


def test_a_token_in_the_url_never_reaches_our_logs(
    browser: Browser, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    token = browser.login(transport="bearer").json()["access_token"]
    assert browser.get(f"/api/me?access_token={token}").status_code == 400
    captured = capsys.readouterr()
    assert token not in captured.out + captured.err + caplog.text


# -- malformed and hostile input (found in review) -----------------------------------------------


def test_a_non_ascii_next_is_percent_encoded_and_the_session_keeps_working(
    browser: Browser,
) -> None:
    browser.login()
    nav = {"sec-fetch-site": "same-origin", "origin": "", "x-csrf-token": ""}
    response = browser.get("/auth/refresh?next=/%E4%B8%AD", headers=nav, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/%E4%B8%AD"
    assert browser.post("/auth/refresh").status_code == 200  # the new cookies arrived


def test_a_planted_refresh_cookie_is_never_taken_for_ours(client: Any) -> None:
    alice, bob = Browser(client), Browser(client)
    alice.login()
    bob.login("bob")
    planted = f"__Secure-ss-refresh={bob.cookie('__Secure-ss-refresh')}"
    own = (
        f"__Secure-ss-refresh={alice.cookie('__Secure-ss-refresh')}; "
        f"__Host-ss-csrf={alice.cookie('__Host-ss-csrf')}"
    )
    headers = {"cookie": f"{planted}; {own}", "sec-fetch-site": "same-origin"}
    client.cookies = httpx.Cookies()
    swapped = client.get("/auth/refresh?next=/", headers=headers, follow_redirects=False)
    assert swapped.status_code == 303
    access = next(c for c in swapped.headers.get_list("set-cookie") if "ss-access" in c)
    me = client.get("/api/me", headers={"cookie": access.split(";")[0]})
    assert me.json()["sub"] == "alice"  # not bob's session


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", "/api/me?" + "&".join(["a=1"] * 300), {}),
        (
            "POST",
            "/auth/login",
            {"content": b"[" * 15000, "headers": {"content-type": "application/json"}},
        ),
        (
            "POST",
            "/auth/login",
            {
                "content": b'{"username": "a", "password": "\\ud800"}',
                "headers": {"content-type": "application/json"},
            },
        ),
        (
            "POST",
            "/auth/login",
            {
                "content": b'{"username": "alice", "password": "x", "device": "\\ud800"}',
                "headers": {"content-type": "application/json"},
            },
        ),
        (
            "POST",
            "/auth/login",
            {"content": b"username=a", "headers": {"content-type": "text/plain"}},
        ),
    ],
)
def test_malformed_requests_are_4xx(
    browser: Browser, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    headers = kwargs.pop("headers", {})
    response = browser.request(method, path, headers=headers, **kwargs)
    assert 400 <= response.status_code < 500, response.text


def test_a_chunked_body_over_the_limit_is_413(browser: Browser) -> None:
    def chunks() -> Any:
        for _ in range(64):
            yield b"a" * 1024

    headers = {"content-type": "application/x-www-form-urlencoded"}
    response = browser.request("POST", "/auth/login", content=chunks(), headers=headers)
    assert response.status_code == 413


def test_the_endpoint_can_read_the_body_the_csrf_check_read(browser: Browser) -> None:
    browser.login()
    token, browser.csrf = browser.csrf, None
    response = browser.post("/api/echo", json={"csrf_token": token, "x": 1})
    assert response.status_code == 200 and response.json()["x"] == 1


def test_an_unusual_method_is_treated_as_unsafe(browser: Browser) -> None:
    browser.login()
    token, browser.csrf = browser.csrf, None
    assert browser.request("PURGE", "/api/purge").status_code == 403
    browser.csrf = token
    assert browser.request("PURGE", "/api/purge").json() == {"sub": "alice"}


def _multipart(parts: list[tuple[str, str | None, str]]) -> tuple[bytes, dict[str, str]]:
    boundary = "sessionsvc-test-boundary"
    body = ""
    for name, filename, value in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n{value}\r\n"
    body += f"--{boundary}--\r\n"
    return body.encode(), {"content-type": f"multipart/form-data; boundary={boundary}"}


def test_login_takes_a_multipart_form_without_files(browser: Browser) -> None:
    fields = [("username", None, "alice"), ("password", None, "alice-password")]
    content, headers = _multipart(fields)
    assert browser.post("/auth/login", content=content, headers=headers).status_code == 200
    content, headers = _multipart([*fields, ("upload", "a.txt", "hello")])
    refused = browser.post("/auth/login", content=content, headers=headers)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_request"
    content, headers = _multipart([*fields, *((f"f{i}", None, "x") for i in range(31))])
    assert browser.post("/auth/login", content=content, headers=headers).status_code == 400
