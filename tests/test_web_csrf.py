"""sessionsvc.integrations.web.csrf: signed double-submit tokens bound to the session, Fetch
Metadata first, Origin/Referer as the fallback."""

from __future__ import annotations

import re
from typing import Any

import pytest
from conftest import AUDIENCE, ISSUER

from sessionsvc.config.settings import Settings
from sessionsvc.errors import ConfigError, InvalidArgument
from sessionsvc.integrations.web.config import WebSettings
from sessionsvc.integrations.web.csrf import VARY, CsrfPolicy, CsrfTokens
from sessionsvc.integrations.web.http import Problem, WebRequest

pytestmark = pytest.mark.usefixtures("clean_env")

KEY = b"k" * 32
SID = "Ses5i0n-Id_0123456789a"
OWN = "https://app.example.test"
SIBLING = "https://admin.example.test"
TOKENS = CsrfTokens(KEY)
TOKEN = TOKENS.issue(SID)


def web(**values: Any) -> WebSettings:
    return WebSettings(_env_file=None, **values)


def settings(env: str) -> Settings:
    return Settings(issuer=ISSUER, audience=AUDIENCE, env=env, _env_file=None)


def request(
    method: str = "POST",
    *,
    token: str | None = TOKEN,
    cookie: str | None = TOKEN,
    form: dict[str, Any] | None = None,
    **headers: str,
) -> WebRequest:
    """A request to ``OWN``; keyword headers use ``_`` for ``-``."""
    found = {name.replace("_", "-"): value for name, value in headers.items()}
    if token is not None:
        found["x-csrf-token"] = token
    jar = {} if cookie is None else {"__Host-ss-csrf": cookie}
    return WebRequest(method, "/api/thing", headers=found, cookies=jar, origin=OWN, form=form)


def refused(req: WebRequest, policy: CsrfPolicy | None = None, sid: str = SID) -> str:
    with pytest.raises(Problem) as info:
        (policy or CsrfPolicy(web(), TOKENS)).check(req, sid)
    assert (info.value.status, info.value.code) == (403, "csrf")
    return info.value.description


def passes(req: WebRequest, policy: CsrfPolicy | None = None) -> None:
    (policy or CsrfPolicy(web(), TOKENS)).check(req, SID)


# --- CsrfTokens ------------------------------------------------------------------------------


def test_a_token_is_v1_and_a_base64url_hmac_sha256() -> None:
    assert re.fullmatch(r"v1\.[A-Za-z0-9_-]{43}", TOKEN)


def test_a_token_is_the_same_on_every_call_for_one_session() -> None:
    assert CsrfTokens(KEY).issue(SID) == TOKENS.issue(SID) == TOKEN


def test_tokens_differ_between_sessions() -> None:
    assert TOKENS.issue(SID + "x") != TOKEN


def test_tokens_differ_between_keys() -> None:
    assert CsrfTokens(b"j" * 32).issue(SID) != TOKEN


def test_a_sessions_own_token_is_valid() -> None:
    assert TOKENS.valid(TOKEN, SID)


def test_another_sessions_token_is_not_valid() -> None:
    assert not TOKENS.valid(TOKENS.issue("other-session"), SID)


def test_a_token_of_another_key_is_not_valid() -> None:
    assert not TOKENS.valid(CsrfTokens(b"j" * 32).issue(SID), SID)


def test_an_altered_token_is_not_valid() -> None:
    forged = TOKEN[:-1] + ("A" if TOKEN[-1] != "A" else "B")
    assert not TOKENS.valid(forged, SID)


@pytest.mark.parametrize(
    "token",
    [
        None,
        1,
        b"v1.x",
        ["v1."],
        "",
        "v1.",
        "v2." + TOKEN[3:],
        TOKEN + "=",
        "v1.\u00e9" * 3,
        "x" * 129,
    ],
)
def test_malformed_tokens_are_not_valid_and_do_not_raise(token: object) -> None:
    assert not TOKENS.valid(token, SID)


@pytest.mark.parametrize("sid", [None, 7, "", "\ud800"])
def test_a_bad_session_id_is_not_valid_and_does_not_raise(sid: object) -> None:
    assert not TOKENS.valid(TOKEN, sid)


@pytest.mark.parametrize("sid", [None, ""])
def test_issuing_for_a_bad_session_id_is_refused(sid: Any) -> None:
    with pytest.raises(InvalidArgument):
        TOKENS.issue(sid)


@pytest.mark.parametrize("key", [b"short", "k" * 32])
def test_a_short_or_text_key_is_refused(key: Any) -> None:
    with pytest.raises(InvalidArgument, match="32 bytes"):
        CsrfTokens(key)


def test_for_settings_uses_the_configured_secret() -> None:
    tokens = CsrfTokens.for_settings(web(csrf_secret="s" * 32), settings("production"))
    assert tokens.issue(SID) == CsrfTokens(b"s" * 32).issue(SID)


def test_for_settings_in_development_uses_one_random_key_per_process() -> None:
    first = CsrfTokens.for_settings(web(), settings("development"))
    second = CsrfTokens.for_settings(web(), settings("development"))
    assert first.issue(SID) == second.issue(SID) != TOKEN


