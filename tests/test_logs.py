"""sessionsvc.logs: secret-named values are masked; JSON in production, console in development."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

import sessionsvc.validator
from sessionsvc.logs import SECRET_KEYS, configure_logging, redact_secrets

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def reset_structlog() -> Iterator[None]:
    """Logging configuration is process-global: leave it as we found it."""
    yield
    structlog.reset_defaults()


@pytest.mark.parametrize("name", sorted(SECRET_KEYS))
def test_redact_secrets_masks_secret_named_keys(name: str) -> None:
    event = redact_secrets(None, "info", {"event": "e", name: "s3cr3t"})
    assert event[name] == "[redacted]"


def test_redact_secrets_keeps_other_keys() -> None:
    event = {"event": "login", "sub": "alice", "sid": "s1", "reason": "expired"}
    assert redact_secrets(None, "info", dict(event)) == event


def test_redact_secrets_masks_non_string_values() -> None:
    event = redact_secrets(None, "info", {"event": "e", "jwks": {"keys": [{"k": "x"}]}})
    assert event["jwks"] == "[redacted]"


def test_secret_keys_cover_tokens_keys_and_redis_url() -> None:
    assert {"token", "access_token", "refresh_token", "password", "k", "d", "redis_url"} <= (
        SECRET_KEYS
    )


def test_production_logs_are_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("production")
    structlog.get_logger().info("token_rejected", reason="expired", sub="alice")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["event"] == "token_rejected"
    assert record["reason"] == "expired"
    assert record["level"] == "info"
    assert "timestamp" in record


def test_production_logs_redact_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("production")
    structlog.get_logger().info("login", access_token="eyJ.secret.token", password="hunter2")
    err = capsys.readouterr().err
    record = json.loads(err)
    assert record["access_token"] == record["password"] == "[redacted]"
    assert "hunter2" not in err
    assert "eyJ.secret.token" not in err


def test_development_logs_are_console_text(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("development")
    structlog.get_logger().info("token_rejected", reason="expired")
    err = capsys.readouterr().err
    assert "token_rejected" in err
    assert "reason=expired" in err
    with pytest.raises(json.JSONDecodeError):
        json.loads(err)


def test_development_logs_redact_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("development")
    structlog.get_logger().info("loaded", jwks='{"keys": [{"k": "c2VjcmV0"}]}')
    assert "c2VjcmV0" not in capsys.readouterr().err


def test_log_level_filters_lower_levels(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("production")
    structlog.get_logger().debug("noise")
    assert capsys.readouterr().err == ""


def test_logs_go_to_stderr_not_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("production")
    structlog.get_logger().warning("w")
    assert capsys.readouterr().out == ""


def test_importing_sessionsvc_does_not_configure_logging() -> None:
    code = (
        "import structlog, sessionsvc, sessionsvc.cli.main, sessionsvc.cli.demo; "
        "assert not structlog.is_configured()"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --- every line names its component -------------------------------------------------------------


def test_production_lines_name_their_logger(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("production")
    structlog.get_logger("sessionsvc.feed").info("feed_reconnected", password="hunter2")
    err = capsys.readouterr().err
    record = json.loads(err)
    assert record["logger"] == "sessionsvc.feed"
    assert record["event"] == "feed_reconnected"
    assert record["password"] == "[redacted]"
    assert "hunter2" not in err


def test_development_lines_name_their_logger(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("development")
    structlog.get_logger("workers.worker").warning("worker_stopped", token="eyJ.secret.token")
    err = capsys.readouterr().err
    assert "workers.worker" in err
    assert "worker_stopped" in err
    assert "eyJ.secret.token" not in err


def test_a_module_logger_names_its_module(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("production")
    sessionsvc.validator.log.warning("validator_not_synced", waited=0.1)
    assert json.loads(capsys.readouterr().err)["logger"] == "sessionsvc.validator"


def test_every_logger_of_sessionsvc_and_workers_is_named() -> None:
    calls = []
    for path in sorted([*ROOT.glob("sessionsvc/*.py"), *ROOT.glob("workers/*.py")]):
        calls += [
            (path.name, m[1]) for m in re.finditer(r"get_logger\(([^)]*)\)", path.read_text())
        ]
    assert calls
    for module, argument in calls:
        assert re.fullmatch(r'"(sessionsvc|workers)\.[a-z_.]+"', argument), (module, argument)
