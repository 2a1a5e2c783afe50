"""ReceiverCore: the IdP push endpoints' statuses and error shapes, with a fake intake (pure)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sessionsvc.errors import IdpKeysUnavailable, IdpTokenRejected, StoreUnavailable
from workers.receiver import ReceiverCore, Response

TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lkcCJ9.c2lnbmF0dXJl"
FORM = "application/x-www-form-urlencoded"
SET = "application/secevent+jwt"


class FakeIntake:
    """Records what it is handed; raises ``error`` if set."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.calls: list[tuple[Any, ...]] = []

    def backchannel_logout(self, logout_token: str) -> None:
        self.calls.append(("logout", logout_token))
        if self.error:
            raise self.error

    def security_event(self, set_token: str, authorization: str | None) -> None:
        self.calls.append(("set", set_token, authorization))
        if self.error:
            raise self.error


def core(error: Exception | None = None, **kw: Any) -> tuple[ReceiverCore, FakeIntake, list[Any]]:
    intake, seen = FakeIntake(error), []
    receiver = ReceiverCore(intake, observe=lambda *a: seen.append(a), **kw)
    return receiver, intake, seen


def post(receiver: ReceiverCore, path: str, body: bytes, ctype: str, **headers: str) -> Response:
    all_headers = {"Content-Type": ctype, "Content-Length": str(len(body)), **headers}
    return receiver.handle("POST", path, all_headers, body)


def logout(receiver: ReceiverCore, body: bytes, ctype: str = FORM) -> Response:
    return post(receiver, "/backchannel-logout", body, ctype)


def push(receiver: ReceiverCore, body: bytes = TOKEN.encode(), ctype: str = SET) -> Response:
    return post(receiver, "/ssf/events", body, ctype, Authorization="Bearer s3cret")


def as_json(response: Response) -> Any:
    assert response.headers["Content-Type"] == "application/json"
    return json.loads(response.body)


def rejected(code: str) -> IdpTokenRejected:
    return IdpTokenRejected(code, "expired", "the token expired")  # type: ignore[arg-type]


# -- Back-Channel Logout ------------------------------------------------------------------------


def test_a_logout_token_is_handed_over_and_answered_200_empty() -> None:
    receiver, intake, seen = core()
    response = logout(receiver, f"logout_token={TOKEN}&state=ignored".encode())
    assert (response.status, response.body) == (200, b"")
    assert intake.calls == [("logout", TOKEN)]
    assert seen == [("backchannel_logout", "accepted", "ok")]


def test_a_charset_parameter_is_allowed_on_the_form() -> None:
    receiver, intake, _ = core()
    response = logout(receiver, f"logout_token={TOKEN}".encode(), f"{FORM}; charset=UTF-8")
    assert response.status == 200 and intake.calls


@pytest.mark.parametrize(
    "body", [b"state=x", b"logout_token=", f"logout_token={TOKEN}&logout_token={TOKEN}".encode()]
)
def test_a_missing_empty_or_repeated_logout_token_is_invalid_request(body: bytes) -> None:
    receiver, intake, seen = core()
    response = logout(receiver, body)
    assert response.status == 400 and intake.calls == []
    assert as_json(response)["error"] == "invalid_request"
    assert seen == [("backchannel_logout", "bad_request", "token_count")]


@pytest.mark.parametrize(
    "body", [b"logout_token", b"a=1&&logout_token=x", b"logout_token=%ff", "é".encode()]
)
def test_a_body_that_is_not_a_strict_form_is_invalid_request(body: bytes) -> None:
    receiver, intake, _ = core()
    response = logout(receiver, body)
    assert response.status == 400 and intake.calls == []
    assert as_json(response) == {
        "error": "invalid_request",
        "error_description": "the body is not a valid form",
    }


def test_too_many_form_fields_are_invalid_request() -> None:
    receiver, intake, _ = core()
    body = "&".join(f"f{i}=1" for i in range(40)) + f"&logout_token={TOKEN}"
    assert logout(receiver, body.encode()).status == 400 and intake.calls == []


