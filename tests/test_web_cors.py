"""sessionsvc.integrations.web.cors: an explicit allow-list with credentials, off by default."""

from __future__ import annotations

from typing import Any

import pytest

from sessionsvc.errors import ConfigError
from sessionsvc.integrations.web.cors import CorsPolicy, normalise_origin
from sessionsvc.integrations.web.http import WebRequest

SPA = "https://spa.example.test"
CORS = CorsPolicy((SPA,))


def request(method: str = "GET", **headers: str) -> WebRequest:
    """Keyword headers use ``_`` for ``-``."""
    found = {name.replace("_", "-"): value for name, value in headers.items()}
    return WebRequest(method, "/auth/refresh", headers=found, origin="https://api.example.test")


def preflight(origin: str = SPA) -> WebRequest:
    return request("OPTIONS", origin=origin, access_control_request_method="POST")


# --- off by default --------------------------------------------------------------------------


def test_an_empty_list_disables_cors() -> None:
    assert not CorsPolicy(()).enabled
    assert CORS.enabled


def test_disabled_cors_adds_no_headers() -> None:
    assert CorsPolicy(()).headers(request(origin=SPA)) == []


def test_disabled_cors_answers_no_preflight() -> None:
    assert CorsPolicy(()).preflight(preflight()) is None


# --- actual requests -------------------------------------------------------------------------


def test_a_listed_origin_gets_its_own_origin_and_credentials() -> None:
    assert CORS.headers(request(origin=SPA)) == [
        ("access-control-allow-origin", SPA),
        ("access-control-allow-credentials", "true"),
        ("vary", "Origin"),
    ]


def test_an_unlisted_origin_gets_only_vary() -> None:
    assert CORS.headers(request(origin="https://evil.test")) == [("vary", "Origin")]


def test_a_request_without_origin_gets_only_vary() -> None:
    assert CORS.headers(request()) == [("vary", "Origin")]


@pytest.mark.parametrize("origin", ["HTTPS://SPA.Example.Test", "https://spa.EXAMPLE.test"])
def test_scheme_and_host_are_compared_case_insensitively(origin: str) -> None:
    assert CORS.allows(origin)


@pytest.mark.parametrize(
    "origin",
    [
        SPA + ":443",
        SPA + ":8443",
        "http://spa.example.test",
        SPA + "/",
        "null",
        "*",
        f"{SPA}, {SPA}",
    ],
)
def test_anything_but_the_exact_origin_is_not_allowed(origin: str) -> None:
    assert not CORS.allows(origin)


def test_the_port_is_compared_exactly() -> None:
    cors = CorsPolicy(("http://localhost:5173",))
    assert cors.allows("http://localhost:5173") and not cors.allows("http://localhost:5174")


# --- preflight -------------------------------------------------------------------------------


def test_a_listed_origins_preflight_is_allowed_with_credentials() -> None:
    response = CORS.preflight(preflight())
    assert response is not None
    assert (response.status, response.body) == (204, None)
    assert response.headers == [
        ("access-control-allow-origin", SPA),
        ("access-control-allow-credentials", "true"),
        ("access-control-allow-methods", "GET, POST, DELETE"),
        ("access-control-allow-headers", "content-type, x-csrf-token, authorization"),
        ("access-control-max-age", "600"),
        ("vary", "Origin"),
    ]


def test_an_unlisted_origins_preflight_gets_no_allow_headers() -> None:
    response = CORS.preflight(preflight("https://evil.test"))
    assert response is not None
    assert (response.status, response.headers) == (204, [("vary", "Origin")])


@pytest.mark.parametrize(
    "req",
    [
        request("OPTIONS", origin=SPA),  # no Access-Control-Request-Method
        request("OPTIONS", access_control_request_method="POST"),  # no Origin
        request("POST", origin=SPA, access_control_request_method="POST"),
    ],
)
def test_a_request_that_is_not_a_preflight_gets_none(req: WebRequest) -> None:
    assert CORS.preflight(req) is None


def test_methods_headers_and_max_age_can_be_chosen() -> None:
    cors = CorsPolicy((SPA,), methods=("get", "put"), headers=("X-Custom",), max_age=60)
    response = cors.preflight(preflight())
    assert response is not None
    assert response.get("access-control-allow-methods") == ["GET, PUT"]
    assert response.get("access-control-allow-headers") == ["x-custom"]
    assert response.get("access-control-max-age") == ["60"]


# --- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize("origin", ["*", "null", SPA + "/", "spa.example.test", "ftp://x.test"])
def test_an_origin_that_is_not_scheme_host_port_is_refused(origin: str) -> None:
    with pytest.raises(ConfigError, match="SESSIONSVC_WEB_CORS_ORIGINS"):
        CorsPolicy((origin,))


@pytest.mark.parametrize(
    "options",
    [{"methods": ("GET\r\nX: y",)}, {"headers": ("a b",)}, {"max_age": -1}, {"max_age": "600"}],
)
def test_methods_headers_and_max_age_are_checked(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        CorsPolicy((SPA,), **options)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("HTTPS://Example.Test:8443", "https://example.test:8443"),
        ("http://[::1]:8000", "http://[::1]:8000"),
        ("https://example.test/path", None),
        (None, None),
    ],
)
def test_normalise_origin(value: object, expected: str | None) -> None:
    assert normalise_origin(value) == expected