def test_for_settings_outside_development_needs_the_secret() -> None:
    with pytest.raises(ConfigError, match="SESSIONSVC_WEB_CSRF_SECRET"):
        CsrfTokens.for_settings(web(), settings("production"))


# --- check_origin: Fetch Metadata ------------------------------------------------------------


def test_a_cross_site_request_is_refused() -> None:
    assert refused(request(sec_fetch_site="cross-site")) == "cross-site request refused"


def test_a_same_site_request_is_refused_by_default() -> None:
    assert "untrusted" in refused(request(sec_fetch_site="same-site", origin=SIBLING))


def test_a_same_site_request_from_a_trusted_site_passes() -> None:
    policy = CsrfPolicy(web(trusted_sites=(SIBLING,)), TOKENS)
    passes(request(sec_fetch_site="same-site", origin=SIBLING), policy)


def test_a_same_site_request_from_another_sibling_is_refused() -> None:
    policy = CsrfPolicy(web(trusted_sites=(SIBLING,)), TOKENS)
    refused(request(sec_fetch_site="same-site", origin="https://blog.example.test"), policy)


@pytest.mark.parametrize("site", ["same-origin", "none", "Same-Origin"])
def test_same_origin_and_user_initiated_requests_pass(site: str) -> None:
    passes(request(sec_fetch_site=site, origin="https://evil.test"))  # Fetch Metadata decides


def test_an_unknown_sec_fetch_site_is_refused() -> None:
    refused(request(sec_fetch_site="same-planet"))


# --- check_origin: Origin and Referer, without Fetch Metadata --------------------------------


@pytest.mark.parametrize("origin", [OWN, "HTTPS://App.Example.Test"])
def test_the_requests_own_origin_passes(origin: str) -> None:
    passes(request(origin=origin))


def test_a_configured_own_origin_passes() -> None:
    policy = CsrfPolicy(web(origins=("https://www.example.test",)), TOKENS)
    passes(request(origin="https://www.example.test"), policy)


def test_a_trusted_site_passes_by_origin() -> None:
    passes(request(origin=SIBLING), CsrfPolicy(web(trusted_sites=(SIBLING,)), TOKENS))


@pytest.mark.parametrize(
    "origin", ["https://evil.test", "http://app.example.test", OWN + ":8443", OWN + "/", "x"]
)
def test_a_mismatching_origin_is_refused(origin: str) -> None:
    assert refused(request(origin=origin)) == "cross-origin request refused (Origin)"


def test_origin_null_is_refused() -> None:
    assert "Origin: null" in refused(request(origin="null"))


def test_without_origin_a_matching_referer_passes() -> None:
    passes(request(referer=OWN + "/page?q=1"))


@pytest.mark.parametrize(
    "referer", ["https://evil.test/page", "https://user@app.example.test/", "/relative", "http://["]
)
def test_without_origin_a_mismatching_referer_is_refused(referer: str) -> None:
    assert refused(request(referer=referer)) == "cross-origin request refused (Referer)"


def test_without_origin_or_referer_the_request_is_not_from_a_browser_and_passes() -> None:
    passes(request())


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
def test_safe_methods_are_never_refused(method: str) -> None:
    passes(request(method, token=None, cookie=None, sec_fetch_site="cross-site"))


# --- check: the double-submit token ----------------------------------------------------------


def test_a_token_in_the_header_that_matches_the_cookie_passes() -> None:
    passes(request(sec_fetch_site="same-origin"))


def test_a_missing_token_is_refused() -> None:
    assert refused(request(token=None)) == "CSRF token missing"


def test_a_missing_cookie_is_refused() -> None:
    assert refused(request(cookie=None)) == "CSRF cookie missing"


def test_a_forged_token_is_refused_even_when_the_cookie_agrees() -> None:
    forged = "v1." + "A" * 43
    assert refused(request(token=forged, cookie=forged)) == "CSRF token not valid for this session"


def test_another_sessions_token_is_refused() -> None:
    other = TOKENS.issue("other-session")
    assert refused(request(token=other, cookie=other)) == "CSRF token not valid for this session"


def test_a_token_in_the_form_field_passes() -> None:
    passes(request(token=None, form={"csrf_token": TOKEN}))


def test_the_header_wins_over_the_form_field() -> None:
    refused(request(token="v1.wrong", form={"csrf_token": TOKEN}))


def test_a_header_that_disagrees_with_the_cookie_is_refused() -> None:
    other = TOKENS.issue("other-session")
    assert refused(request(cookie=other)) == "CSRF token does not match its cookie"


@pytest.mark.parametrize("value", [12345, None, ["v1."], {"t": 1}, "\u00e9"])
def test_a_form_token_of_the_wrong_type_is_refused_without_raising(value: object) -> None:
    refused(request(token=None, form={"csrf_token": value}))


def test_the_origin_is_checked_before_the_token() -> None:
    assert refused(request(sec_fetch_site="cross-site")) == "cross-site request refused"


def test_the_vary_header_names_what_the_answer_depends_on() -> None:
    assert VARY == ("vary", "Sec-Fetch-Site, Origin")