def test_a_rejected_logout_token_is_400_with_error_and_error_description() -> None:
    receiver, _, seen = core(rejected("invalid_audience"))
    response = logout(receiver, f"logout_token={TOKEN}".encode())
    assert response.status == 400
    assert as_json(response) == {
        "error": "invalid_audience",
        "error_description": "the token expired",
    }
    assert seen == [("backchannel_logout", "refused", "expired")]


# -- Shared Signals push (RFC 8935) -------------------------------------------------------------


def test_a_set_is_handed_over_with_the_authorization_and_answered_202_empty() -> None:
    receiver, intake, seen = core()
    response = push(receiver)
    assert (response.status, response.body) == (202, b"")
    assert intake.calls == [("set", TOKEN, "Bearer s3cret")]
    assert seen == [("ssf_events", "accepted", "ok")]


def test_a_set_without_authorization_is_handed_over_with_none() -> None:
    receiver, intake, _ = core()
    body = TOKEN.encode()
    receiver.handle(
        "POST", "/ssf/events", {"content-type": SET, "content-length": str(len(body))}, body
    )
    assert intake.calls == [("set", TOKEN, None)]


@pytest.mark.parametrize(
    "body", [b"not a token", b"a.b", b"a.b.c.d", TOKEN.encode() + b"\n", "é.a.b".encode()]
)
def test_a_body_that_is_not_a_compact_jws_is_invalid_request(body: bytes) -> None:
    receiver, intake, _ = core()
    response = push(receiver, body)
    assert response.status == 400 and intake.calls == []
    assert as_json(response)["err"] == "invalid_request"


@pytest.mark.parametrize(
    "code",
    ["invalid_request", "invalid_key", "invalid_issuer", "invalid_audience", "access_denied"],
)
def test_a_rejected_set_is_400_with_err_and_description(code: str) -> None:
    receiver, _, seen = core(rejected(code))
    response = push(receiver)
    assert response.status == 400  # RFC 8935 §2.3, access_denied included (never 403)
    assert as_json(response) == {"err": code, "description": "the token expired"}
    assert response.headers["Content-Language"] == "en"
    assert "WWW-Authenticate" not in response.headers
    assert seen == [("ssf_events", "refused", "expired")]


def test_authentication_failed_is_400_and_advertises_the_bearer_scheme() -> None:
    receiver, _, _ = core(rejected("authentication_failed"))
    response = push(receiver)
    assert response.status == 400  # RFC 8935 §2.3, not 401
    assert as_json(response)["err"] == "authentication_failed"
    assert response.headers["WWW-Authenticate"] == "Bearer"


# -- both routes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "reason"),
    [(IdpKeysUnavailable("jwks down"), "keys"), (StoreUnavailable("redis down"), "store")],
)
def test_keys_or_store_unavailable_is_503_with_retry_after(error: Exception, reason: str) -> None:
    receiver, _, seen = core(error, retry_after=7)
    bcl, ssf = logout(receiver, f"logout_token={TOKEN}".encode()), push(receiver)
    assert (bcl.status, ssf.status) == (503, 503)
    assert bcl.headers["Retry-After"] == ssf.headers["Retry-After"] == "7"
    assert as_json(bcl)["error"] == as_json(ssf)["err"] == "temporarily_unavailable"
    assert seen == [
        ("backchannel_logout", "unavailable", reason),
        ("ssf_events", "unavailable", reason),
    ]


def test_another_path_is_404() -> None:
    receiver, intake, seen = core()
    response = post(receiver, "/backchannel-logout/x", b"", FORM)
    assert response.status == 404 and intake.calls == []
    assert as_json(response)["error"] == "invalid_request"
    assert seen == [("unknown", "bad_request", "not_found")]


def test_a_query_string_does_not_change_the_route() -> None:
    receiver, intake, _ = core()
    assert post(receiver, "/ssf/events?x=1", TOKEN.encode(), SET).status == 202 and intake.calls


