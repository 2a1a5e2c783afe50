"""The lazy header and cookie views: the same answers as a copied dict, nothing more."""

from __future__ import annotations

import pytest

from sessionsvc.integrations.web.headers import EnvironHeaders, LazyCookies, ScopeHeaders
from sessionsvc.integrations.web.http import WebRequest

ENVIRON = {
    "REQUEST_METHOD": "POST",
    "CONTENT_TYPE": "application/json",
    "CONTENT_LENGTH": "",
    "HTTP_AUTHORIZATION": "Bearer abc",
    "HTTP_X_CSRF_TOKEN": "v1.x",
    "HTTP_COOKIE": "a=1",
    "wsgi.input": object(),
}


def test_environ_headers_read_lower_case_names_in_place() -> None:
    headers = EnvironHeaders(ENVIRON)
    assert headers["authorization"] == "Bearer abc"
    assert headers.get("x-csrf-token") == "v1.x"
    assert headers.get("content-type") == "application/json"
    assert dict(headers) == {
        "content-type": "application/json",
        "authorization": "Bearer abc",
        "x-csrf-token": "v1.x",
    }


@pytest.mark.parametrize("name", ["cookie", "x_csrf_token", "content-length", "request-method"])
def test_environ_headers_never_answer_cookies_underscores_empty_or_cgi_keys(name: str) -> None:
    assert name not in EnvironHeaders(ENVIRON)


RAW = [
    (b"host", b"app.example"),
    (b"accept", b"text/html"),
    (b"Accept", b"application/json"),  # (a non-conforming server's capitals: still found)
    (b"cookie", b"a=1"),
]


def test_scope_headers_join_repeated_names_and_hide_the_cookie() -> None:
    headers = ScopeHeaders(RAW)
    assert headers["accept"] == "text/html, application/json"
    assert "cookie" not in headers and "authorization" not in headers
    assert list(headers) == ["host", "accept"] and len(headers) == 2


def test_lazy_cookies_parse_once_first_value_winning() -> None:
    cookies = LazyCookies("a=1; b=2; a=3")
    assert cookies._parsed is None
    assert cookies["a"] == "1" and dict(cookies) == {"a": "1", "b": "2"}
    assert cookies._parsed is not None


def test_the_origin_is_computed_only_when_asked() -> None:
    calls: list[int] = []

    def origin() -> str:
        calls.append(1)
        return "https://app.example"

    req = WebRequest("GET", "/", origin_of=origin)
    assert calls == []
    assert req.app_origin() == "https://app.example" and calls == [1]
    assert WebRequest("GET", "/", origin="https://given", origin_of=origin).app_origin() == (
        "https://given"
    )
