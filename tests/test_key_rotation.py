"""Key rotation on running validators (a real redis-server): a JWKS file change is used without
a restart, old tokens keep validating, promoted keys sign, a bad file keeps the ring, and
``key.revoke`` rejects every token of a key on every validator, whatever a reload brings."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from revocation_harness import (
    Applier,
    feed_settings,
    following,
    outcome,
    raw_client,
    running_worker,
    wait_for,
)

from sessionsvc import KeyRing, Revocation, Settings, TokenIssuer, Validator
from sessionsvc.tokens.jwks_file import read_document, write_document
from sessionsvc.tokens.keygen import generate_jwk, generate_jwks
from sessionsvc.tokens.keys import load_jwks
from sessionsvc.tokens.rotation import promote, retire, stage
from tests.conftest import ManualClock

EVENTS = "ss:events"


@pytest.fixture
def jwks_file(tmp_path: Path) -> Path:
    path = tmp_path / "access.jwks"
    write_document(path, generate_jwks("EdDSA", "old"))
    return path


def settings_for(url: str, path: Path, **overrides: Any) -> Settings:
    return feed_settings(url, access_jwks=str(path), **overrides)


def stage_new(path: Path, kid: str = "new") -> dict[str, Any]:
    """Step 1 on the file (no delay: the delay's refusal is tested with the CLI); the new JWK."""
    jwk = generate_jwk("EdDSA", kid)
    write_document(path, stage(read_document(path), jwk, ring="access", now=time.time(), delay=0))
    return jwk


def promote_new(path: Path) -> None:
    write_document(path, promote(read_document(path), ring="access", now=time.time(), lifetime=0))


def signed_by(settings: Settings, jwk: dict[str, Any], **kwargs: Any) -> str:
    """An access token signed with ``jwk`` (its key_ops put aside: the test signs on purpose)."""
    private = {k: v for k, v in jwk.items() if k != "key_ops"}
    ring = load_jwks(json.dumps({"keys": [private]}), ring="access")
    return TokenIssuer(settings, access_keys=KeyRing("access", ring.keys.values())).access_token(
        "alice", "sid-1", **kwargs
    )


def old_jwk(path: Path) -> dict[str, Any]:
    return next(jwk for jwk in read_document(path)["keys"] if jwk["kid"] == "old")


@pytest.mark.redis
def test_a_running_validator_uses_a_changed_file_without_a_restart(
    redis_url: str, jwks_file: Path
) -> None:
    settings = settings_for(redis_url, jwks_file, keys_reload_interval=0.05)
    jwk = generate_jwk("EdDSA", "new")
    token = signed_by(settings, jwk)
    with following(settings) as v:
        assert outcome(v, token) == "unknown_key"
        doc = stage(read_document(jwks_file), jwk, ring="access", now=time.time(), delay=0)
        write_document(jwks_file, doc)
        wait_for(lambda: outcome(v, token) == "ok", "the watcher's reload")


@pytest.mark.redis
def test_old_tokens_stay_valid_after_promotion(redis_url: str, jwks_file: Path) -> None:
    settings = settings_for(redis_url, jwks_file)
    old_token = TokenIssuer(settings).access_token("alice", "sid-1")
    with following(settings) as v:
        stage_new(jwks_file)
        promote_new(jwks_file)
        assert v.reload_keys() is True
        assert outcome(v, old_token) == "ok"


@pytest.mark.redis
def test_new_tokens_are_valid_on_every_validator_once_promoted(
    redis_url: str, jwks_file: Path
) -> None:
    settings = settings_for(redis_url, jwks_file)
    issuer = TokenIssuer(settings)
    with following(settings) as v1, following(settings) as v2:
        stage_new(jwks_file)
        for node in (v1, v2, issuer):
            node.reload_keys()
        assert issuer.access_keys.signing_key().kid == "old"  # staged: verification only
        promote_new(jwks_file)
        issuer.reload_keys()
        token = issuer.access_token("alice", "sid-1")
        assert json.loads(_header(token))["kid"] == "new"
        assert outcome(v1, token) == outcome(v2, token) == "ok"


@pytest.mark.redis
def test_a_retired_key_stops_validating_on_reload(redis_url: str, jwks_file: Path) -> None:
    settings = settings_for(redis_url, jwks_file)
    old_token = TokenIssuer(settings).access_token("alice", "sid-1")
    with following(settings) as v:
        assert outcome(v, old_token) == "ok"  # (now cached)
        stage_new(jwks_file)
        promote_new(jwks_file)
        write_document(jwks_file, retire(read_document(jwks_file), ring="access", now=time.time()))
        v.reload_keys()
        assert outcome(v, old_token) == "unknown_key"


@pytest.mark.redis
def test_a_corrupt_file_keeps_the_ring_of_a_running_validator(
    redis_url: str, jwks_file: Path
) -> None:
    settings = settings_for(redis_url, jwks_file)
    token = TokenIssuer(settings).access_token("alice", "sid-1")
    with following(settings) as v:
        jwks_file.write_text('{"keys": [{"kid": "half')
        assert v.reload_keys() is False
        assert outcome(v, token) == "ok"
        assert v.health()["key_reload_failures"] == 1


@pytest.mark.redis
def test_a_revoked_kid_stays_rejected_after_a_reload_that_holds_it(
    redis_url: str, jwks_file: Path
) -> None:
    settings = settings_for(redis_url, jwks_file)
    token = TokenIssuer(settings).access_token("alice", "sid-1")
    with following(settings) as v, raw_client(redis_url) as client:
        Applier(client)(Revocation("key", "old"))
        wait_for(lambda: outcome(v, token) == "revoked", "the key revocation")
        stage_new(jwks_file)  # a new ring that still holds "old"
        assert v.reload_keys() is True
        assert outcome(v, token) == "revoked"


@pytest.mark.redis
def test_key_revoke_of_a_rotated_in_key_rejects_its_tokens_on_every_validator(
    redis_url: str, jwks_file: Path
) -> None:
    settings = settings_for(redis_url, jwks_file, keys_reload_interval=0.05)
    old_token = TokenIssuer(settings).access_token("alice", "sid-1")
    with (
        following(settings) as v1,
        following(settings) as v2,
        running_worker(settings) as rw,
        raw_client(redis_url) as client,
    ):
        jwk = stage_new(jwks_file)
        promote_new(jwks_file)
        wait_for(lambda: "new" in rw.worker.core.kids, "the worker's reload")
        victims = [signed_by(settings, jwk) for _ in range(3)]
        wait_for(lambda: all(outcome(v, t) == "ok" for v in (v1, v2) for t in victims), "reloads")
        client.xadd(EVENTS, {"type": "key.revoke", "kid": "new", "reason": "key_compromise"})
        for v in (v1, v2):
            wait_for(lambda v=v: all(outcome(v, t) == "revoked" for t in victims), "key.revoke")
            assert outcome(v, old_token) == "ok"
        assert client.xlen("{ss:events}:dlq") == 0


def test_an_old_token_is_valid_until_its_expiry_after_promotion(jwks_file: Path) -> None:
    clock = ManualClock()
    settings = settings_for("redis://127.0.0.1:6379/0", jwks_file)
    old_token = TokenIssuer(settings, clock=clock).access_token("alice", "sid-1")
    validator = Validator(settings, clock=clock)  # not following: a local view
    stage_new(jwks_file)
    promote_new(jwks_file)
    validator.reload_keys()
    clock.now += settings.access_ttl + settings.leeway - 1
    assert outcome(validator, old_token) == "ok"
    clock.now += 1
    assert outcome(validator, old_token) == "expired"


def test_the_issuer_keeps_its_ring_when_the_new_one_cannot_sign(jwks_file: Path) -> None:
    settings = settings_for("redis://127.0.0.1:6379/0", jwks_file)
    issuer = TokenIssuer(settings)
    public = load_jwks(str(jwks_file), ring="access").public_jwks()
    write_document(jwks_file, public)
    assert issuer.reload_keys() is False
    assert issuer.access_keys.signing_key().kid == "old"


def test_the_issuer_refuses_a_new_ring_that_shares_a_kid_with_the_other(jwks_file: Path) -> None:
    settings = settings_for("redis://127.0.0.1:6379/0", jwks_file)
    issuer = TokenIssuer(settings)
    refresh_kid = next(iter(issuer.refresh_keys.keys))
    write_document(jwks_file, generate_jwks("EdDSA", refresh_kid))
    assert issuer.reload_keys() is False
    assert list(issuer.access_keys.keys) == ["old"]


def test_the_worker_core_learns_a_staged_kid(jwks_file: Path) -> None:
    from workers.kids import ConfiguredKids

    configured = ConfiguredKids(settings_for("redis://127.0.0.1:6379/0", jwks_file))
    assert "new" not in configured.kids
    stage_new(jwks_file)
    assert configured.refresh(now=True) is True
    assert "new" in configured.kids


def _header(token: str) -> str:
    import base64

    head = token.split(".", maxsplit=1)[0]
    return base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)).decode()


