"""sessionsvc.integrations.web.cookies: the exact Set-Cookie headers, clearing, reading, and the
start-up check of the cookie configuration."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import AUDIENCE, ISSUER

from sessionsvc.config.settings import Settings
from sessionsvc.errors import ConfigError, InvalidArgument
from sessionsvc.integrations.web.config import WebSettings
from sessionsvc.integrations.web.cookies import CookiePolicy
from sessionsvc.tokens.issuer import TokenPair

pytestmark = pytest.mark.usefixtures("clean_env")

SECRET = "csrf-key-" + "k" * 32
PAIR = TokenPair("aaa.bbb.ccc", "ddd.eee.fff", "sid-1", 900, 604800)
CSRF = "v1.Zm9vYmFy"
PLAIN = {"access_cookie": "ss-access", "refresh_cookie": "ss-refresh", "csrf_cookie": "ss-csrf"}


def policy(env: str = "development", **web: Any) -> CookiePolicy:
    settings = Settings(issuer=ISSUER, audience=AUDIENCE, env=env, _env_file=None)
    return CookiePolicy(WebSettings(_env_file=None, **web), settings)


def cookies(headers: list[tuple[str, str]]) -> list[str]:
    return [value for name, value in headers if name == "set-cookie"]


def refusal(env: str = "development", **web: Any) -> str:
    with pytest.raises(ConfigError) as info:
        policy(env, **web).check()
    return str(info.value)


# --- set_tokens ------------------------------------------------------------------------------


def test_set_tokens_renders_the_default_cookies_exactly() -> None:
    assert policy().set_tokens(PAIR, CSRF) == [
        (
            "set-cookie",
            "__Host-ss-access=aaa.bbb.ccc; Max-Age=900; Path=/; Secure; HttpOnly; SameSite=Lax",
        ),
        (
            "set-cookie",
            "__Secure-ss-refresh=ddd.eee.fff; Max-Age=604800; Path=/auth/refresh; Secure; "
            "HttpOnly; SameSite=Strict",
        ),
        ("set-cookie", "__Host-ss-csrf=v1.Zm9vYmFy; Max-Age=604800; Path=/; Secure; SameSite=Lax"),
        ("cache-control", "no-store"),
    ]


def test_max_age_follows_the_pairs_lifetimes() -> None:
    pair = TokenPair("a.b.c", "d.e.f", "sid-1", 300, 3600)
    access, refresh, csrf = cookies(policy().set_tokens(pair, CSRF))
    assert "; Max-Age=300;" in access
    assert "; Max-Age=3600;" in refresh
    assert "; Max-Age=3600;" in csrf  # the CSRF cookie outlives the access tokens


def test_domain_and_insecure_cookies_keep_the_attribute_order() -> None:
    headers = policy(cookie_domain="example.test", cookie_secure=False, **PLAIN).set_tokens(
        PAIR, CSRF
    )
    assert cookies(headers)[0] == (
        "ss-access=aaa.bbb.ccc; Max-Age=900; Path=/; Domain=example.test; HttpOnly; SameSite=Lax"
    )


@pytest.mark.parametrize(
    ("prefix", "path"), [("/api/auth", "/api/auth/refresh"), ("/a", "/a/refresh")]
)
def test_the_refresh_cookie_is_scoped_to_the_refresh_endpoint(prefix: str, path: str) -> None:
    p = policy(prefix=prefix)
    assert p.refresh_path == path
    assert f"; Path={path};" in cookies(p.set_tokens(PAIR, CSRF))[1]


def test_samesite_is_capitalised_and_shared_by_access_and_csrf() -> None:
    access, refresh, csrf = cookies(
        policy(access_samesite="strict", refresh_samesite="lax").set_tokens(PAIR, CSRF)
    )
    assert access.endswith("SameSite=Strict") and csrf.endswith("SameSite=Strict")
    assert refresh.endswith("SameSite=Lax")


@pytest.mark.parametrize(
    "value", ["secret;value", "secret value", "secret\r\nvalue", "secr\u00e9t", "secret=v", ""]
)
def test_a_value_outside_base64url_is_refused_without_echo(value: str) -> None:
    pair = TokenPair(value, "d.e.f", "sid-1", 900, 3600)
    with pytest.raises(InvalidArgument) as info:
        policy().set_tokens(pair, CSRF)
    assert "secret" not in str(info.value)


def test_a_csrf_value_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(InvalidArgument):
        policy().set_tokens(PAIR, 12345)  # type: ignore[arg-type]


def test_a_cookie_longer_than_browsers_keep_is_refused() -> None:
    pair = TokenPair("a" * 4096, "d.e.f", "sid-1", 900, 3600)
    with pytest.raises(InvalidArgument, match="longer"):
        policy().set_tokens(pair, CSRF)


@pytest.mark.parametrize("lifetime", [0, -1, True, 1.5])
def test_a_lifetime_that_is_not_a_positive_int_is_refused(lifetime: Any) -> None:
    with pytest.raises(InvalidArgument, match="lifetime"):
        policy().set_tokens(TokenPair("a.b.c", "d.e.f", "sid-1", lifetime, 3600), CSRF)


# --- clear and read --------------------------------------------------------------------------


def test_clear_expires_each_cookie_with_the_attributes_it_was_set_with() -> None:
    p = policy(cookie_domain="example.test", **PLAIN)
    pairs = zip(cookies(p.set_tokens(PAIR, CSRF)), cookies(p.clear(False)), strict=True)
    for set_value, cleared in pairs:
        name, _, value = set_value.split("; ")[0].partition("=")
        assert value and cleared.split("; ")[:2] == [f"{name}=", "Max-Age=0"]
        assert cleared.split("; ")[2:] == set_value.split("; ")[2:]  # Path, Domain, flags


def test_clear_is_not_cached() -> None:
    assert ("cache-control", "no-store") in policy().clear(False)


def test_clear_with_site_data_sends_the_quoted_directives() -> None:
    assert policy().clear(True)[-1] == ("clear-site-data", '"cache", "cookies", "storage"')


def test_clear_without_site_data_sends_no_clear_site_data() -> None:
    assert all(name != "clear-site-data" for name, _ in policy().clear(False))


def test_clear_site_data_follows_the_configured_directives() -> None:
    assert policy(clear_site_data=("cache", "storage")).clear(True)[-1] == (
        "clear-site-data",
        '"cache", "storage"',
    )


def test_an_empty_clear_site_data_setting_sends_no_header() -> None:
    assert all(name != "clear-site-data" for name, _ in policy(clear_site_data=()).clear(True))


def test_read_returns_access_refresh_and_csrf() -> None:
    jar = {"__Host-ss-access": "a", "__Secure-ss-refresh": "r", "__Host-ss-csrf": "c", "x": "y"}
    assert policy().read(jar) == ("a", "r", "c")


def test_read_gives_none_for_absent_or_empty_cookies() -> None:
    assert policy().read({"__Host-ss-access": ""}) == (None, None, None)


# --- check: refusals -------------------------------------------------------------------------


@pytest.mark.parametrize("env", ["development", "production"])
def test_a_host_cookie_with_a_domain_is_refused_everywhere(env: str) -> None:
    message = refusal(env, cookie_domain="example.test", csrf_secret=SECRET)
    assert "SESSIONSVC_WEB_ACCESS_COOKIE" in message and "SESSIONSVC_WEB_COOKIE_DOMAIN" in message


@pytest.mark.parametrize("env", ["development", "production"])
def test_a_host_cookie_on_the_refresh_path_is_refused_everywhere(env: str) -> None:
    message = refusal(env, refresh_cookie="__Host-ss-refresh", csrf_secret=SECRET)
    assert "SESSIONSVC_WEB_REFRESH_COOKIE" in message and "Path=/" in message


def test_the_host_prefix_is_recognised_in_any_case() -> None:
    assert "SESSIONSVC_WEB_REFRESH_COOKIE" in refusal(refresh_cookie="__HOST-ss-refresh")


@pytest.mark.parametrize("name", ["__Secure-x", "__Host-x"])
def test_a_prefixed_cookie_without_secure_is_refused_even_in_development(name: str) -> None:
    message = refusal(cookie_secure=False, **{**PLAIN, "csrf_cookie": name})
    assert "SESSIONSVC_WEB_CSRF_COOKIE" in message and "SESSIONSVC_WEB_COOKIE_SECURE" in message


def test_samesite_none_without_secure_is_refused_even_in_development() -> None:
    message = refusal(cookie_secure=False, access_samesite="none", **PLAIN)
    assert "SESSIONSVC_WEB_ACCESS_SAMESITE" in message


def test_insecure_cookies_are_refused_outside_development() -> None:
    message = refusal("production", cookie_secure=False, csrf_secret=SECRET, **PLAIN)
    assert "SESSIONSVC_WEB_COOKIE_SECURE: must be on outside development" in message


@pytest.mark.parametrize("field", ["access_samesite", "refresh_samesite"])
def test_samesite_none_is_refused_outside_development(field: str) -> None:
    message = refusal("production", csrf_secret=SECRET, **{field: "none"})
    assert f"SESSIONSVC_WEB_{field.upper()}: none" in message


def test_a_missing_csrf_secret_is_refused_outside_development() -> None:
    assert "SESSIONSVC_WEB_CSRF_SECRET" in refusal("production")


def test_every_problem_is_named_at_once() -> None:
    message = refusal("production", cookie_secure=False, **PLAIN)
    assert "COOKIE_SECURE" in message and "CSRF_SECRET" in message


def test_a_refusal_never_quotes_the_secret() -> None:
    assert "kkkk" not in refusal("production", cookie_secure=False, csrf_secret=SECRET, **PLAIN)


@pytest.mark.parametrize(
    ("web", "variable"),
    [
        ({"access_cookie": "a;b"}, "SESSIONSVC_WEB_ACCESS_COOKIE"),
        ({"csrf_cookie": ""}, "SESSIONSVC_WEB_CSRF_COOKIE"),
        ({"csrf_cookie": "__Host-ss-access"}, "must differ"),
        ({"cookie_domain": "example.test; Secure"}, "SESSIONSVC_WEB_COOKIE_DOMAIN"),
        ({"clear_site_data": ('cookies", "x',)}, "SESSIONSVC_WEB_CLEAR_SITE_DATA"),
    ],
)
def test_unrenderable_settings_are_refused_when_the_policy_is_built(
    web: dict[str, Any], variable: str
) -> None:
    with pytest.raises(ConfigError, match=variable):
        policy(**web)


# --- check: warnings -------------------------------------------------------------------------


def test_the_production_defaults_with_a_secret_pass_without_warnings() -> None:
    assert policy("production", csrf_secret=SECRET).check() == []


@pytest.mark.parametrize("env", ["development", "production"])
def test_a_cookie_domain_is_allowed_with_a_warning(env: str) -> None:
    names = {**PLAIN, "refresh_cookie": "__Secure-ss-refresh"}  # __Secure- allows a Domain
    warnings = policy(env, cookie_domain="example.test", csrf_secret=SECRET, **names).check()
    domain = [w for w in warnings if "SESSIONSVC_WEB_COOKIE_DOMAIN" in w]
    assert len(domain) == 1 and "Clear-Site-Data" in domain[0]
    assert [w for w in warnings if w not in domain] == [
        f"SESSIONSVC_WEB_{var}_COOKIE has no __Host-/__Secure- prefix: another host of the site "
        "can plant or overwrite it"
        for var in ("ACCESS", "CSRF")
    ]


def test_development_without_a_csrf_secret_warns() -> None:
    assert any("SESSIONSVC_WEB_CSRF_SECRET" in w for w in policy().check())


def test_development_allows_insecure_cookies_with_a_warning() -> None:
    warnings = policy(cookie_secure=False, csrf_secret=SECRET, **PLAIN).check()
    assert warnings[0] == "SESSIONSVC_WEB_COOKIE_SECURE is off: the cookies travel over plain http"
    assert all("no __Host-/__Secure- prefix" in w for w in warnings[1:])


@pytest.mark.parametrize("var", ["cors_origins", "trusted_sites", "origins"])
def test_http_origins_are_refused_outside_development(var: str) -> None:
    with pytest.raises(ConfigError, match=f"SESSIONSVC_WEB_{var.upper()}"):
        policy("production", csrf_secret=SECRET, **{var: ["http://app.example.test"]}).check()
    assert (
        policy("development", csrf_secret=SECRET, **{var: ["http://app.example.test"]}).check()
        is not None
    )


def test_development_allows_samesite_none_with_a_warning() -> None:
    warnings = policy(refresh_samesite="none", csrf_secret=SECRET).check()
    assert warnings == ["SameSite=None: the cookies are sent on cross-site requests"]
