"""The public API (``sessionsvc.__all__``) on bad input: every method raises a ``SessionError``
(never a bare ``ValueError``, ``TypeError`` or ``KeyError``), before any I/O."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from conftest import make_settings

from sessionsvc import (
    AsyncPublisher,
    AsyncSessionService,
    ConfigError,
    EventRejected,
    KeyRing,
    Publisher,
    Revocation,
    SessionError,
    SessionNotFound,
    SessionService,
    TokenIssuer,
    TokenRejected,
    Validator,
    generate_jwk,
    generate_jwks,
    load_jwks,
    load_settings,
)
from sessionsvc.errors import ClaimsNotJSON, InvalidArgument


class NoRedis:
    """A client no test may reach: every bad call must fail before I/O."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"redis reached: {name}")


S = make_settings("EdDSA", app_claims=["role"])
BAD: dict[str, tuple[type[SessionError], Callable[[], object]]] = {}


def bad(name: str, expected: type[SessionError], call: Callable[[], object]) -> None:
    BAD[name] = (expected, call)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


issuer = TokenIssuer(S)
validator = Validator(S)
sessions = SessionService(S, redis=NoRedis(), issuer=issuer)  # type: ignore[arg-type]
asessions = AsyncSessionService(S, redis=NoRedis(), issuer=issuer)  # type: ignore[arg-type]
publisher = Publisher(S, client=NoRedis())  # type: ignore[arg-type]
apublisher = AsyncPublisher(S, client=NoRedis())  # type: ignore[arg-type]
FUTURE = time.time() + 1e6

bad("load_settings: not a number", ConfigError, lambda: load_settings(leeway="x"))
bad("load_settings: not JSON", ConfigError, lambda: load_settings(app_claims="[x"))
bad("load_jwks: not JSON", ConfigError, lambda: load_jwks("{", ring="access"))
bad("load_jwks: not a str", ConfigError, lambda: load_jwks(5, ring="access"))  # type: ignore[arg-type]
bad(
    "load_jwks: bad point",
    ConfigError,
    lambda: load_jwks(
        json.dumps({"keys": [generate_jwk("ES256", "k") | {"x": "AAAA"}]}), ring="access"
    ),
)
bad("KeyRing: empty", ConfigError, lambda: KeyRing("access", []))
bad("generate_jwk: alg", InvalidArgument, lambda: generate_jwk("none"))
bad("generate_jwks: alg", InvalidArgument, lambda: generate_jwks("XX"))
bad(
    "TokenIssuer: shared ring", ConfigError, lambda: TokenIssuer(S, refresh_keys=issuer.access_keys)
)
bad("access_token: empty sub", InvalidArgument, lambda: issuer.access_token("", "s"))
bad("access_token: sub not str", InvalidArgument, lambda: issuer.access_token(5, "s"))  # type: ignore[arg-type]
bad(
    "access_token: claim not JSON",
    ClaimsNotJSON,
    lambda: issuer.access_token("u", "s", {"role": object()}),
)
bad(
    "access_token: claim NaN",
    InvalidArgument,
    lambda: issuer.access_token("u", "s", {"role": float("nan")}),
)
bad("refresh_token: bad sid", InvalidArgument, lambda: issuer.refresh_token("u", "\x00"))
bad("issue: empty sub", InvalidArgument, lambda: issuer.issue(""))
bad("validate: None", TokenRejected, lambda: validator.validate(None))  # type: ignore[arg-type]
bad("validate: unhashable", TokenRejected, lambda: validator.validate([]))  # type: ignore[arg-type]
bad("validate: not ASCII", TokenRejected, lambda: validator.validate(b"\xff.a.b"))  # type: ignore[arg-type]
bad("validate: garbage", TokenRejected, lambda: validator.validate("a.b.c"))
bad("Revocation: kind", EventRejected, lambda: Revocation("nope", "x"))  # type: ignore[arg-type]
bad("Revocation: value not str", EventRejected, lambda: Revocation("session", 5))  # type: ignore[arg-type]
bad("Revocation: all with value", EventRejected, lambda: Revocation("all", "x"))
bad("Revocation: before not number", EventRejected, lambda: Revocation("user", "u", before="1"))  # type: ignore[arg-type]
bad("Revocation: until NaN", EventRejected, lambda: Revocation("token", "t", until=float("nan")))
for prefix, svc, wrap in (("", sessions, lambda x: x), ("async ", asessions, run)):
    bad(
        f"{prefix}login: empty sub", InvalidArgument, lambda svc=svc, wrap=wrap: wrap(svc.login(""))
    )
    bad(
        f"{prefix}login: sub not str",
        InvalidArgument,
        lambda svc=svc, wrap=wrap: wrap(svc.login(5)),
    )
    bad(
        f"{prefix}login: ip not str",
        InvalidArgument,
        lambda svc=svc, wrap=wrap: wrap(svc.login("u", ip=5)),
    )
    bad(
        f"{prefix}login: claim",
        SessionError,
        lambda svc=svc, wrap=wrap: wrap(svc.login("u", claims={"admin": 1})),
    )
    bad(
        f"{prefix}login: claim not JSON",
        ClaimsNotJSON,  # also a TypeError, as json.dumps raised before
        lambda svc=svc, wrap=wrap: wrap(svc.login("u", claims={"role": object()})),
    )
    bad(
        f"{prefix}refresh: garbage",
        TokenRejected,
        lambda svc=svc, wrap=wrap: wrap(svc.refresh("x")),
    )
    bad(f"{prefix}refresh: None", TokenRejected, lambda svc=svc, wrap=wrap: wrap(svc.refresh(None)))
    bad(
        f"{prefix}logout: not a sid",
        SessionNotFound,
        lambda svc=svc, wrap=wrap: wrap(svc.logout("x")),
    )
    bad(f"{prefix}logout: None", SessionNotFound, lambda svc=svc, wrap=wrap: wrap(svc.logout(None)))
    bad(
        f"{prefix}logout_all: empty sub",
        InvalidArgument,
        lambda svc=svc, wrap=wrap: wrap(svc.logout_all("")),
    )
    bad(
        f"{prefix}list_sessions: sub",
        InvalidArgument,
        lambda svc=svc, wrap=wrap: wrap(svc.list_sessions("\x00")),
    )
    bad(
        f"{prefix}get_session: not a sid",
        SessionNotFound,
        lambda svc=svc, wrap=wrap: wrap(svc.get_session(5)),
    )