@pytest.mark.redis
def test_an_asyncio_validator_uses_a_changed_file_without_a_restart(
    redis_url: str, jwks_file: Path
) -> None:
    settings = settings_for(redis_url, jwks_file, keys_reload_interval=0.05)
    jwk = generate_jwk("EdDSA", "new")
    token = signed_by(settings, jwk)
    with following(settings, "async") as v:
        doc = stage(read_document(jwks_file), jwk, ring="access", now=time.time(), delay=0)
        write_document(jwks_file, doc)
        wait_for(lambda: outcome(v, token) == "ok", "the watcher's reload")


def test_the_refresh_verifier_follows_a_reloaded_refresh_ring(
    tmp_path: Path, jwks_file: Path
) -> None:
    from sessionsvc.sessions.core import SessionCore

    path = tmp_path / "refresh.jwks"
    write_document(path, generate_jwks("EdDSA", "r-old"))
    settings = settings_for("redis://127.0.0.1:6379/0", jwks_file, refresh_jwks=str(path))
    core = SessionCore(settings)
    jwk = generate_jwk("EdDSA", "r-new")
    write_document(path, stage(read_document(path), jwk, ring="refresh", now=time.time(), delay=0))
    core.issuer.reload_keys()
    assert "r-new" in core.verifier.ring.keys


def test_the_jwks_endpoint_serves_the_reloaded_ring(jwks_file: Path) -> None:
    from sessionsvc.integrations.web.assembly import assemble
    from sessionsvc.integrations.web.config import WebSettings
    from sessionsvc.sessions.core import SessionCore

    settings = settings_for("redis://127.0.0.1:6379/0", jwks_file)
    validator = Validator(settings)
    web = WebSettings(_env_file=None)
    endpoints = assemble(settings, web, validator, SessionCore(settings)).endpoints
    stage_new(jwks_file)
    validator.reload_keys()
    assert [k["kid"] for k in endpoints.jwks().body["keys"]] == ["old", "new"]
