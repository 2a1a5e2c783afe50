"""sessionsvc.idp.trust.load_idps: SESSIONSVC_IDPS as JSON or a file; every refusal names the
problem and never a bearer token."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sessionsvc.errors import ConfigError
from sessionsvc.idp.trust import EVENT_KINDS, MAX_IDPS, load_idps

TOKEN = "rt-9f3b1c7e2a4d6f8b0c1e3a5d7f9b2c4e"
POLL_TOKEN = "pt-0a2c4e6f8b1d3f5a7c9e1b3d5f7a9c2e"


def entry(**fields: Any) -> dict[str, Any]:
    return {
        "issuer": "https://idp.example.test",
        "audience": "client-1",
        "jwks": "https://idp.example.test/certs",
    } | fields


def load(*entries: Any) -> Any:
    return load_idps(json.dumps(list(entries)))


def test_a_valid_entry_with_its_defaults() -> None:
    idps = load(entry())
    (trust,) = idps
    assert idps.get("https://idp.example.test") is trust and len(idps) == 1
    assert trust.algorithms == ("RS256",) and trust.events == EVENT_KINDS
    assert trust.receiver_tokens == () and trust.poll is None and not trust.require_typ


def test_every_member_is_read() -> None:
    (trust,) = load(
        entry(
            algorithms=["ES256", "EdDSA"],
            events=["backchannel_logout"],
            require_typ=True,
            receiver_tokens=[TOKEN],
            poll={"url": "https://idp.example.test/poll", "token": POLL_TOKEN},
            max_token_age=60,
            jwks_refresh=30,
            unknown_kid_cooldown=5,
        )
    )
    assert trust.algorithms == ("ES256", "EdDSA") and trust.events == {"backchannel_logout"}
    assert trust.receiver_tokens[0].get_secret_value() == TOKEN
    assert trust.poll is not None and trust.poll.interval == 5.0
    assert (trust.max_token_age, trust.jwks_refresh, trust.unknown_kid_cooldown) == (60, 30, 5)


def test_an_audience_string_is_one_audience() -> None:
    (trust,) = load(entry(audience="client-1"))
    assert trust.audience == ("client-1",)


def test_an_audience_list_is_kept() -> None:
    (trust,) = load(entry(audience=["client-1", "client-2"]))
    assert trust.audience == ("client-1", "client-2")


def test_an_empty_audience_list_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"0\.audience"):
        load(entry(audience=[]))


def test_nothing_configured_is_no_identity_provider() -> None:
    assert len(load_idps(None)) == 0 and len(load_idps("  ")) == 0 and len(load_idps("[]")) == 0


def test_a_duplicate_issuer_is_refused() -> None:
    with pytest.raises(ConfigError, match="listed twice"):
        load(entry(), entry(audience="other"))


@pytest.mark.parametrize("alg", ["none", "HS256", "HS512", "RSA-OAEP"])
def test_none_and_hmac_are_refused(alg: str) -> None:
    with pytest.raises(ConfigError, match="never none, never HMAC"):
        load(entry(algorithms=["RS256", alg]))


def test_no_algorithm_is_refused() -> None:
    with pytest.raises(ConfigError, match="at least one algorithm"):
        load(entry(algorithms=[]))


@pytest.mark.parametrize("text", ["[{", '[{"issuer": "a", "issuer": "b"}]', "[NaN]"])
def test_bad_json_is_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="not strict JSON"):
        load_idps(text)


def test_an_object_instead_of_a_list_is_refused() -> None:
    with pytest.raises(ConfigError, match="not a JSON list"):
        load_idps(json.dumps(entry()))


def test_an_unknown_member_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"0\.audiences: Extra inputs"):
        load(entry(audiences=["client-1"]))


def test_an_unknown_event_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"0\.events"):
        load(entry(events=["account_disabled"]))


def test_a_file_path_is_read(tmp_path: Path) -> None:
    path = tmp_path / "idps.json"
    path.write_text(json.dumps([entry()]))
    assert [t.issuer for t in load_idps(str(path))] == ["https://idp.example.test"]


def test_an_unreadable_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nor a readable file"):
        load_idps(str(tmp_path / "missing.json"))


def test_a_missing_ca_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ca_file"):
        load(entry(ca_file=str(tmp_path / "missing.pem")))


def test_too_many_identity_providers_are_refused() -> None:
    entries = [entry(issuer=f"https://idp{i}.example.test") for i in range(MAX_IDPS + 1)]
    with pytest.raises(ConfigError, match=f"at most {MAX_IDPS}"):
        load(*entries)
    assert len(load(*entries[:MAX_IDPS])) == MAX_IDPS


@pytest.mark.parametrize(
    "bad",
    [
        {"issuer": ""},
        {"max_token_age": 1},
        {"receiver_tokens": [TOKEN, 7]},
        {"poll": {"url": "https://p.test", "token": POLL_TOKEN, "interval": 0}},
        {"issuer": "https://idp.example.test\n" + TOKEN},
    ],
)
def test_receiver_tokens_are_never_in_an_error(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as info:
        load(entry(**({"receiver_tokens": [TOKEN]} | bad)))
    assert TOKEN not in str(info.value) and POLL_TOKEN not in str(info.value)
    assert TOKEN[3:12] not in str(info.value)


def test_receiver_tokens_are_never_in_a_repr() -> None:
    (trust,) = load(
        entry(receiver_tokens=[TOKEN], poll={"url": "https://p.test", "token": POLL_TOKEN})
    )
    for text in (repr(trust), str(trust), repr(trust.poll), trust.model_dump_json()):
        assert TOKEN not in text and POLL_TOKEN not in text
