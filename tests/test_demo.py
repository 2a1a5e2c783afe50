"""sessionsvc.cli.demo: the walkthrough runs without configuration and shows each rejection."""

from __future__ import annotations

import pytest

from sessionsvc.cli.demo import demo_settings, run_demo
from sessionsvc.cli.main import main


@pytest.fixture(scope="module")
def walkthrough() -> tuple[int, list[str]]:
    """One run of the demo for the whole module (it times 100 000 cached validations)."""
    lines: list[str] = []
    code = run_demo(out=lines.append)
    return code, lines


def line_with(lines: list[str], text: str) -> str:
    matches = [line for line in lines if text in line]
    assert len(matches) == 1, (text, lines)
    return matches[0]


def test_demo_returns_0(walkthrough: tuple[int, list[str]]) -> None:
    assert walkthrough[0] == 0


def test_demo_validates_the_fresh_access_token(walkthrough: tuple[int, list[str]]) -> None:
    assert "sub=alice" in line_with(walkthrough[1], "validates locally")


def test_demo_shows_the_revoked_rejection(walkthrough: tuple[int, list[str]]) -> None:
    line = line_with(walkthrough[1], "alice's access token")
    assert "rejected: reason=revoked" in line


@pytest.mark.parametrize(
    ("attack", "reason"),
    [
        ("alg none", "alg_not_allowed"),
        ("payload changed to sub=admin", "bad_signature"),
        ("refresh token used as access token", "wrong_type"),
        ("oversized token (10 KB)", "too_large"),
    ],
)
def test_demo_shows_each_attack_rejected(
    walkthrough: tuple[int, list[str]], attack: str, reason: str
) -> None:
    assert f"rejected: reason={reason}" in line_with(walkthrough[1], attack)


def test_demo_accepts_an_untouched_token(walkthrough: tuple[int, list[str]]) -> None:
    assert line_with(walkthrough[1], "dave's untouched access token").endswith("accepted")


@pytest.mark.parametrize(
    "who", ["alice's access token", "bob's access token", "carol's newest access token"]
)
def test_demo_revocations_reach_node_b(walkthrough: tuple[int, list[str]], who: str) -> None:
    assert "rejected: reason=revoked" in line_with(walkthrough[1], who)


def test_demo_detects_refresh_token_theft(walkthrough: tuple[int, list[str]]) -> None:
    assert "RefreshReuseDetected" in line_with(walkthrough[1], "twice-old refresh token")


def test_demo_output_holds_no_private_key(walkthrough: tuple[int, list[str]]) -> None:
    assert '"d"' not in "\n".join(walkthrough[1])


def test_demo_settings_are_development_with_separate_rings() -> None:
    settings = demo_settings()
    assert settings.env == "development"
    assert settings.access_jwks is not None
    assert settings.refresh_jwks is not None
    assert settings.access_jwks.get_secret_value() != settings.refresh_jwks.get_secret_value()


@pytest.mark.usefixtures("clean_env")
def test_cli_demo_needs_no_configuration(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    assert "reason=revoked" in capsys.readouterr().out


def test_demo_shows_what_a_publisher_may_not_do(walkthrough: tuple[int, list[str]]) -> None:
    text = "\n".join(walkthrough[1])
    assert "it may not send all.revoke: dead-lettered, not_allowed" in text
    if "throw-away server" in text:  # the trim is tried only on a Redis of the demo's own
        assert "XADD ss:events MAXLEN 0: NOPERM" in text


def test_an_identity_provider_logs_a_user_out_by_its_standard(
    walkthrough: tuple[int, list[str]],
) -> None:
    text = "\n".join(walkthrough[1])
    assert "POST /backchannel-logout on the worker's receiver: 200" in text
    assert "rejected: reason=revoked" in line_with(walkthrough[1], "erin's access token")
    assert "the same logout token again: 400" in text
