"""sessionsvc.config: SESSIONSVC_* environment, .env files, defaults, errors, redaction."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import quote

import pytest
import redis.connection
from conftest import generated_passwords, leaked_parts
from pydantic import SecretStr, ValidationError

from sessionsvc import ConfigError, Settings, generate_jwks, load_settings
from sessionsvc.config import redact_url

PASSWORDS = generated_passwords()
URL_FORMS = [
    "redis://app:{pw}@redis.internal:6379/0",
    "redis://:{pw}@redis.internal:6379/0",
    "rediss://:{pw}@redis.internal/0?db=1",
    "unix://:{pw}@/run/redis.sock?db=0",
    "redis://redis.internal:6379/0?password={pw}",
    "redis://redis.internal/0?db=1&password={pw}&client_name=x",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No SESSIONSVC_* variable from outside, and a working directory without a .env file."""
    for name in list(os.environ):
        if name.upper().startswith("SESSIONSVC_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSIONSVC_ISSUER", "https://auth.example.test")
    monkeypatch.setenv("SESSIONSVC_AUDIENCE", "api")


def config_error(**overrides: object) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(**overrides)
    return str(info.value)


# --- sources ------------------------------------------------------------------------------------


@pytest.mark.usefixtures("required")
def test_reads_prefixed_environment_variables() -> None:
    settings = load_settings()
    assert settings.issuer == "https://auth.example.test"
    assert settings.audience == "api"


def test_ignores_unprefixed_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ISSUER", "https://auth.example.test")
    monkeypatch.setenv("AUDIENCE", "api")
    assert "SESSIONSVC_ISSUER: is required" in config_error()


@pytest.mark.usefixtures("required")
def test_env_names_are_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("sessionsvc_leeway", "12")
    assert load_settings().leeway == 12


@pytest.mark.usefixtures("required")
def test_unknown_prefixed_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSIONSVC_NOT_A_SETTING", "x")
    assert load_settings().issuer == "https://auth.example.test"


def test_reads_dot_env_in_the_working_directory(clean_env: Path) -> None:
    (clean_env / ".env").write_text(
        "SESSIONSVC_ISSUER=https://from-dotenv.test\nSESSIONSVC_AUDIENCE=dotenv-api\n"
        "SESSIONSVC_ACCESS_TTL=600\n"
    )
    settings = load_settings()
    assert (settings.issuer, settings.audience, settings.access_ttl) == (
        "https://from-dotenv.test",
        "dotenv-api",
        600,
    )


def test_environment_wins_over_dot_env(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clean_env / ".env").write_text(
        "SESSIONSVC_ISSUER=https://dotenv.test\nSESSIONSVC_AUDIENCE=a\n"
    )
    monkeypatch.setenv("SESSIONSVC_ISSUER", "https://env.test")
    assert load_settings().issuer == "https://env.test"


@pytest.mark.usefixtures("required")
def test_overrides_win_over_environment() -> None:
    assert load_settings(audience="other").audience == "other"


@pytest.mark.usefixtures("required")
def test_jwks_read_from_environment_as_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = json.dumps(generate_jwks("HS256", "h1"))
    monkeypatch.setenv("SESSIONSVC_ACCESS_JWKS", doc)
    settings = load_settings()
    assert isinstance(settings.access_jwks, SecretStr)
    assert settings.access_jwks.get_secret_value() == doc
    assert settings.refresh_jwks is None


@pytest.mark.usefixtures("required")
def test_app_claims_read_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSIONSVC_APP_CLAIMS", '["roles", "tenant"]')
    assert load_settings().app_claims == ("roles", "tenant")


@pytest.mark.usefixtures("required")
def test_app_claims_not_json_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSIONSVC_APP_CLAIMS", "roles,tenant")
    assert "SESSIONSVC_APP_CLAIMS" in config_error()


# --- defaults -----------------------------------------------------------------------------------


@pytest.mark.usefixtures("required")
def test_defaults() -> None:
    settings = load_settings()
    assert settings.access_ttl == 900
    assert settings.refresh_ttl == 604_800
    assert settings.leeway == 30
    assert settings.env == "production"
    assert settings.max_token_size == 8192
    assert settings.cache_size == 100_000
    assert settings.app_claims == ("roles", "scope")
    assert settings.access_jwks is None
    assert settings.refresh_jwks is None
    assert settings.redis_url.get_secret_value() == "redis://127.0.0.1:6379/0"


