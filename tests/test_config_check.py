"""sessionsvc.cli.config_check: every finding at once, and never a secret in one."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from sessionsvc import Settings, generate_jwk
from sessionsvc.cli.config_check import check_config

REDIS_PASSWORD = "hunter2-redis-password"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("SESSIONSVC_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def jwks(*keys: dict[str, Any]) -> str:
    return json.dumps({"keys": list(keys)})


def settings(**values: Any) -> Settings:
    base: dict[str, Any] = {
        "issuer": "https://auth.example.test",
        "audience": "api",
        "_env_file": None,
    }
    return Settings(**(base | values))


def levels(findings: list[tuple[str, str]], level: str) -> list[str]:
    return [message for lvl, message in findings if lvl == level]


def assert_no_secret(findings: list[tuple[str, str]], *secrets: str) -> None:
    text = "\n".join(message for _, message in findings)
    for secret in secrets:
        assert secret not in text


def test_good_configuration_has_only_ok_findings() -> None:
    findings = check_config(
        settings(
            access_jwks=jwks(generate_jwk("EdDSA", "a1")),
            refresh_jwks=jwks(generate_jwk("EdDSA", "r1")),
        )
    )
    assert {level for level, _ in findings} == {"ok"}
    assert "access key ring: a1 (EdDSA, signs)" in levels(findings, "ok")
    assert "refresh key ring: r1 (EdDSA, signs)" in levels(findings, "ok")


def test_reports_issuer_audience_and_lifetimes() -> None:
    oks = levels(check_config(settings(env="development", leeway=10)), "ok")
    assert "env=development issuer='https://auth.example.test' audience='api'" in oks
    assert "access_ttl=900s refresh_ttl=604800s leeway=10s" in oks
    assert any(line.startswith("durability=none: not checked") for line in oks)
    oks = levels(check_config(settings(durability="replica")), "ok")
    assert any(line.startswith("durability=replica: confirmed") for line in oks)


def test_missing_access_jwks_is_an_error() -> None:
    findings = check_config(settings(refresh_jwks=jwks(generate_jwk("EdDSA", "r1"))))
    assert levels(findings, "error") == ["SESSIONSVC_ACCESS_JWKS is not set"]


def test_missing_refresh_jwks_is_a_warning() -> None:
    findings = check_config(settings(access_jwks=jwks(generate_jwk("EdDSA", "a1"))))
    assert levels(findings, "error") == []
    assert levels(findings, "warning") == [
        "SESSIONSVC_REFRESH_JWKS is not set: this node cannot issue or refresh tokens"
    ]


def test_public_only_access_ring_is_a_warning() -> None:
    public = {k: v for k, v in generate_jwk("EdDSA", "a1").items() if k != "d"}
    findings = check_config(settings(access_jwks=jwks(public)))
    assert "access key ring has no private key: verify only" in levels(findings, "warning")
    assert "access key ring: a1 (EdDSA)" in levels(findings, "ok")


def test_ring_lists_every_key_and_marks_the_signing_one() -> None:
    ring = jwks(
        generate_jwk("EdDSA", "new"), generate_jwk("ES256", "old") | {"key_ops": ["verify"]}
    )
    oks = levels(check_config(settings(access_jwks=ring)), "ok")
    assert "access key ring: new (EdDSA, signs), old (ES256)" in oks


def test_shared_key_material_is_an_error_without_the_secret() -> None:
    hs = generate_jwk("HS256", "a1")
    findings = check_config(settings(access_jwks=jwks(hs), refresh_jwks=jwks(hs | {"kid": "r1"})))
    assert levels(findings, "error") == [
        "refresh key 'r1' has the same key material as an access key: "
        "use separate keys for the two rings"
    ]
    assert_no_secret(findings, hs["k"])


def test_shared_kid_is_an_error() -> None:
    findings = check_config(
        settings(
            access_jwks=jwks(generate_jwk("EdDSA", "k1")),
            refresh_jwks=jwks(generate_jwk("EdDSA", "k1")),
        )
    )
    assert levels(findings, "error") == ["access and refresh key rings share kid(s) ['k1']"]


def test_refused_key_is_an_error_without_the_secret() -> None:
    weak = generate_jwk("HS256", "weak") | {"k": "c2VjcmV0"}  # "secret"
    findings = check_config(
        settings(access_jwks=jwks(weak), refresh_jwks=jwks(generate_jwk("EdDSA", "r1")))
    )
    errors = levels(findings, "error")
    assert len(errors) == 1
    assert errors[0].startswith("access key ring, kid 'weak': HS256 secret is 6 bytes")
    assert_no_secret(findings, "c2VjcmV0")


def test_problems_in_both_rings_are_all_reported() -> None:
    findings = check_config(
        settings(
            access_jwks=jwks(generate_jwk("EdDSA", "a1") | {"alg": "none"}),
            refresh_jwks=jwks(generate_jwk("EdDSA", "r1") | {"use": "enc"}),
        )
    )
    errors = levels(findings, "error")
    assert len(errors) == 2
    assert errors[0].startswith("access key ring, kid 'a1'")
    assert errors[1].startswith("refresh key ring, kid 'r1'")


def test_unreadable_jwks_file_is_an_error(tmp_path: Path) -> None:
    findings = check_config(settings(access_jwks=str(tmp_path / "missing.json")))
    assert levels(findings, "error") == [
        "access key ring: cannot read JWKS file: No such file or directory"
    ]


def test_redis_password_is_redacted() -> None:
    url = f"redis://app:{REDIS_PASSWORD}@redis.internal:6379/0"
    findings = check_config(settings(redis_url=url))
    assert "redis_url=redis://app:***@redis.internal:6379/0" in levels(findings, "ok")
    assert_no_secret(findings, REDIS_PASSWORD)


def test_no_secret_in_any_finding() -> None:
    access, refresh = generate_jwk("HS256", "a1"), generate_jwk("ES256", "r1")
    findings = check_config(
        settings(
            access_jwks=jwks(access),
            refresh_jwks=jwks(refresh),
            redis_url=f"redis://:{REDIS_PASSWORD}@h/0?password={REDIS_PASSWORD}",
        )
    )
    assert {level for level, _ in findings} == {"ok"}
    assert_no_secret(findings, access["k"], refresh["d"], REDIS_PASSWORD)


def test_reads_the_environment_when_no_settings_are_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SESSIONSVC_ISSUER", "https://env.example.test")
    monkeypatch.setenv("SESSIONSVC_AUDIENCE", "api")
    monkeypatch.setenv("SESSIONSVC_ACCESS_JWKS", jwks(generate_jwk("EdDSA", "a1")))
    findings = check_config()
    assert any("issuer='https://env.example.test'" in m for m in levels(findings, "ok"))


def test_invalid_settings_are_one_error_naming_the_variables() -> None:
    findings = check_config()
    assert len(findings) == 1
    level, message = findings[0]
    assert level == "error"
    assert "SESSIONSVC_ISSUER: is required" in message
    assert "SESSIONSVC_AUDIENCE: is required" in message


def test_each_trusted_identity_provider_is_listed_without_its_bearer_tokens() -> None:
    secret = "receiver-bearer-" + "q8Zx3Wv7" * 4
    idps = [
        {
            "issuer": "https://sso.example.test/realms/main",
            "audience": "app",
            "jwks": "https://sso.example.test/certs",
            "events": ["backchannel_logout"],
            "receiver_tokens": [secret],
        }
    ]
    findings = check_config(settings(idps=json.dumps(idps)))
    assert any(
        "'https://sso.example.test/realms/main': backchannel_logout (push)" in f
        for f in levels(findings, "ok")
    )
    assert_no_secret(findings, secret)


def test_an_unusable_identity_provider_entry_is_an_error() -> None:
    bad = [{"issuer": "x", "audience": "a", "jwks": "{}", "algorithms": ["HS256"]}]
    findings = check_config(settings(idps=json.dumps(bad)))
    assert any("never HMAC" in f for f in levels(findings, "error"))
