"""Attack cases on identity providers' tokens (found by a security review, each failing
before its fix): another issuer's or another user's sessions, uncapped planted state, a logout
lost to a key rotation, SET replays after their claim expired, fetch floods, a ``create``
that revoked, values the session layer cannot take."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import redis
from idp_harness import CLIENT_ID, TestIdp, consumed, ended, idps_setting, post
from revocation_harness import (
    dead_letters,
    feed_settings,
    following,
    outcome,
    raw_client,
    running_worker,
    wait_for,
)

from sessionsvc import Settings
from sessionsvc.errors import ConfigError, IdpKeysUnavailable, IdpTokenRejected
from sessionsvc.idp.keys import IssuerKeys
from sessionsvc.idp.model import CREDENTIAL_CHANGE, SESSION_REVOKED, Subject
from sessionsvc.idp.secevent import verify_set
from sessionsvc.idp.trust import Idps, IdpTrust, load_idps
from sessionsvc.sessions.service import SessionService
from workers.idp_entries import SET_CLAIM_TTL
from workers.idp_services import IdpServices
from workers.worker import Worker, WorkerOptions

TRUSTED = "ss:events"
IDP_STREAM = "{ss:events}:idp.tokens"


@pytest.fixture
def idp() -> TestIdp:
    return TestIdp()


@pytest.fixture
def settings(redis_url: str, idp: TestIdp) -> Settings:
    return feed_settings(redis_url, idps=idps_setting(idp.trust()))


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


# -- whose sessions: a user named, none of ours -------------------------------------------------


def test_unmapped_sub_with_sid_must_not_end_another_users_sessions(
    settings: Settings, service: SessionService, idp: TestIdp, client: redis.Redis
) -> None:
    """A sid with a sub that maps to no local user ends nothing: the token named a user, and
    that user is not one of ours (docs/events.md: with sub too, only that user's sessions)."""
    carol = service.login("carol", idp_issuer=idp.issuer, idp_sid="kc-9")
    with running_worker(settings) as running:
        running.worker.core.idp.user = lambda iss, s: s.sub if s.sub == "carol" else None  # type: ignore[union-attr]
        token = idp.logout_token(sub="dave", sid="kc-9")
        entry = client.xadd(TRUSTED, {"logout_token": token})
        wait_for(lambda: consumed(client, TRUSTED, entry), "the token to be applied")
    assert not ended(service, "carol", carol.session_id), "dave's logout ended carol's session"


def test_caep_email_user_with_session_must_not_end_another_users_sessions(
    settings: Settings, service: SessionService, idp: TestIdp, client: redis.Redis
) -> None:
    """A session-revoked whose complex subject names a user (an email no mapper knows) and a
    session ends nothing: only that user's sessions of that provider session could end."""
    carol = service.login("carol", idp_issuer=idp.issuer, idp_sid="kc-9")
    sub_id = {
        "format": "complex",
        "user": {"format": "email", "email": "dave@example.com"},
        "session": {"format": "opaque", "id": "kc-9"},
    }
    token = idp.secevent(SESSION_REVOKED, {"event_timestamp": int(time.time())}, sub_id)
    with running_worker(settings):
        entry = client.xadd(TRUSTED, {"set": token})
        wait_for(lambda: consumed(client, TRUSTED, entry), "the token to be applied")
    assert not ended(service, "carol", carol.session_id), "dave's event ended carol's session"


# -- a credential enrolled ----------------------------------------------------------------------


def test_credential_create_with_jwt_id_subject_revokes_nothing(
    settings: Settings, service: SessionService, idp: TestIdp, client: redis.Redis
) -> None:
    """A credential-change ``create`` revokes nothing, whatever its subject (a ``jwt_id``
    too): enrolling a passkey logs no one out."""
    pair = service.login("jo")
    jti = jwt.decode(pair.access_token, options={"verify_signature": False})["jti"]
    event = {"credential_type": "fido2-platform", "change_type": "create"}
    sub_id = {"format": "jwt_id", "iss": settings.issuer, "jti": jti}
    with running_worker(settings), following(settings) as validator:
        assert outcome(validator, pair.access_token) == "ok"
        entry = client.xadd(TRUSTED, {"set": idp.secevent(CREDENTIAL_CHANGE, event, sub_id)})
        wait_for(lambda: consumed(client, TRUSTED, entry), "the event to be taken")
        time.sleep(0.5)  # (the validator follows the log)
        assert outcome(validator, pair.access_token) == "ok", "a `create` revoked a token"


# -- SETs replayed after their jti is forgotten -------------------------------------------------


def test_a_set_older_than_its_claims_memory_is_refused(idp: TestIdp) -> None:
    """A SET older than ``max_set_age`` is refused: its jti claim (remembered a day longer)
    may have expired, so an older SET could be a replay."""
    idps = Idps((IdpTrust.model_validate(idp.trust()),))

    class Keys:
        def key(self, issuer: str, kid: str | None, alg: str) -> jwt.PyJWK:
            return jwt.PyJWK(idp.jwk, alg)

    old = time.time() - SET_CLAIM_TTL - 3600
    claims = {
        "iss": idp.issuer,
        "aud": CLIENT_ID,
        "iat": int(old),
        "jti": "captured-once",
        "sub_id": {"format": "opaque", "id": "victim"},
        "events": {SESSION_REVOKED: {}},
    }
    token = idp.sign(claims, "secevent+jwt")
    with pytest.raises(IdpTokenRejected):
        verify_set(token, idps, Keys(), time.time())


# -- fetch floods while a JWKS fails ------------------------------------------------------------


def test_a_failing_first_fetch_is_not_retried_for_every_request(idp: TestIdp) -> None:
    """While an issuer's JWKS fails and no keys are held, unauthenticated requests naming it
    do not each trigger a fetch: one per cooldown."""
    calls = []

    def fetch() -> bytes:
        calls.append(1)
        raise OSError("IdP down")

    trust = IdpTrust.model_validate(idp.trust(jwks="https://idp.example.test/certs"))
    keys = IssuerKeys(trust, fetch=fetch)
    for _ in range(20):
        with pytest.raises(IdpKeysUnavailable):
            keys.key("made-up", "RS256")
    assert len(calls) <= 1, f"{len(calls)} fetches for 20 requests within the cooldown"


# -- a key rotated away after the receiver took a logout ----------------------------------------


def test_a_logout_the_receiver_accepted_survives_a_key_rotation(
    redis_url: str, tmp_path: Path, idp: TestIdp, client: redis.Redis, raw: redis.Redis
) -> None:
    """A logout the receiver answered 200 for is applied even after the provider rotated its
    key away: the idp intake holds what a receiver verified, so its signature is not checked
    again against today's JWKS."""
    jwks = tmp_path / "jwks.json"
    jwks.write_text(idp.jwks)
    settings = feed_settings(redis_url, idps=idps_setting(idp.trust(jwks=str(jwks))))
    service = SessionService(settings)
    try:
        pair = service.login("kim", idp_issuer=idp.issuer, idp_sid="kc-1")
        token = idp.logout_token(sid="kc-1")
        from workers.worker import Worker, WorkerOptions

        idle = Worker(settings, WorkerOptions(consumer="receiver-only"))  # never run: behind
        with IdpServices.start(idle, port=0) as svc:
            status, _ = post(svc.port, "/backchannel-logout", f"logout_token={token}".encode())
        assert status == 200
        rotated = TestIdp(kid="idp-2")
        jwks.write_text(rotated.jwks)  # the old key is gone from the JWKS
        with running_worker(settings):
            wait_for(
                lambda: ended(service, "kim", pair.session_id) or dead_letters(raw),
                "the entry to be taken",
            )
        assert dead_letters(raw) == {}, "an accepted logout was dead-lettered"
        assert ended(service, "kim", pair.session_id)
    finally:
        service.close()


# -- how much an identity provider may plant ----------------------------------------------------


def test_an_identity_providers_revocations_are_capped_like_a_publishers(
    redis_url: str, idp: TestIdp, client: redis.Redis
) -> None:
    """An identity provider's revocations are charged to a budget of its own, capped at
    ``max_revocations`` as a publisher's: a leaked provider key cannot plant state without
    bound in every validator."""
    settings = feed_settings(redis_url, idps=idps_setting(idp.trust()), max_revocations=1000)
    n = 1010
    pipe = client.pipeline(transaction=False)
    for i in range(n):
        sub_id = {"format": "jwt_id", "iss": settings.issuer, "jti": f"made-up-{i}"}
        pipe.xadd(TRUSTED, {"set": idp.secevent(SESSION_REVOKED, {}, sub_id)})
    last = pipe.execute()[-1]
    with running_worker(settings):
        wait_for(lambda: consumed(client, TRUSTED, last), "every SET to be taken", timeout=120)
    log: Any = client.xrange("ss:{rev}:log")
    planted = [f for _, f in log if f.get("source", "").startswith("idp:")]
    assert len(planted) <= settings.max_revocations, f"{len(planted)} uncapped IdP revocations"


# -- an issuer too long to record ---------------------------------------------------------------


def test_an_issuer_longer_than_a_session_can_record_is_refused_at_start() -> None:
    long_idp = TestIdp(issuer="https://idp.example.test/" + "r" * 300)
    with pytest.raises(ConfigError, match="issuer"):
        load_idps(idps_setting(long_idp.trust()))


# -- several identity providers -----------------------------------------------------------------


def test_several_issuers_need_a_mapper_so_that_one_spares_anothers_users(
    redis_url: str, client: redis.Redis
) -> None:
    """BCL 1.0 §2.7: without sid, the sessions of "the End-User identified by the iss and sub
    Claims" end: the partner's "admin" is not the corporate "admin"."""
    corporate, partner = TestIdp(), TestIdp(issuer="https://partner-idp.example.test")
    settings = feed_settings(
        redis_url, idps=idps_setting(corporate.trust(), partner.trust(receiver_tokens=[]))
    )
    with pytest.raises(ConfigError, match="mapper"):
        Worker(settings, WorkerOptions(consumer="w"))

    def corporate_users(issuer: str, subject: Subject) -> str | None:
        return subject.sub if issuer == corporate.issuer else None

    service = SessionService(settings)
    try:
        admin = service.login("admin", idp_issuer=corporate.issuer, idp_sid="corp-1")
        with running_worker(settings, idp_user=corporate_users):
            token = partner.logout_token(sub="admin")  # the partner IdP has its own "admin"
            entry = client.xadd(TRUSTED, {"logout_token": token})
            wait_for(lambda: consumed(client, TRUSTED, entry), "the token to be applied")
            assert not ended(service, "admin", admin.session_id)
            client.xadd(TRUSTED, {"logout_token": corporate.logout_token(sub="admin")})
            wait_for(lambda: ended(service, "admin", admin.session_id), "the corporate logout")
    finally:
        service.close()