@pytest.mark.usefixtures("required")
@pytest.mark.parametrize("env", ["development", "production"])
def test_env_values(monkeypatch: pytest.MonkeyPatch, env: str) -> None:
    monkeypatch.setenv("SESSIONSVC_ENV", env)
    assert load_settings().env == env


# --- errors name the variable -------------------------------------------------------------------


def test_missing_required_settings_are_all_named() -> None:
    message = config_error()
    assert message.startswith("invalid settings: ")
    assert "SESSIONSVC_ISSUER: is required" in message
    assert "SESSIONSVC_AUDIENCE: is required" in message


@pytest.mark.usefixtures("required")
def test_empty_issuer_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSIONSVC_ISSUER", "")
    assert "SESSIONSVC_ISSUER" in config_error()


@pytest.mark.usefixtures("required")
@pytest.mark.parametrize("leeway", ["0", "300"])
def test_leeway_bounds_accepted(monkeypatch: pytest.MonkeyPatch, leeway: str) -> None:
    monkeypatch.setenv("SESSIONSVC_LEEWAY", leeway)
    assert load_settings().leeway == int(leeway)


@pytest.mark.usefixtures("required")
@pytest.mark.parametrize("leeway", ["301", "-1", "3600"])
def test_leeway_out_of_range_is_refused(monkeypatch: pytest.MonkeyPatch, leeway: str) -> None:
    monkeypatch.setenv("SESSIONSVC_LEEWAY", leeway)
    assert "SESSIONSVC_LEEWAY:" in config_error()


@pytest.mark.usefixtures("required")
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SESSIONSVC_ACCESS_TTL", "0"),
        ("SESSIONSVC_ACCESS_TTL", "86401"),
        ("SESSIONSVC_REFRESH_TTL", "-5"),
        ("SESSIONSVC_MAX_TOKEN_SIZE", "100"),
        ("SESSIONSVC_MAX_TOKEN_SIZE", "1000000"),
        ("SESSIONSVC_CACHE_SIZE", "-1"),
        ("SESSIONSVC_ENV", "staging"),
        ("SESSIONSVC_ACCESS_TTL", "fifteen minutes"),
    ],
)
def test_invalid_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    assert f"{name}:" in config_error()


@pytest.mark.usefixtures("required")
def test_refresh_ttl_shorter_than_access_ttl_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSIONSVC_ACCESS_TTL", "3600")
    monkeypatch.setenv("SESSIONSVC_REFRESH_TTL", "600")
    assert "refresh_ttl must not be shorter than access_ttl" in config_error()


@pytest.mark.usefixtures("required")
@pytest.mark.parametrize(
    ("staleness", "block"), [("1", 0.25), ("0.5", 0.125), ("2", 0.5), ("15", 1.0), ("3600", 1.0)]
)
def test_feed_block_defaults_from_max_staleness(
    monkeypatch: pytest.MonkeyPatch, staleness: str, block: float
) -> None:
    monkeypatch.setenv("SESSIONSVC_MAX_STALENESS", staleness)
    settings = load_settings()
    assert settings.feed_block == block
    assert type(settings.feed_block) is float


@pytest.mark.usefixtures("required")
def test_explicit_feed_block_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSIONSVC_MAX_STALENESS", "1")
    monkeypatch.setenv("SESSIONSVC_FEED_BLOCK", "0.9")
    assert load_settings().feed_block == 0.9


@pytest.mark.usefixtures("required")
@pytest.mark.parametrize(("block", "staleness"), [("2", "1"), ("1", "1"), ("30", "15")])
def test_explicit_feed_block_not_shorter_than_max_staleness_is_refused(
    monkeypatch: pytest.MonkeyPatch, block: str, staleness: str
) -> None:
    monkeypatch.setenv("SESSIONSVC_FEED_BLOCK", block)
    monkeypatch.setenv("SESSIONSVC_MAX_STALENESS", staleness)
    message = config_error()
    assert f"SESSIONSVC_FEED_BLOCK={float(block):g}" in message
    assert f"SESSIONSVC_MAX_STALENESS={float(staleness):g}" in message


