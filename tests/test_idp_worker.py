"""Identity providers' tokens through a running worker (``workers.idp_entries``): from the
trusted and the idp intakes into the session service's logouts and the apply path, once per
jti, judged as of their entry's time; the validators reject what they ended."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from idp_harness import RECEIVER_TOKEN, TestIdp, consumed, ended, idps_setting, post
from revocation_harness import (
    claims_of,
    dead_letters,
    feed_settings,
    following,
    outcome,
    raw_client,
    running_worker,
    wait_for,
)

from sessionsvc import Settings
from sessionsvc.idp.model import CREDENTIAL_CHANGE, SESSION_REVOKED, Subject
from sessionsvc.sessions.service import SessionService
from workers.idp_entries import claim_digest
from workers.idp_services import IdpServices

TRUSTED = "ss:events"
IDP_STREAM = "{ss:events}:idp.tokens"


@pytest.fixture
def idp() -> TestIdp:
    return TestIdp()


@pytest.fixture
def settings(redis_url: str, idp: TestIdp) -> Settings:
    return feed_settings(
        redis_url, idps=idps_setting(idp.trust()), publishers={"crm": ["session.revoke"]}
    )


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    with raw_client(redis_url, decode_responses=True) as c:
        yield c


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    with raw_client(redis_url) as c:
        yield c


@pytest.fixture
def service(settings: Settings) -> Iterator[SessionService]:
    svc = SessionService(settings)
    try:
        yield svc
    finally:
        svc.close()


def login(service: SessionService, idp: TestIdp, sub: str, idp_sid: str) -> Any:
    return service.login(sub, idp_issuer=idp.issuer, idp_sid=idp_sid)


def test_a_logout_token_with_a_sid_ends_the_sessions_recorded_for_it(
    settings: Settings, service: SessionService, idp: TestIdp, client: redis.Redis
) -> None:
    mine, other = login(service, idp, "alice", "kc-1"), login(service, idp, "alice", "kc-2")
    with running_worker(settings), following(settings) as validator:
        assert outcome(validator, mine.access_token) == "ok"
        client.xadd(TRUSTED, {"logout_token": idp.logout_token(sub="alice", sid="kc-1")})
        wait_for(lambda: ended(service, "alice", mine.session_id), "the session to end")
        wait_for(lambda: outcome(validator, mine.access_token) == "revoked", "rejected")
        assert outcome(validator, other.access_token) == "ok"  # another IdP session
        assert not ended(service, "alice", other.session_id)


def test_a_logout_token_with_a_sub_alone_ends_every_session_of_that_user(
    settings: Settings, service: SessionService, idp: TestIdp, client: redis.Redis
) -> None:
    pairs = [login(service, idp, "bob", "kc-1"), service.login("bob")]
    with running_worker(settings), following(settings) as validator:
        client.xadd(TRUSTED, {"logout_token": idp.logout_token(sub="bob")})
        wait_for(lambda: not service.list_sessions("bob"), "every session to end")
        for pair in pairs:
            wait_for(lambda p=pair: outcome(validator, p.access_token) == "revoked", "rejected")


def test_a_sid_of_another_local_user_than_the_tokens_sub_is_left_alone(
    settings: Settings, service: SessionService, idp: TestIdp, client: redis.Redis
) -> None:
    carol = login(service, idp, "carol", "kc-9")
    with running_worker(settings):
        entry = client.xadd(TRUSTED, {"logout_token": idp.logout_token(sub="dave", sid="kc-9")})
        wait_for(lambda: consumed(client, TRUSTED, entry), "the token to be applied")
    assert not ended(service, "carol", carol.session_id)


def test_a_replayed_logout_token_is_dead_lettered_and_applied_once(
    settings: Settings, service: SessionService, idp: TestIdp, client: redis.Redis, raw: redis.Redis
) -> None:
    token = idp.logout_token(sid="kc-1")
    login(service, idp, "erin", "kc-1")
    with running_worker(settings):
        first = client.xadd(TRUSTED, {"logout_token": token})
        second = client.xadd(TRUSTED, {"logout_token": token})
        letters = wait_for(lambda: dead_letters(raw), "the replay's dead letter")
    assert letters[second]["dlq:error"] == "idp_replayed"
    assert first not in letters
    assert _log_sources(client).count(f"idp:{idp.issuer}") == 1


def test_a_redelivered_entry_is_not_mistaken_for_a_replay(
    settings: Settings, service: SessionService, idp: TestIdp, client: redis.Redis, raw: redis.Redis
) -> None:
    # a worker claimed the jti for this entry, then died before applying it
    token = idp.logout_token(sid="kc-1")
    pair = login(service, idp, "fay", "kc-1")
    entry = client.xadd(TRUSTED, {"logout_token": token})
    jti = claims_of(token)["jti"]
    client.set(f"{{ss:events}}:idp.jti:{claim_digest(idp.issuer, jti)}", f"{TRUSTED} {entry}")
    with running_worker(settings):
        wait_for(lambda: ended(service, "fay", pair.session_id), "the session to end")
    assert dead_letters(raw) == {}


def test_a_token_that_waited_in_the_stream_is_judged_at_its_entry_time(
    settings: Settings, service: SessionService, idp: TestIdp, client: redis.Redis, raw: redis.Redis
) -> None:
    pair = login(service, idp, "gus", "kc-1")
    client.xadd(TRUSTED, {"logout_token": idp.logout_token(sid="kc-1")})  # exp: 2 minutes
    later = lambda: time.time() + 3600  # noqa: E731  (the worker reads it an hour later)
    with running_worker(settings, clock=later):
        wait_for(lambda: ended(service, "gus", pair.session_id), "the session to end")
    assert dead_letters(raw) == {}


def test_a_publisher_may_not_send_identity_provider_tokens(
    settings: Settings, idp: TestIdp, client: redis.Redis, raw: redis.Redis
) -> None:
    with running_worker(settings):
        entry = client.xadd("{ss:events}:crm", {"logout_token": idp.logout_token(sub="x")})
        letters = wait_for(lambda: dead_letters(raw), "a dead letter")
    assert letters[entry]["dlq:error"] == "not_allowed"


def test_a_token_of_an_untrusted_issuer_is_dead_lettered(
    settings: Settings, client: redis.Redis, raw: redis.Redis
) -> None:
    stranger = TestIdp(issuer="https://elsewhere.example.test")
    with running_worker(settings):
        entry = client.xadd(TRUSTED, {"logout_token": stranger.logout_token(sub="x")})
        letters = wait_for(lambda: dead_letters(raw), "a dead letter")
    assert letters[entry]["dlq:error"].startswith("idp_")


def test_a_session_revoked_event_ends_the_sessions_of_that_provider_session(
    settings: Settings, service: SessionService, idp: TestIdp, client: redis.Redis
) -> None:
    pair = login(service, idp, "hal", "kc-7")
    with running_worker(settings), following(settings) as validator:
        client.xadd(TRUSTED, {"set": idp.session_revoked("kc-7", sub="hal")})
        wait_for(lambda: outcome(validator, pair.access_token) == "revoked", "rejected")
    assert ended(service, "hal", pair.session_id)


@pytest.mark.parametrize("change", ["revoke", "update", "delete"])
def test_a_credential_change_revokes_the_users_tokens_issued_before_it(
    settings: Settings, service: SessionService, idp: TestIdp, client: redis.Redis, change: str
) -> None:
    pair = service.login("ivy")
    with running_worker(settings), following(settings) as validator:
        client.xadd(TRUSTED, {"set": idp.credential_change("ivy", change, at=time.time() + 1)})
        wait_for(lambda: outcome(validator, pair.access_token) == "revoked", "rejected")


@pytest.mark.parametrize(
    ("change", "credential", "reason"),
    [
        ("create", "fido2-platform", "credential_created"),
        ("revoke", "smartcard", "unknown_credential_type"),
    ],
)
def test_enrolling_a_credential_or_changing_an_unknown_one_logs_no_one_out(
    settings: Settings,
    service: SessionService,
    idp: TestIdp,
    client: redis.Redis,
    raw: redis.Redis,
    change: str,
    credential: str,
    reason: str,
) -> None:
    pair = service.login("jo")
    with running_worker(settings) as running, following(settings) as validator:
        entry = client.xadd(
            TRUSTED, {"set": idp.credential_change("jo", change, credential=credential)}
        )
        wait_for(lambda: consumed(client, TRUSTED, entry), "the event to be taken")
        counted = running.worker.metrics.idp.labels("idp.set", "ignored", reason)
        assert counted._value.get() == 1
        assert outcome(validator, pair.access_token) == "ok"
    assert dead_letters(raw) == {}


def test_an_event_about_one_of_our_tokens_revokes_that_token(
    settings: Settings, service: SessionService, idp: TestIdp, client: redis.Redis
) -> None:
    pair, other = service.login("oli"), service.login("oli")
    jti = claims_of(pair.access_token)["jti"]
    sub_id = {"format": "jwt_id", "iss": settings.issuer, "jti": jti}
    event = idp.secevent(SESSION_REVOKED, {"event_timestamp": int(time.time())}, sub_id)
    with running_worker(settings), following(settings) as validator:
        client.xadd(TRUSTED, {"set": event})
        wait_for(lambda: outcome(validator, pair.access_token) == "revoked", "rejected")
        assert outcome(validator, other.access_token) == "ok"  # that token only


def test_an_apps_mapper_finds_the_local_user_of_an_email_subject(
    settings: Settings, service: SessionService, idp: TestIdp, client: redis.Redis
) -> None:
    def by_email(issuer: str, subject: Subject) -> str | None:
        return {"pat@example.test": "user-7"}.get(subject.email or "")

    pair = service.login("user-7")
    event = idp.secevent(
        CREDENTIAL_CHANGE,
        {"credential_type": "password", "change_type": "update", "event_timestamp": time.time()},
        {"format": "email", "email": "pat@example.test"},
    )
    with running_worker(settings, idp_user=by_email), following(settings) as validator:
        client.xadd(TRUSTED, {"set": event})
        wait_for(lambda: outcome(validator, pair.access_token) == "revoked", "rejected")


# -- the receiver -------------------------------------------------------------------------------


def test_a_pushed_logout_token_is_applied_and_its_replay_refused(
    settings: Settings, service: SessionService, idp: TestIdp
) -> None:
    pair = login(service, idp, "kim", "kc-1")
    token = idp.logout_token(sid="kc-1")
    with running_worker(settings) as running, IdpServices.start(running.worker, port=0) as svc:
        status, body = post(svc.port, "/backchannel-logout", f"logout_token={token}".encode())
        assert status == 200
        wait_for(lambda: ended(service, "kim", pair.session_id), "the session to end")
        status, body = post(svc.port, "/backchannel-logout", f"logout_token={token}".encode())
    assert status == 400
    assert b'"invalid_request"' in body


def test_a_pushed_security_event_needs_the_transmitters_bearer_token(
    settings: Settings, service: SessionService, idp: TestIdp
) -> None:
    pair = login(service, idp, "lea", "kc-3")
    event = idp.session_revoked("kc-3").encode()
    kind = "application/secevent+jwt"
    with running_worker(settings) as running, IdpServices.start(running.worker, port=0) as svc:
        refused = post(svc.port, "/ssf/events", event, kind, "Bearer wrong-token")
        assert refused[0] == 400  # (RFC 8935 §2.3: every refusal is a 400)
        assert b'"authentication_failed"' in refused[1]
        assert not ended(service, "lea", pair.session_id)
        accepted = post(svc.port, "/ssf/events", event, kind, f"Bearer {RECEIVER_TOKEN}")
        assert accepted[0] == 202
        wait_for(lambda: ended(service, "lea", pair.session_id), "the session to end")


# -- helpers ------------------------------------------------------------------------------------


def _log_sources(client: redis.Redis) -> list[str]:
    entries: Any = client.xrange("ss:{rev}:log")
    return [fields.get("source", "") for _, fields in entries]


@pytest.mark.cluster
def test_on_a_cluster_a_logout_token_ends_the_sessions_recorded_for_its_sid(
    redis_cluster_url: str, idp: TestIdp
) -> None:
    import redis.cluster

    settings = feed_settings(redis_cluster_url, redis_cluster=True, idps=idps_setting(idp.trust()))
    service = SessionService(settings)
    client = redis.cluster.RedisCluster.from_url(redis_cluster_url)
    try:
        pair = login(service, idp, "nia", "kc-1")
        token = idp.logout_token(sid="kc-1")
        with running_worker(settings), following(settings) as validator:
            client.xadd(TRUSTED, {"logout_token": token})
            client.xadd(TRUSTED, {"logout_token": token})  # a replay
            wait_for(lambda: ended(service, "nia", pair.session_id), "the session to end")
            wait_for(lambda: outcome(validator, pair.access_token) == "revoked", "rejected")
            letters = wait_for(
                lambda: list(client.xrange("{ss:events}:dlq")), "the replay's letter"
            )
        assert letters[0][1][b"dlq:error"] == b"idp_replayed"
    finally:
        client.close()
        service.close()


# -- every refusal of the specs, through the real receiver -------------------------------------


def _hmac_with_public_key(idp: TestIdp) -> str:
    import base64
    import hashlib
    import hmac
    import json as _json

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(_json.dumps({"alg": "HS256", "kid": idp.kid, "typ": "logout+jwt"}).encode())
    payload = b64(_json.dumps(claims_of(idp.logout_token(sub="x"))).encode())
    secret = _json.dumps(idp.jwk).encode()  # the provider's public key as the HMAC secret
    mac = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(mac)}"


def _unsigned(idp: TestIdp) -> str:
    import base64
    import json as _json

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    claims = claims_of(idp.logout_token(sub="x"))
    header = b64(_json.dumps({"alg": "none"}).encode())
    return f"{header}.{b64(_json.dumps(claims).encode())}."


LOGOUT_CODES = {
    "no events": "invalid_request",
    "events without the logout member": "invalid_request",
    "a nonce": "invalid_request",
    "neither sub nor sid": "invalid_request",
    "alg none": "invalid_key",
    "HMAC keyed with the public key": "invalid_key",
    "wrong iss": "invalid_issuer",
    "wrong aud": "invalid_audience",
    "expired": "invalid_request",
    "wrong typ": "invalid_request",
}
LOGOUT_REFUSALS: dict[str, Any] = {
    "no events": lambda idp: idp.logout_token(sub="x", events=None),
    "events without the logout member": lambda idp: idp.logout_token(sub="x", events={"x": {}}),
    "a nonce": lambda idp: idp.logout_token(sub="x", nonce="n-1"),
    "neither sub nor sid": lambda idp: idp.logout_token(),
    "alg none": _unsigned,
    "HMAC keyed with the public key": _hmac_with_public_key,
    "wrong iss": lambda idp: TestIdp(issuer="https://evil.example.test").logout_token(sub="x"),
    "wrong aud": lambda idp: idp.logout_token(sub="x", aud="another-client"),
    "expired": lambda idp: idp.logout_token(sub="x", now=time.time() - 3600),
    "wrong typ": lambda idp: idp.sign(claims_of(idp.logout_token(sub="x")), "JWT"),
}


@pytest.mark.parametrize("case", list(LOGOUT_REFUSALS))
def test_the_receiver_refuses_every_invalid_logout_token_with_400_and_its_error(
    settings: Settings, idp: TestIdp, case: str
) -> None:
    token = LOGOUT_REFUSALS[case](idp)
    with running_worker(settings) as running, IdpServices.start(running.worker, port=0) as svc:
        status, body = post(svc.port, "/backchannel-logout", f"logout_token={token}".encode())
    assert status == 400
    error = json.loads(body)
    assert error["error"] == LOGOUT_CODES[case]
    assert token not in body.decode()


def _set_with(idp: TestIdp, **changes: Any) -> str:
    claims = claims_of(idp.session_revoked("kc-1"))
    claims.update(changes)
    return idp.sign({k: v for k, v in claims.items() if v is not None}, "secevent+jwt")


SET_CODES = {
    "a sub claim": "invalid_request",
    "an exp claim": "invalid_request",
    "two events": "invalid_request",
    "no typ": "invalid_request",
    "another issuer": "invalid_issuer",
}
SET_REFUSALS: dict[str, Any] = {
    "a sub claim": lambda idp: _set_with(idp, sub="x"),
    "an exp claim": lambda idp: _set_with(idp, exp=int(time.time()) + 60),
    "two events": lambda idp: _set_with(
        idp, events={SESSION_REVOKED: {}, CREDENTIAL_CHANGE: {"change_type": "revoke"}}
    ),
    "no typ": lambda idp: idp.sign(claims_of(idp.session_revoked("kc-1")), None),
    "another issuer": lambda idp: _set_with(idp, iss="https://evil.example.test"),
}


@pytest.mark.parametrize("case", list(SET_REFUSALS))
def test_the_receiver_refuses_every_invalid_set_with_400_and_its_err(
    settings: Settings, idp: TestIdp, case: str
) -> None:
    token = SET_REFUSALS[case](idp).encode()
    kind, bearer = "application/secevent+jwt", f"Bearer {RECEIVER_TOKEN}"
    with running_worker(settings) as running, IdpServices.start(running.worker, port=0) as svc:
        status, body = post(svc.port, "/ssf/events", token, kind, bearer)
    assert status == 400
    assert json.loads(body)["err"] == SET_CODES[case]
