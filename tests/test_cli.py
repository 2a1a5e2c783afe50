"""sessionsvc.cli.main: each command's output, exit codes (0 ok, 1 rejected/problem, 2 usage or
configuration) and redaction."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

import pytest

from sessionsvc import generate_jwks, load_jwks
from sessionsvc.cli.main import main
from sessionsvc.embedded import free_port
from tests.conftest import AUDIENCE, ISSUER, generated_passwords, leaked_parts

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k"}
REDIS_PASSWORD = "hunter2-redis-password"


@pytest.fixture(autouse=True)
def _clean(clean_env: None) -> None:
    """Every test here starts from no SESSIONSVC_* environment (before any env fixture)."""


@pytest.fixture
def rings() -> dict[str, Any]:
    return {"access": generate_jwks("HS256", "a1"), "refresh": generate_jwks("EdDSA", "r1")}


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch, rings: dict[str, Any]) -> dict[str, Any]:
    monkeypatch.setenv("SESSIONSVC_ACCESS_JWKS", json.dumps(rings["access"]))
    monkeypatch.setenv("SESSIONSVC_REFRESH_JWKS", json.dumps(rings["refresh"]))
    monkeypatch.setenv("SESSIONSVC_ISSUER", ISSUER)
    monkeypatch.setenv("SESSIONSVC_AUDIENCE", AUDIENCE)
    return rings


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    code, out, _ = run(capsys, *argv)
    return code, json.loads(out)


def issue(capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    code, pair = run_json(capsys, "token", "issue", "--sub", "alice", *extra)
    assert code == 0
    return pair  # type: ignore[no-any-return]


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    assert info.value.code == 2
    return capsys.readouterr().err


# --- keys generate ------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "RS256", "HS256"])
def test_keys_generate_prints_a_loadable_private_jwks(
    capsys: pytest.CaptureFixture[str], alg: str
) -> None:
    code, doc = run_json(capsys, "keys", "generate", "--alg", alg)
    assert code == 0
    ring = load_jwks(json.dumps(doc), ring="access")
    assert ring.signing_key().alg == alg


def test_keys_generate_defaults_to_eddsa_with_the_given_kid(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, doc = run_json(capsys, "keys", "generate", "--kid", "2026-01")
    assert code == 0
    assert [(k["kid"], k["alg"]) for k in doc["keys"]] == [("2026-01", "EdDSA")]


@pytest.mark.parametrize("alg", ["none", "HS512", "eddsa"])
def test_keys_generate_unknown_alg_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], alg: str
) -> None:
    assert "invalid choice" in usage_error(capsys, "keys", "generate", "--alg", alg)


# --- keys public --------------------------------------------------------------------------------


def test_keys_public_prints_no_private_members(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    private = {"keys": generate_jwks("EdDSA", "e1")["keys"] + generate_jwks("ES256", "e2")["keys"]}
    path = tmp_path / "private.json"
    path.write_text(json.dumps(private))
    code, doc = run_json(capsys, "keys", "public", str(path))
    assert code == 0
    assert [k["kid"] for k in doc["keys"]] == ["e1", "e2"]
    assert all(not PRIVATE_MEMBERS & k.keys() for k in doc["keys"])


def test_keys_public_leaves_out_hs256_secrets(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    private = generate_jwks("HS256", "h1")
    path = tmp_path / "private.json"
    path.write_text(json.dumps(private))
    code, out, _ = run(capsys, "keys", "public", str(path))
    assert code == 0
    assert json.loads(out) == {"keys": []}
    assert private["keys"][0]["k"] not in out


def test_keys_public_reads_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(generate_jwks("EdDSA", "e1"))))
    code, doc = run_json(capsys, "keys", "public", "-")
    assert code == 0
    assert "d" not in doc["keys"][0]


def test_keys_public_missing_file_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run(capsys, "keys", "public", str(tmp_path / "missing.json"))
    assert (code, out) == (2, "")
    assert "cannot read JWKS file" in err


def test_keys_public_refused_key_exits_2_without_the_secret(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    weak = {"keys": [{"kty": "oct", "alg": "HS256", "kid": "h", "k": "c2VjcmV0LXNob3J0"}]}
    path = tmp_path / "weak.json"
    path.write_text(json.dumps(weak))
    code, out, err = run(capsys, "keys", "public", str(path))
    assert code == 2
    assert "c2VjcmV0LXNob3J0" not in out + err


# --- token issue --------------------------------------------------------------------------------


@pytest.mark.usefixtures("configured")
def test_token_issue_prints_the_pair(capsys: pytest.CaptureFixture[str]) -> None:
    pair = issue(capsys)
    assert set(pair) == {"access_token", "refresh_token", "session_id", "expires_in"}
    assert pair["expires_in"] == 900
    assert pair["access_token"].count(".") == pair["refresh_token"].count(".") == 2


@pytest.mark.usefixtures("configured")
def test_token_issue_with_sid_and_claims(capsys: pytest.CaptureFixture[str]) -> None:
    pair = issue(capsys, "--sid", "my-session", "--claims", '{"roles": ["admin"]}')
    assert pair["session_id"] == "my-session"
    _, result = run_json(capsys, "token", "verify", pair["access_token"])
    assert result["claims"]["roles"] == ["admin"]


@pytest.mark.usefixtures("configured")
@pytest.mark.parametrize("claims", ["not json", "[1, 2]", '"roles"'])
def test_token_issue_bad_claims_json_exits_2(
    capsys: pytest.CaptureFixture[str], claims: str
) -> None:
    code, out, err = run(capsys, "token", "issue", "--sub", "alice", "--claims", claims)
    assert (code, out) == (2, "")
    assert "--claims must be a JSON object" in err


@pytest.mark.usefixtures("configured")
def test_token_issue_claim_not_allowed_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "token", "issue", "--sub", "alice", "--claims", '{"admin": 1}')
    assert (code, out) == (2, "")
    assert "not in the allow-list" in err


@pytest.mark.usefixtures("configured")
def test_token_issue_empty_sub_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "token", "issue", "--sub", "")
    assert code == 2
    assert "sub must be a non-empty string" in err


def test_token_issue_without_jwks_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SESSIONSVC_ISSUER", ISSUER)
    monkeypatch.setenv("SESSIONSVC_AUDIENCE", AUDIENCE)
    code, out, err = run(capsys, "token", "issue", "--sub", "alice")
    assert (code, out) == (2, "")
    assert "SESSIONSVC_ACCESS_JWKS is required" in err


def test_token_issue_without_sub_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert "--sub" in usage_error(capsys, "token", "issue")


# --- token verify -------------------------------------------------------------------------------


@pytest.mark.usefixtures("configured")
def test_token_verify_valid_token_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    pair = issue(capsys)
    code, result = run_json(capsys, "token", "verify", pair["access_token"])
    assert code == 0
    assert result["valid"] is True
    assert set(result) == {"valid", "claims"}
    assert result["claims"]["sub"] == "alice"
    assert result["claims"]["sid"] == pair["session_id"]


@pytest.mark.usefixtures("configured")
def test_token_verify_rejected_token_exits_1_with_reason(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pair = issue(capsys)
    code, result = run_json(capsys, "token", "verify", pair["refresh_token"])
    assert code == 1
    assert result == {"valid": False, "reason": "wrong_type", "detail": "typ must be 'at+jwt'"}


@pytest.mark.usefixtures("configured")
def test_token_verify_garbage_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, result = run_json(capsys, "token", "verify", "not-a-token")
    assert code == 1
    assert result["reason"] == "malformed"
    assert isinstance(result["detail"], str)


@pytest.mark.usefixtures("configured")
def test_token_verify_stdin_prints_one_result_per_token(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = issue(capsys), issue(capsys)
    lines = f"{first['access_token']}\n\n  {second['access_token']}  \n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(lines))
    code, out, _ = run(capsys, "token", "verify", "-")
    results = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert [r["claims"]["sid"] for r in results] == [first["session_id"], second["session_id"]]


@pytest.mark.usefixtures("configured")
def test_token_verify_stdin_exits_1_when_any_is_rejected(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pair = issue(capsys)
    lines = f"{pair['access_token']}\ngarbage\n{pair['access_token']}\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(lines))
    code, out, _ = run(capsys, "token", "verify", "-")
    assert code == 1
    assert [json.loads(line)["valid"] for line in out.splitlines()] == [True, False, True]


@pytest.mark.usefixtures("configured")
def test_token_verify_stdin_empty_exits_0(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert run(capsys, "token", "verify", "-") == (0, "", "")


def test_token_verify_without_jwks_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SESSIONSVC_ISSUER", ISSUER)
    monkeypatch.setenv("SESSIONSVC_AUDIENCE", AUDIENCE)
    code, out, err = run(capsys, "token", "verify", "a.b.c")
    assert (code, out) == (2, "")
    assert "SESSIONSVC_ACCESS_JWKS is required" in err


def test_token_verify_without_settings_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "token", "verify", "a.b.c")
    assert (code, out) == (2, "")
    assert "SESSIONSVC_ISSUER: is required" in err


def test_token_verify_without_token_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    usage_error(capsys, "token", "verify")


# --- config check -------------------------------------------------------------------------------


@pytest.mark.usefixtures("configured")
def test_config_check_ok_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "config", "check")
    assert code == 0
    assert all(line.startswith("ok: ") for line in out.splitlines())
    assert "access key ring: a1 (HS256, signs)" in out


def test_config_check_warning_only_exits_0(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, rings: dict[str, Any]
) -> None:
    monkeypatch.setenv("SESSIONSVC_ISSUER", ISSUER)
    monkeypatch.setenv("SESSIONSVC_AUDIENCE", AUDIENCE)
    monkeypatch.setenv("SESSIONSVC_ACCESS_JWKS", json.dumps(rings["access"]))
    code, out, _ = run(capsys, "config", "check")
    assert code == 0
    assert "warning: SESSIONSVC_REFRESH_JWKS is not set" in out


def test_config_check_error_exits_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SESSIONSVC_ISSUER", ISSUER)
    monkeypatch.setenv("SESSIONSVC_AUDIENCE", AUDIENCE)
    code, out, _ = run(capsys, "config", "check")
    assert code == 1
    assert "error: SESSIONSVC_ACCESS_JWKS is not set" in out


def test_config_check_invalid_settings_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "config", "check")
    assert code == 1
    assert out.startswith("error: invalid settings: ")


def test_config_check_redacts_secrets(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, rings: dict[str, Any]
) -> None:
    shared = rings["access"]["keys"][0]
    monkeypatch.setenv("SESSIONSVC_ISSUER", ISSUER)
    monkeypatch.setenv("SESSIONSVC_AUDIENCE", AUDIENCE)
    monkeypatch.setenv("SESSIONSVC_ACCESS_JWKS", json.dumps(rings["access"]))
    monkeypatch.setenv("SESSIONSVC_REFRESH_JWKS", json.dumps({"keys": [shared | {"kid": "r"}]}))
    monkeypatch.setenv("SESSIONSVC_REDIS_URL", f"redis://app:{REDIS_PASSWORD}@redis:6379/0")
    code, out, err = run(capsys, "config", "check")
    assert code == 1  # shared key material
    assert "redis://app:***@redis:6379/0" in out
    assert shared["k"] not in out + err
    assert REDIS_PASSWORD not in out + err


PASSWORD_COMMANDS = [
    ["config", "check"],
    ["sessions", "list", "alice"],
    ["revoke", "session", "c2Vzc2lvbg.AAAAAAAAAAAAAAAAAAAAAA"],
    ["token", "verify", "not-a-token"],
]


def run_anyhow(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Everything ``main(argv)`` shows a user: stdout, stderr and an uncaught traceback."""
    try:
        main(argv)
    except BaseException:  # a traceback is shown to the user too
        shown = traceback.format_exc()
    else:
        shown = ""
    out, err = capsys.readouterr()
    return out + err + shown


@pytest.mark.usefixtures("configured")
@pytest.mark.parametrize("password", generated_passwords())
@pytest.mark.parametrize(
    "form",
    ["redis://app:{pw}@{host}/0", "redis://:{pw}@{host}/0", "redis://{host}/0?password={pw}"],
)
def test_no_command_shows_any_part_of_a_generated_redis_password(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, password: str, form: str
) -> None:
    url = form.format(pw=password, host=f"127.0.0.1:{free_port()}")
    monkeypatch.setenv("SESSIONSVC_REDIS_URL", url)
    monkeypatch.setenv("SESSIONSVC_REDIS_CONNECT_TIMEOUT", "0.2")
    for argv in PASSWORD_COMMANDS:
        assert leaked_parts(run_anyhow(capsys, argv), password) == [], argv


# --- usage --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv", [[], ["nope"], ["keys"], ["token"], ["config"], ["token", "issue", "--bogus"]]
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    assert "usage:" in usage_error(capsys, *argv)


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    assert "keys" in capsys.readouterr().out


def test_python_m_sessionsvc_help_works() -> None:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("SESSIONSVC_")}
    result = subprocess.run(
        [sys.executable, "-m", "sessionsvc", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: sessionsvc")