def test_feed_block_default_follows_max_staleness_in_the_constructor() -> None:
    settings = Settings(issuer="i", audience="a", max_staleness=0.6, _env_file=None)  # type: ignore[call-arg]
    assert settings.feed_block == 0.15


@pytest.mark.usefixtures("required")
def test_error_never_echoes_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSIONSVC_LEEWAY", "hunter2-not-a-number")
    monkeypatch.setenv("SESSIONSVC_ENV", "s3cr3t-env")
    message = config_error()
    assert "hunter2" not in message
    assert "s3cr3t" not in message


def test_load_settings_raises_config_error_not_validation_error() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert not isinstance(info.value, ValidationError)
    assert info.value.__cause__ is None  # `from None`: the pydantic error (with input) is dropped


# --- secrets ------------------------------------------------------------------------------------


@pytest.mark.usefixtures("required")
def test_secrets_do_not_show_in_repr_or_str(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = json.dumps(generate_jwks("HS256", "h1"))
    secret = json.loads(doc)["keys"][0]["k"]
    monkeypatch.setenv("SESSIONSVC_ACCESS_JWKS", doc)
    monkeypatch.setenv("SESSIONSVC_REFRESH_JWKS", doc)
    monkeypatch.setenv("SESSIONSVC_REDIS_URL", "redis://:hunter2@redis.internal:6379/0")
    settings = load_settings()
    for text in (repr(settings), str(settings)):
        assert secret not in text
        assert "hunter2" not in text


@pytest.mark.usefixtures("required")
def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(ValidationError):
        settings.leeway = 5  # type: ignore[misc]


def test_settings_constructor_skips_dot_env_when_asked(clean_env: Path) -> None:
    (clean_env / ".env").write_text("SESSIONSVC_LEEWAY=7\n")
    settings = Settings(issuer="i", audience="a", _env_file=None)  # type: ignore[call-arg]
    assert settings.leeway == 30


# --- redact_url ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://user@host:6379/0", "redis://user@host:6379/0"),
        ("redis://:hunter2@host:6379/0", "redis://:***@host:6379/0"),
        ("redis://alice:hunter2@host:6379/2", "redis://alice:***@host:6379/2"),
        ("rediss://alice:hunter2@host/0", "rediss://alice:***@host/0"),
        ("redis://:hunter2@host", "redis://:***@host"),
        ("redis://:hunter2@[::1]:6379/0", "redis://:***@[::1]:6379/0"),
        ("redis://:p%40ss@host/0", "redis://:***@host/0"),
        ("redis://:pa@ss@host/0", "redis://:***@host/0"),
        ("redis://:hunter2@host/0?db=1#x", "redis://:***@host/0?db=1#x"),
    ],
)
def test_redact_url(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted


@pytest.mark.parametrize(
    "url",
    [
        "redis://host:6379/0?password=hunter2",
        "redis://host/0?db=1&password=hunter2",
        "unix:///run/redis.sock?password=hunter2&db=0",
        "redis://host/0?pass%77ord=hunter2",
    ],
)
def test_redact_url_masks_password_query_parameter(url: str) -> None:
    redacted = redact_url(url)
    assert "hunter2" not in redacted
    assert "=***" in redacted


def test_redact_url_masks_every_password_parameter() -> None:
    url = "rediss://host/0?ssl_password=TLSKEYPASS&db=1"
    assert redact_url(url) == "rediss://host/0?ssl_password=***&db=1"


def test_redact_url_keeps_unix_socket_path() -> None:
    assert redact_url("unix:///run/redis.sock?password=x") == "unix:///run/redis.sock?password=***"


@pytest.mark.parametrize("url", ["redis://:hunter2@host:notaport/0", "redis://:hunter2@[::1/0"])
def test_redact_url_handles_unparseable_urls(url: str) -> None:
    assert "hunter2" not in redact_url(url)


@pytest.mark.parametrize("password", PASSWORDS)
@pytest.mark.parametrize("form", URL_FORMS)
def test_redact_url_shows_no_part_of_a_generated_password(password: str, form: str) -> None:
    assert leaked_parts(redact_url(form.format(pw=password)), password) == []


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("redis://:ab/cd@host/0", "redis://:***@host/0"),
        ("redis://:ab?cd@host/0?db=1", "redis://:***@host/0?db=1"),
        ("redis://:ab#cd@host/0", "redis://:***@host/0"),
        ("redis://u:ab@cd@host/0", "redis://u:***@host/0"),
        ("redis://host/0?password=ab#cd&db=1", "redis://host/0?password=***&db=1"),
        ("redis://host/0?password=ab@cd", "redis://host/0?password=***"),
    ],
)
def test_redact_url_takes_the_userinfo_to_the_last_at(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted


@pytest.mark.parametrize("password", PASSWORDS)
def test_redact_url_masks_a_password_query_value_that_follows_an_at(password: str) -> None:
    url = f"redis://host:6379/0?password={password}"
    assert leaked_parts(redact_url(url), password) == []


# --- SESSIONSVC_REDIS_URL is read exactly as redis-py reads it ----------------------------------


def redis_url_error(monkeypatch: pytest.MonkeyPatch, url: str) -> str:
    monkeypatch.setenv("SESSIONSVC_REDIS_URL", url)
    message = config_error()
    assert "SESSIONSVC_REDIS_URL" in message
    return message


@pytest.mark.usefixtures("required")
@pytest.mark.parametrize("password", [p for p in PASSWORDS if set(p) & set("/?#@")])
@pytest.mark.parametrize("form", [f for f in URL_FORMS if "password=" not in f])
def test_redis_url_with_unescaped_delimiters_in_the_password_is_refused(
    monkeypatch: pytest.MonkeyPatch, password: str, form: str
) -> None:
    message = redis_url_error(monkeypatch, form.format(pw=password))
    assert "percent-encode" in message
    assert leaked_parts(message, password) == []


@pytest.mark.usefixtures("required")
@pytest.mark.parametrize(
    "url",
    [
        "redis://:hunter2@host:hunter3/0",  # a port that is not a number
        "redis://:hunter2/0",  # no @: "hunter2" would be the port
        "redis://:hunter2@[::1/0",
        "redis://:hun[ter]2@host/0",
        "redis://:hunter2@host/0#fragment",
        "redis://:hun%zzter2@host/0",
        "redis://host/0?password=hunter2&hunter3=1",  # "&" in a password: an unknown parameter
        "redis://host/0?password=hunter2+hunter3",  # "+" would become a space
        "redis://host/0?password=hunter2@hunter3",
        "http://:hunter2@host/0",
        "hunter2",
    ],
)
def test_redis_url_that_redis_py_would_misread_is_refused(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    message = redis_url_error(monkeypatch, url)
    assert "hunter" not in message


def test_settings_validation_error_never_echoes_the_redis_url() -> None:
    with pytest.raises(ValidationError) as info:
        Settings(issuer="i", audience="a", redis_url="redis://:hunter/2@h/0", _env_file=None)  # type: ignore[call-arg,arg-type]
    assert "hunter" not in str(info.value)


@pytest.mark.usefixtures("required")
@pytest.mark.parametrize("password", PASSWORDS)
@pytest.mark.parametrize("form", URL_FORMS)
def test_redis_url_with_a_percent_encoded_password_is_accepted(
    monkeypatch: pytest.MonkeyPatch, password: str, form: str
) -> None:
    url = form.format(pw=quote(password, safe=""))
    monkeypatch.setenv("SESSIONSVC_REDIS_URL", url)
    assert load_settings().redis_url.get_secret_value() == url
    assert redis.connection.parse_url(url)["password"] == password


@pytest.mark.usefixtures("required")
@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0",
        "redis://alice:p4ss:w0rd@[::1]:6380/2?protocol=3&client_name=svc",
        "rediss://host?socket_timeout=2.5&protocol=3",
        "unix:///run/redis.sock?db=3",
        "redis://localhost",
    ],
)
def test_plain_redis_urls_are_accepted(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("SESSIONSVC_REDIS_URL", url)
    assert load_settings().redis_url.get_secret_value() == url
