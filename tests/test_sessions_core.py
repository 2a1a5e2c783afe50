"""The pure session core: ids, key names, script arguments and reply decoding (no Redis)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from conftest import ManualClock, make_settings
from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot

from sessionsvc import (
    RefreshReuseDetected,
    SessionError,
    SessionInfo,
    SessionNotFound,
    Settings,
    TokenIssuer,
    TokenPair,
    TokenRejected,
    Validator,
)
from sessionsvc._redis.run import Command
from sessionsvc._redis.scripts import SCRIPTS
from sessionsvc.errors import InvalidArgument
from sessionsvc.revocation.events import Lifetimes
from sessionsvc.sessions.cluster import ClusterSteps
from sessionsvc.sessions.core import Call, SessionCore
from sessionsvc.sessions.keys import MAX_SUB_BYTES, SessionKeys, new_session_id, sub_of, user_tag
from sessionsvc.sessions.single import OneRedis
from sessionsvc.tokens.claims import id_claim_problem

subs = st.text(min_size=1).filter(lambda s: 0 < len(s.encode("utf-8", "surrogatepass")) <= 128)


@given(subs.filter(lambda sub: id_claim_problem(sub) is None))
def test_session_id_carries_its_sub(sub: str) -> None:
    sid = new_session_id(sub)
    assert sub_of(sid) == sub
    assert len(sid) <= 256  # a sid claim may hold at most 256 characters
    keys = SessionKeys("ss")
    slots = {key_slot(k.encode()) for k in (keys.index(sub), keys.session(sub, sid))}
    assert len(slots) == 1


def test_user_tag_is_key_safe() -> None:
    for sub in ("a}b", "{rev}", "a:b", "x" * MAX_SUB_BYTES):
        assert set(user_tag(sub)) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        )
    with pytest.raises(ValueError):
        user_tag("x" * (MAX_SUB_BYTES + 1))
    with pytest.raises(ValueError):
        user_tag("")
    with pytest.raises(ValueError):
        user_tag("\ud800")


@pytest.mark.parametrize(
    "junk",
    [
        None,
        42,
        "",
        "abc",
        "YWxpY2U",
        "YWxpY2U.short",
        "YWxpY2U=.AAAAAAAAAAAAAAAAAAAAAA",
        "YWxpY2V.AAAAAAAAAAAAAAAAAAAAAA",
        "_w.AAAAAAAAAAAAAAAAAAAAAA",
        "YWxpY2U.AAAAAAAAAAAAAAAAAAAAAA.x",
    ],
)
def test_sub_of_refuses_what_is_not_ours(junk: Any) -> None:
    with pytest.raises(SessionNotFound):
        sub_of(junk)


def test_keys_layout() -> None:
    keys = SessionKeys("app1")
    tag = "YWxpY2U"  # base64url of "alice", unpadded
    assert keys.index("alice") == f"app1:{{u:{tag}}}:idx"
    assert keys.session("alice", "S") == f"app1:{{u:{tag}}}:s:S"
    assert keys.rev.all() == [
        f"app1:{{rev}}:{n}"
        for n in ("sid", "jti", "user", "user:until", "all", "kid", "log", "epoch")
    ]
    assert len({key_slot(k.encode()) for k in keys.rev.all()}) == 1


@pytest.fixture
def core(clock: ManualClock) -> SessionCore:
    return SessionCore(make_settings("HS256"), clock=clock)


def drive(op: Any, *replies: Any) -> tuple[list[Call], Any]:
    """Run an operation generator against canned replies; return its calls and its result."""
    calls = [next(op)]
    for reply in replies:
        try:
            calls.append(op.send(reply))
        except StopIteration as done:
            return calls, done.value
    raise AssertionError("the operation wanted more calls than replies given")


def test_login_call_and_result(core: SessionCore, clock: ManualClock) -> None:
    calls, pair = drive(core.login("alice", ip="192.0.2.1", claims={"roles": ["a"]}), [b"ok"])
    [call] = calls
    assert call.script == "login"
    assert call.keys == [
        *[core.keys.rev.key(n) for n in ("user", "all", "sid", "log", "epoch")],
        core.keys.index("alice"),
        core.keys.session("alice", pair.session_id),
    ]
    assert call.args[:3] == [str(int(clock.now)), "alice", pair.session_id]
    assert json.loads(call.args[11]) == {"roles": ["a"]}
    assert isinstance(pair, TokenPair)
    claims = Validator(core.settings, clock=clock).validate(pair.access_token)
    assert claims["roles"] == ("a",) and claims["sid"] == pair.session_id


def test_login_retries_when_superseded_then_gives_up(core: SessionCore, clock: ManualClock) -> None:
    op = core.login("alice")
    next(op)
    op.send([b"superseded", str(clock.now - 1).encode()])  # a race: our clock is past it
    op.send([b"superseded", str(clock.now + 1).encode()])
    with pytest.raises(SessionError, match="attempts"):
        op.send([b"superseded", str(clock.now + 2).encode()])


def test_a_superseded_login_signs_again_as_of_the_cutoff(
    core: SessionCore, clock: ManualClock
) -> None:
    cutoff = clock.now + 20.25
    calls, pair = drive(core.login("alice"), [b"superseded", str(cutoff).encode()], [b"ok"])
    again = calls[1]
    assert again.args[0] == again.args[4] == str(int(clock.now) + 21)  # created, iat: ceil
    claims = Validator(core.settings, clock=clock).validate(pair.access_token)
    assert claims["iat"] == int(clock.now) + 21 and claims["sid"] == again.args[2]


def test_a_cutoff_beyond_the_leeway_refuses_the_login_at_once(
    core: SessionCore, clock: ManualClock
) -> None:
    op = core.login("alice")
    next(op)
    with pytest.raises(SessionError, match="leeway"):
        op.send([b"superseded", str(clock.now + core.settings.leeway + 1).encode()])


def test_login_refuses_bad_input_before_any_io(core: SessionCore) -> None:
    from sessionsvc import ClaimNotAllowed

    with pytest.raises(ClaimNotAllowed):
        next(core.login("alice", claims={"sub": "admin"}))
    with pytest.raises(ValueError):
        next(core.login("alice", device=b"bytes"))  # type: ignore[arg-type]
    _, pair = drive(core.login("alice", user_agent="U" * 5000), [b"ok"])
    assert pair.session_id


@pytest.mark.parametrize("sub", ["\u200b", "a\nb", "\x00", "\u2028", "x" * 200])
def test_login_refuses_a_sub_the_validator_would_reject_before_any_io(
    core: SessionCore, sub: str
) -> None:
    with pytest.raises(ValueError, match=r"^sub "):
        next(core.login(sub))


@pytest.mark.parametrize("sub", ["\u200b", "a\nb", "\x00"])
def test_user_tag_refuses_unprintable_subs(sub: str) -> None:
    with pytest.raises(ValueError, match="unprintable"):
        user_tag(sub)


def _refresh_reply(issuer: TokenIssuer, settings: Settings, clock: ManualClock) -> tuple[str, str]:
    sid = new_session_id("alice")
    token = issuer.refresh_token("alice", sid, jti="J" * 22, now=int(clock.now))
    return sid, token


@pytest.mark.parametrize(
    ("reply", "error", "reason"),
    [
        ([b"missing"], TokenRejected, "revoked"),
        ([b"revoked", b"user"], TokenRejected, "revoked"),
        ([b"expired"], TokenRejected, "expired"),
        ([b"reuse"], RefreshReuseDetected, "revoked"),
        ([b"ahead", b"9999999999"], SessionError, None),
    ],
)
def test_refresh_failures(
    core: SessionCore,
    clock: ManualClock,
    reply: list[bytes],
    error: type[SessionError],
    reason: str | None,
) -> None:
    _, token = _refresh_reply(core.issuer, core.settings, clock)
    op = core.refresh(token)
    call = next(op)
    assert call.script == "refresh" and call.args[2] == "J" * 22
    with pytest.raises(error) as info:
        op.send(reply)
    assert getattr(info.value, "reason", None) == reason


@pytest.mark.parametrize("alg", ["EdDSA", "HS256"])
def test_overlap_answer_re_signs_the_identical_token(alg: str, clock: ManualClock) -> None:
    core = SessionCore(make_settings(alg), clock=clock)
    sid = new_session_id("alice")
    current = core.issuer.refresh_token(
        "alice", sid, jti="C" * 22, exp=int(clock.now) + 500, now=int(clock.now)
    )
    previous = core.issuer.refresh_token("alice", sid, jti="P" * 22, now=int(clock.now) - 5)
    clock.now += 3
    reply = [
        b"ok",
        b"alice",
        b'{"roles":["x"]}',
        b"C" * 22,
        str(int(clock.now) - 3).encode(),
        str(int(clock.now) + 497).encode(),
        b"0",
    ]
    _, pair = drive(core.refresh(previous), reply)
    assert pair.refresh_token == current  # deterministic signatures: the client's copy, again
    assert pair.refresh_expires_in == 497
    claims = Validator(core.settings, clock=clock).validate(pair.access_token)
    assert (claims["roles"], claims["iat"]) == (("x",), int(clock.now))


def test_refresh_drops_claims_no_longer_allowed(clock: ManualClock) -> None:
    core = SessionCore(make_settings("HS256", app_claims=("scope",)), clock=clock)
    _, token = _refresh_reply(core.issuer, core.settings, clock)
    claims_json = b'{"roles":["admin"],"scope":"s"}'
    reply = [b"ok", b"alice", claims_json, b"J" * 22, b"1", b"9999999999", b"0"]
    _, pair = drive(core.refresh(token), reply)
    claims = Validator(core.settings, clock=clock).validate(pair.access_token)
    assert "roles" not in claims and claims["scope"] == "s"


def test_refresh_token_living_longer_than_refresh_ttl_is_bad_lifetime(
    core: SessionCore, clock: ManualClock
) -> None:
    sid, now, ttl = new_session_id("alice"), int(clock.now), core.settings.refresh_ttl
    too_long = core.issuer.refresh_token("alice", sid, exp=now + ttl + 1, now=now)
    with pytest.raises(TokenRejected) as info:
        next(core.refresh(too_long))
    assert info.value.reason == "bad_lifetime"
    exactly = core.issuer.refresh_token("alice", sid, exp=now + ttl, now=now)
    assert next(core.refresh(exactly)).script == "refresh"


def test_a_refresh_behind_a_cutoff_signs_the_access_token_as_of_it(
    core: SessionCore, clock: ManualClock
) -> None:
    _, token = _refresh_reply(core.issuer, core.settings, clock)
    cutoff = str(clock.now + 20.5).encode()
    reply = [b"ok", b"alice", b"{}", b"J" * 22, b"1", b"9999999999", cutoff]
    calls, pair = drive(core.refresh(token), reply)
    assert calls[0].args[-1] == str(core.settings.leeway)
    claims = Validator(core.settings, clock=clock).validate(pair.access_token)
    assert claims["iat"] == int(clock.now) + 21


def test_refresh_rejects_a_sid_of_another_user(core: SessionCore, clock: ManualClock) -> None:
    token = core.issuer.refresh_token("bob", new_session_id("alice"))
    with pytest.raises(TokenRejected) as info:
        next(core.refresh(token))
    assert info.value.reason == "malformed"
    token = core.issuer.refresh_token("bob", "not-a-session-id")
    with pytest.raises(TokenRejected):
        next(core.refresh(token))


def test_logout_calls(core: SessionCore, clock: ManualClock) -> None:
    sid = new_session_id("alice")
    calls, ended = drive(core.logout(sid, reason="admin"), [1, b"1-1"])
    assert ended is True and calls[0].script == "logout"
    assert calls[0].args == [
        str(int(clock.now)),
        sid,
        str(int(clock.now) + 900 + 2 * 30),  # the access tokens of the session (Lifetimes)
        calls[0].args[3],
        "admin",
        "sessionsvc",
        "",
        "0",  # no budget: the session service's logouts are never capped
    ]
    calls, count = drive(core.logout_all("alice"), [3, b"1800000000", b""])
    assert count == 3 and calls[0].keys[-1] == core.keys.index("alice")
    assert calls[0].args[2] == str(int(clock.now)) and calls[0].args[3] == "960"
    assert calls[0].args[-2:] == ["0", "0"]  # no budget, no clamp


def test_session_info_decoding(core: SessionCore) -> None:
    flat = [
        b"sub",
        b"alice",
        b"sid",
        b"S",
        b"created",
        b"10",
        b"last_seen",
        b"12.5",
        b"idle_exp",
        b"100",
        b"abs_exp",
        b"50",
        b"ip",
        b"",
        b"ua",
        "é".encode(),
        b"device",
        b"phone",
        b"cur",
        b"J",
    ]
    info = SessionInfo.from_hash(flat)
    assert info == SessionInfo("S", "alice", 10.0, 12.5, 50.0, 100.0, 50.0, None, "é", "phone")
    assert SessionInfo.from_hash([x.decode() for x in flat]) == info
    assert info.as_dict()["expires_at"] == 50.0
    _, infos = drive(core.list_sessions("alice"), [flat, flat])
    assert infos == [info, info]
    with pytest.raises(SessionNotFound):
        drive(core.get_session(new_session_id("alice")), None)


def test_listing_needs_no_signing_keys(clock: ManualClock) -> None:
    settings = Settings(issuer="i", audience="a", _env_file=None)  # type: ignore[call-arg]
    core = SessionCore(settings, clock=clock)
    assert next(core.list_sessions("alice")).script == "list"
    assert next(core.logout(new_session_id("alice"))).script == "logout"


def test_the_cluster_setting_picks_the_single_slot_steps() -> None:
    assert isinstance(SessionCore(make_settings()).redis, OneRedis)
    assert isinstance(SessionCore(make_settings(redis_cluster=True)).redis, ClusterSteps)
    assert isinstance(SessionCore(make_settings(), cluster=True).redis, ClusterSteps)


# -- identity providers' sessions ----------------------------------------------------------------

IDP, IDP_SID = "https://idp.example.test", "idp-session-1"


def test_a_login_recording_an_idp_session_indexes_it_before_the_login(
    core: SessionCore, clock: ManualClock
) -> None:
    op = core.login("alice", idp_issuer=IDP, idp_sid=IDP_SID)
    calls, pair = drive(op, [1], [b"ok"])
    first, login = calls
    ttl = (core.settings.absolute_timeout + Lifetimes.of(core.settings).longest_access) * 1000
    assert first == Call("login_idp", [core.keys.idp(IDP, IDP_SID)], [pair.session_id, str(ttl)])
    assert login.script == "login" and login.args[2] == pair.session_id
    named = dict(zip(SCRIPTS["login"].argv.fields, login.args, strict=True))
    assert (named["idp_iss"], named["idp_sid"]) == (IDP, IDP_SID)


def test_a_login_without_an_idp_session_is_its_one_call(core: SessionCore) -> None:
    calls, _ = drive(core.login("alice"), [b"ok"])
    [login] = calls
    named = dict(zip(SCRIPTS["login"].argv.fields, login.args, strict=True))
    assert login.script == "login" and (named["idp_iss"], named["idp_sid"]) == ("", "")


def test_a_superseded_login_indexes_each_attempts_sid(
    core: SessionCore, clock: ManualClock
) -> None:
    cutoff = str(clock.now + 0.5).encode()
    op = core.login("alice", idp_issuer=IDP, idp_sid=IDP_SID)
    calls, pair = drive(op, [1], [b"superseded", cutoff], [1], [b"ok"])
    assert [c.script for c in calls] == ["login_idp", "login", "login_idp", "login"]
    assert calls[0].args[0] == calls[1].args[2] != pair.session_id  # the first sid: no session
    assert calls[2].args[0] == calls[3].args[2] == pair.session_id


def test_the_idp_index_key_hashes_the_pair_into_a_slot_of_its_own() -> None:
    keys = SessionKeys("app1")
    key = keys.idp(IDP, IDP_SID)
    digest = hashlib.sha256(f"{IDP}\n{IDP_SID}".encode()).hexdigest()[:32]
    assert key == f"app1:idp:{{{digest}}}"
    assert keys.idp("a", "b:c") != keys.idp("a:b", "c")
    assert key_slot(key.encode()) == key_slot(digest.encode())
    assert key_slot(key.encode()) != key_slot(keys.index("alice").encode())


BAD_IDP: list[dict[str, Any]] = [
    {"idp_issuer": IDP},  # one without the other
    {"idp_sid": IDP_SID},
    {"idp_issuer": "", "idp_sid": IDP_SID},
    {"idp_issuer": IDP, "idp_sid": ""},
    {"idp_issuer": IDP, "idp_sid": "x" * 257},
    {"idp_issuer": "i" * 257, "idp_sid": IDP_SID},
    {"idp_issuer": IDP, "idp_sid": "a\nb"},
    {"idp_issuer": "https://idp\x00", "idp_sid": IDP_SID},
    {"idp_issuer": IDP, "idp_sid": "\x7f"},
    {"idp_issuer": IDP, "idp_sid": "\ud800"},  # a lone surrogate: no UTF-8 for it
    {"idp_issuer": IDP, "idp_sid": 42},
]


@pytest.mark.parametrize("kwargs", BAD_IDP)
def test_a_login_refuses_a_bad_idp_session_before_any_io(
    core: SessionCore, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(InvalidArgument):
        next(core.login("alice", **kwargs))


@pytest.mark.parametrize("kwargs", [k for k in BAD_IDP if len(k) == 2])
def test_a_look_up_refuses_a_bad_idp_session_before_any_io(
    core: SessionCore, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(InvalidArgument):
        next(core.idp_sessions(kwargs["idp_issuer"], kwargs["idp_sid"]))


def test_the_longest_idp_fields_are_taken(core: SessionCore) -> None:
    calls, _ = drive(core.login("alice", idp_issuer="i" * 256, idp_sid="é" * 256), [1], [b"ok"])
    assert [c.script for c in calls] == ["login_idp", "login"]


def test_a_look_up_answers_the_members_that_are_session_ids(core: SessionCore) -> None:
    a, b = new_session_id("alice"), new_session_id("bob")
    calls, found = drive(core.idp_sessions(IDP, IDP_SID), {b.encode(), b"junk", a.encode()})
    assert calls == [Command(("SMEMBERS", core.keys.idp(IDP, IDP_SID)))]
    assert found == sorted([a, b])


def test_session_info_decodes_the_idp_session() -> None:
    flat = ["sub", "alice", "sid", "S", "created", "1", "last_seen", "1", "idle_exp", "9"]
    flat += ["abs_exp", "9", "idp_iss", IDP, "idp_sid", IDP_SID]
    info = SessionInfo.from_hash(flat)
    assert (info.idp_issuer, info.idp_sid) == (IDP, IDP_SID)
    assert info.as_dict()["idp_sid"] == IDP_SID


def test_on_a_cluster_the_idp_index_is_the_first_step(clock: ManualClock) -> None:
    core = SessionCore(make_settings("HS256"), clock=clock, cluster=True)
    op = core.login("alice", idp_issuer=IDP, idp_sid=IDP_SID)
    first = next(op)
    assert (first.script, first.keys) == ("login_idp", [core.keys.idp(IDP, IDP_SID)])
    assert op.send(1).script == "rev_read"  # then the login's own steps