@pytest.mark.parametrize(
    ("path", "member"), [("/backchannel-logout", "error"), ("/ssf/events", "err")]
)
def test_another_method_is_405_with_allow_post(path: str, member: str) -> None:
    receiver, intake, _ = core()
    response = receiver.handle("GET", path, {}, b"")
    assert response.status == 405 and response.headers["Allow"] == "POST"
    assert member in as_json(response) and intake.calls == []


@pytest.mark.parametrize(("path", "ctype"), [("/backchannel-logout", SET), ("/ssf/events", FORM)])
def test_the_wrong_content_type_is_415(path: str, ctype: str) -> None:
    receiver, intake, _ = core()
    assert post(receiver, path, b"logout_token=x", ctype).status == 415 and intake.calls == []


@pytest.mark.parametrize(
    "ctype", ["", f"{FORM}; charset=latin-1", f"{FORM}; boundary=x", "text/plain"]
)
def test_other_content_types_or_parameters_are_415(ctype: str) -> None:
    receiver, _, seen = core()
    assert logout(receiver, b"logout_token=x", ctype).status == 415
    assert seen == [("backchannel_logout", "bad_request", "media_type")]


def test_a_body_over_max_body_is_413() -> None:
    receiver, intake, _ = core(max_body=64)
    response = push(receiver, b"a." * 40 + b"b")
    assert response.status == 413 and as_json(response)["err"] == "invalid_request"
    assert intake.calls == []


def test_a_declared_length_over_max_body_is_413_without_the_body() -> None:
    receiver, _, _ = core(max_body=64)
    headers = {"Content-Type": SET, "Content-Length": "1000000"}
    assert receiver.body_length(headers) is None
    assert receiver.handle("POST", "/ssf/events", headers, b"").status == 413


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": SET},
        {"Content-Type": SET, "Transfer-Encoding": "chunked", "Content-Length": "3"},
    ],
)
def test_no_content_length_or_a_chunked_body_is_411(headers: dict[str, str]) -> None:
    receiver, _, _ = core()
    assert receiver.body_length(headers) is None
    assert receiver.handle("POST", "/ssf/events", headers, b"").status == 411


@pytest.mark.parametrize("length", ["-1", "1e3", "5, 5", "５", "99999999999999"])
def test_an_invalid_content_length_is_400(length: str) -> None:
    receiver, _, _ = core()
    headers = {"Content-Type": SET, "Content-Length": length}
    assert receiver.body_length(headers) is None
    assert receiver.handle("POST", "/ssf/events", headers, b"").status == 400


def test_a_body_shorter_than_its_content_length_is_400() -> None:
    receiver, _, _ = core()
    headers = {"Content-Type": SET, "Content-Length": "100"}
    assert receiver.handle("POST", "/ssf/events", headers, TOKEN.encode()).status == 400


def test_headers_are_matched_whatever_their_case() -> None:
    receiver, intake, _ = core()
    headers = {"CONTENT-TYPE": SET, "content-LENGTH": str(len(TOKEN)), "AUTHORIZATION": "Bearer x"}
    assert receiver.handle("POST", "/ssf/events", headers, TOKEN.encode()).status == 202
    assert intake.calls == [("set", TOKEN, "Bearer x")]


def test_busy_is_503_with_retry_after() -> None:
    receiver, _, seen = core()
    response = receiver.busy()
    assert response.status == 503 and response.headers["Retry-After"] == "5"
    assert seen == [("unknown", "unavailable", "busy")]


def every_response() -> list[Response]:
    return [
        logout(core()[0], f"logout_token={TOKEN}".encode()),
        push(core()[0]),
        push(core(rejected("invalid_key"))[0]),
        logout(core(StoreUnavailable("down"))[0], f"logout_token={TOKEN}".encode()),
        post(core()[0], "/nope", b"", FORM),
        logout(core()[0], b"x", "text/plain"),
        core()[0].busy(),
    ]


@pytest.mark.parametrize("response", every_response(), ids=lambda r: str(r.status))
def test_every_response_is_no_store_nosniff_and_never_echoes_the_token(response: Response) -> None:
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert ("Content-Type" in response.headers) == bool(response.body)
    assert b"eyJ" not in response.body and b"s3cret" not in response.body
