"""Shared fixtures: throw-away key rings, settings, an issuer, a validator and a manual clock."""

from __future__ import annotations

import base64
import json
import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from sessionsvc import Key, Settings, TokenIssuer, Validator, generate_jwks, load_jwks

# redis_server / redis_url (tests/redis_server.py); redis_cluster / redis_cluster_url
# (tests/redis_cluster.py); chromium, browser_context, screenshot, live_server
# (tests/browser_harness.py)
pytest_plugins = ["redis_server", "redis_cluster", "redis_sentinel", "browser_harness"]

ISSUER = "https://auth.example.test"
AUDIENCE = "api.example.test"
NOW = 1_800_000_000


def generated_passwords() -> list[str]:
    """Redis passwords as ``openssl rand -base64 24`` and similar generators make them: 32
    base64 characters (``+``, ``/``, a ``=`` pad), each with one of the URL delimiters
    ``/ ? # @ :`` (and one with all of them) in the middle. Deterministic."""
    rng = random.Random(20240607)
    passwords = []
    for special in ["/", "?", "#", "@", ":", "/?#@:"]:
        raw = base64.b64encode(rng.randbytes(24)).decode("ascii")
        passwords.append(f"{raw[:9]}{special}{raw[9:17]}+{raw[17:]}=")
    return passwords


def leaked_parts(text: str, secret: str, size: int = 4) -> list[str]:
    """Every ``size``-character substring of ``secret`` that occurs in ``text``."""
    parts = {secret[i : i + size] for i in range(len(secret) - size + 1)}
    return sorted(part for part in parts if part in text)


class ManualClock:
    """A clock the test moves by hand (``clock.now += 60``)."""

    def __init__(self, now: float = NOW) -> None:
        self.now = float(now)

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def make_settings(alg: str = "EdDSA", **overrides: Any) -> Settings:
    """Settings with new access and refresh rings of ``alg``; no .env file is read."""
    values: dict[str, Any] = {
        "access_jwks": json.dumps(generate_jwks(alg, f"access-{alg}")),
        "refresh_jwks": json.dumps(generate_jwks(alg, f"refresh-{alg}")),
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "env": "development",
        "_env_file": None,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings() -> Settings:
    return make_settings("EdDSA")


@pytest.fixture
def issuer(settings: Settings, clock: ManualClock) -> TokenIssuer:
    return TokenIssuer(settings, clock=clock)


@pytest.fixture
def validator(settings: Settings, clock: ManualClock) -> Validator:
    return Validator(settings, clock=clock)


@pytest.fixture
def access_key(settings: Settings) -> Key:
    """The active access key of ``settings`` (private, for signing hostile tokens)."""
    assert settings.access_jwks is not None
    return load_jwks(settings.access_jwks.get_secret_value(), ring="access").signing_key()


@pytest.fixture
def make_token(access_key: Key) -> Callable[..., str]:
    """The shared claims fixture: ``make_token(exp=..., sub=DROP)`` is an access token of
    ``tokens_harness.claims(...)`` signed with ``access_key`` (one algorithm, EdDSA)."""
    from tokens_harness import token_for

    return lambda **claim_overrides: token_for(access_key, **claim_overrides)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No SESSIONSVC_* from outside, no .env (cwd is a fresh tmp dir), and structlog reset
    afterwards (the CLI's main() configures logging)."""
    for name in list(os.environ):
        if name.upper().startswith("SESSIONSVC_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    yield
    structlog.reset_defaults()
