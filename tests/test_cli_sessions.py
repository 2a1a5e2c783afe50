"""``sessionsvc sessions list | revoke | revoke-all`` against a real Redis."""

from __future__ import annotations

import json

import pytest
from conftest import AUDIENCE, ISSUER, make_settings
from redis_server import free_port

from sessionsvc import SessionService, TokenRejected
from sessionsvc.cli.main import main

pytestmark = pytest.mark.redis


@pytest.fixture(autouse=True)
def _clean(clean_env: None) -> None:
    """Every test here starts from no SESSIONSVC_* environment (before any env fixture)."""


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> str:
    monkeypatch.setenv("SESSIONSVC_REDIS_URL", redis_url)
    monkeypatch.setenv("SESSIONSVC_ISSUER", ISSUER)
    monkeypatch.setenv("SESSIONSVC_AUDIENCE", AUDIENCE)
    monkeypatch.setenv("SESSIONSVC_ENV", "development")
    return redis_url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, object]:
    code = main(["sessions", *argv])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else None


def test_list_revoke_revoke_all(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    with SessionService(make_settings(redis_url=env)) as svc:
        a = svc.login("alice", device="phone")
        b = svc.login("alice")
        code, listed = run(capsys, "list", "alice")
        assert code == 0 and isinstance(listed, list)
        assert {s["session_id"] for s in listed} == {a.session_id, b.session_id}
        assert {s["device"] for s in listed} == {"phone", None}
        assert run(capsys, "revoke", a.session_id) == (
            0,
            {"session_id": a.session_id, "ended": True},
        )
        with pytest.raises(TokenRejected):
            svc.refresh(a.refresh_token)
        assert run(capsys, "revoke-all", "alice", "--reason", "incident") == (
            0,
            {"sub": "alice", "sessions_ended": 1},
        )
        assert run(capsys, "list", "alice") == (0, [])


def test_unknown_session_id(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "revoke", "not-a-session")
    assert code == 1 and isinstance(out, dict) and out["error"] == "not_found"


def test_redis_down(
    env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SESSIONSVC_REDIS_URL", f"redis://:secret@127.0.0.1:{free_port()}/0")
    monkeypatch.setenv("SESSIONSVC_REDIS_CONNECT_TIMEOUT", "0.2")
    assert main(["sessions", "list", "alice"]) == 2
    err = capsys.readouterr().err
    assert "unavailable" in err and "secret" not in err


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["sessions", "--help"])
    out = capsys.readouterr().out
    assert "revoke-all" in out and "list" in out