for prefix, pub, wrap in (("", publisher, lambda x: x), ("async ", apublisher, run)):
    bad(
        f"{prefix}revoke_session: empty",
        EventRejected,
        lambda pub=pub, wrap=wrap: wrap(pub.revoke_session("")),
    )
    bad(
        f"{prefix}revoke_session: unknown member",
        EventRejected,
        lambda pub=pub, wrap=wrap: wrap(pub.revoke_session("s", bogus=1)),
    )
    bad(
        f"{prefix}revoke_session: control char",
        EventRejected,
        lambda pub=pub, wrap=wrap: wrap(pub.revoke_session("s", reason="\x00")),
    )
    bad(
        f"{prefix}revoke_user: negative before",
        EventRejected,
        lambda pub=pub, wrap=wrap: wrap(pub.revoke_user("u", before=-1)),
    )
    bad(
        f"{prefix}revoke_user: before not a time",
        EventRejected,
        lambda pub=pub, wrap=wrap: wrap(pub.revoke_user("u", before="soon")),
    )
    bad(
        f"{prefix}revoke_token: exp NaN",
        EventRejected,
        lambda pub=pub, wrap=wrap: wrap(pub.revoke_token("t", exp=float("nan"))),
    )
    bad(
        f"{prefix}revoke_all: future",
        EventRejected,
        lambda pub=pub, wrap=wrap: wrap(pub.revoke_all(before=FUTURE)),
    )
    bad(
        f"{prefix}revoke_all: infinite",
        EventRejected,
        lambda pub=pub, wrap=wrap: wrap(pub.revoke_all(before=float("inf"))),
    )
    bad(
        f"{prefix}revoke_key: empty",
        EventRejected,
        lambda pub=pub, wrap=wrap: wrap(pub.revoke_key("")),
    )
bad(
    "Publisher: bad intake name",
    InvalidArgument,
    lambda: Publisher(S, client=NoRedis(), intake="no way"),
)  # type: ignore[arg-type]
bad("Publisher: intake not str", InvalidArgument, lambda: Publisher(S, client=NoRedis(), intake=5))  # type: ignore[arg-type]
bad(
    "AsyncPublisher: reserved intake",
    InvalidArgument,
    lambda: AsyncPublisher(S, client=NoRedis(), intake="dlq"),
)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", BAD)
def test_bad_input_raises_a_session_error(name: str) -> None:
    expected, call = BAD[name]
    with pytest.raises(SessionError) as info:
        call()
    assert isinstance(info.value, expected), repr(info.value)
