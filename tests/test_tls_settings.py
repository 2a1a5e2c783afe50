"""The TLS settings (``SESSIONSVC_REDIS_CA_FILE``, ``…_CLIENT_CERT_FILE``, ``…_CLIENT_KEY_FILE``):
refused with a ``ConfigError`` naming the variable when a file is missing, unreadable or not
what it should be, or when the URL is not ``rediss://``; never quoting a file's content. No
Redis here (``tests/test_tls.py`` connects)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from conftest import AUDIENCE, ISSUER, make_settings
from cryptography.hazmat.primitives import serialization
from tls_harness import Pki, make_pki

from sessionsvc import ConfigError
from sessionsvc._redis.clients import tls_options
from sessionsvc.config import load_settings

URL = "rediss://127.0.0.1:6380/0"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def refused(**overrides: Any) -> str:
    """The message of the ``ConfigError`` that settings with ``overrides`` end in."""
    values: dict[str, Any] = {"issuer": ISSUER, "audience": AUDIENCE, "redis_url": URL}
    with pytest.raises(ConfigError) as info:
        load_settings(_env_file=None, **values | overrides)
    return str(info.value)


def test_the_files_reach_every_client_with_verification_on(pki: Pki) -> None:
    settings = make_settings(
        redis_url=URL,
        redis_ca_file=str(pki.ca),
        redis_client_cert_file=str(pki.client_cert),
        redis_client_key_file=str(pki.client_key),
    )
    assert tls_options(settings) == {
        "ssl_cert_reqs": "required",
        "ssl_check_hostname": True,
        "ssl_ca_certs": str(pki.ca),
        "ssl_certfile": str(pki.client_cert),
        "ssl_keyfile": str(pki.client_key),
    }


def test_rediss_without_a_ca_file_verifies_against_the_system_store() -> None:
    options = tls_options(make_settings(redis_url=URL))
    assert options["ssl_cert_reqs"] == "required" and options["ssl_check_hostname"] is True
    assert options["ssl_ca_certs"] is None


def test_a_relative_path_is_kept_absolute(pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(pki.ca.parent)
    settings = make_settings(redis_url=URL, redis_ca_file=pki.ca.name)
    assert settings.redis_ca_file == pki.ca


def test_plain_urls_get_no_tls_options() -> None:
    assert tls_options(make_settings(redis_url="redis://127.0.0.1:6379/0")) == {}


def test_an_empty_value_is_unset() -> None:
    assert make_settings(redis_url=URL, redis_ca_file=" ").redis_ca_file is None


def test_a_missing_file_is_refused_by_its_name(tmp_path: Path) -> None:
    message = refused(redis_ca_file=str(tmp_path / "nowhere-ca.pem"))
    assert "SESSIONSVC_REDIS_CA_FILE" in message and "not a file" in message
    assert "nowhere" not in message


def test_a_directory_is_refused(tmp_path: Path) -> None:
    assert "SESSIONSVC_REDIS_CLIENT_CERT_FILE" in refused(redis_client_cert_file=str(tmp_path))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_refused(pki: Pki, tmp_path: Path) -> None:
    locked = tmp_path / "ca.pem"
    locked.write_bytes(pki.ca.read_bytes())
    locked.chmod(0)
    assert "SESSIONSVC_REDIS_CA_FILE: Value error, cannot be read" in refused(
        redis_ca_file=str(locked)
    )


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "unix:///run/redis.sock"])
def test_tls_files_with_a_url_that_is_not_rediss_are_refused(pki: Pki, url: str) -> None:
    message = refused(redis_url=url, redis_ca_file=str(pki.ca))
    assert "SESSIONSVC_REDIS_CA_FILE: for a rediss:// SESSIONSVC_REDIS_URL (TLS) only" in message


@pytest.mark.parametrize("given", ["redis_client_cert_file", "redis_client_key_file"])
def test_a_client_certificate_needs_its_key_and_the_key_its_certificate(
    pki: Pki, given: str
) -> None:
    path = pki.client_cert if given == "redis_client_cert_file" else pki.client_key
    message = refused(**{given: str(path)})
    assert "SESSIONSVC_REDIS_CLIENT_CERT_FILE and SESSIONSVC_REDIS_CLIENT_KEY_FILE go together" in (
        message
    )


def test_a_ca_file_without_a_certificate_is_refused_without_its_content(tmp_path: Path) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("-----BEGIN CERTIFICATE-----\nSECRETISH\n-----END CERTIFICATE-----\n")
    message = refused(redis_ca_file=str(bogus))
    assert "SESSIONSVC_REDIS_CA_FILE holds no PEM certificate" in message
    assert "SECRETISH" not in message


def test_a_key_that_is_not_the_certificates_is_refused_without_key_material(pki: Pki) -> None:
    message = refused(
        redis_client_cert_file=str(pki.client_cert), redis_client_key_file=str(pki.server_key)
    )
    assert "must be a PEM certificate and its private key" in message
    key_body = pki.server_key.read_text().splitlines()[1]
    assert key_body[:16] not in message


def test_an_encrypted_key_is_refused_not_prompted_for(pki: Pki, tmp_path: Path) -> None:
    key = serialization.load_pem_private_key(pki.client_key.read_bytes(), password=None)
    encrypted = tmp_path / "client.key"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    message = refused(
        redis_client_cert_file=str(pki.client_cert), redis_client_key_file=str(encrypted)
    )
    assert "SESSIONSVC_REDIS_CLIENT_KEY_FILE is encrypted" in message


@pytest.mark.parametrize(
    "query", ["ssl_cert_reqs=none", "ssl_check_hostname=false", "ssl_ca_certs=%2Ftmp%2Fca.pem"]
)
def test_tls_options_in_the_url_are_refused(query: str) -> None:
    message = refused(redis_url=f"{URL}?{query}")
    assert "SESSIONSVC_REDIS_URL" in message and "ssl_* query parameter" in message
    assert query not in message
