"""The intake layout and each intake's rules (pure): where events come in, what each may send."""

from __future__ import annotations

import pytest
from conftest import make_settings

from sessionsvc.revocation.events import EventRejected, parse_fields
from sessionsvc.revocation.intakes import Intakes

INTAKES = Intakes("ss", {"idp": ["session.revoke", "user.revoke"], "billing": ["session.revoke"]})


def event(**fields: str) -> object:
    return parse_fields(list(fields.items()))


def test_every_intake_shares_one_hash_tag_with_the_dead_letters() -> None:
    assert INTAKES.streams == [
        "ss:events",
        "{ss:events}:pubsub",
        "{ss:events}:idp.tokens",
        "{ss:events}:billing",
        "{ss:events}:idp",
    ]
    assert INTAKES.dlq == "{ss:events}:dlq"
    assert INTAKES.dedup_key("ab") == "{ss:events}:dedup:ab"
    # the tag {ss:events} hashes like the key ss:events: one slot on Redis Cluster
    assert all(s == "ss:events" or s.startswith("{ss:events}:") for s in INTAKES.streams)


def test_a_publisher_writes_its_own_stream_and_channel() -> None:
    idp = INTAKES.publishers["idp"]
    assert (idp.stream, idp.channel, idp.owner) == ("{ss:events}:idp", "{ss:events}:idp", "idp")
    assert INTAKES.by_stream["{ss:events}:idp"] is idp
    assert INTAKES.forward_target("{ss:events}:idp") is idp
    assert INTAKES.forward_target("ss:events") is INTAKES.forwarded  # a stream only workers write


def test_a_publisher_may_send_only_its_types() -> None:
    billing = INTAKES.publishers["billing"]
    with pytest.raises(EventRejected) as info:
        billing.admit(event(type="all.revoke", before="1"))  # type: ignore[arg-type]
    assert info.value.code == "not_allowed"
    assert INTAKES.trusted.admit(event(type="all.revoke", before="1")).type == "all.revoke"  # type: ignore[arg-type]


def test_the_owner_is_the_source_of_a_publishers_events() -> None:
    idp = INTAKES.publishers["idp"]
    assert idp.admit(event(type="session.revoke", sid="S")).source == "idp"  # type: ignore[arg-type]
    assert idp.admit(event(type="session.revoke", sid="S", source="idp")).source == "idp"  # type: ignore[arg-type]
    with pytest.raises(EventRejected) as info:
        idp.admit(event(type="session.revoke", sid="S", source="billing"))  # type: ignore[arg-type]
    assert info.value.code == "bad_field"
    trusted = INTAKES.trusted.admit(event(type="session.revoke", sid="S", source="admin"))  # type: ignore[arg-type]
    assert trusted.source == "admin"


def test_intakes_follow_the_settings() -> None:
    settings = make_settings(namespace="app1", publishers={"crm": ["session.revoke"]})
    intakes = Intakes.of(settings)
    assert intakes.streams == [
        "app1:events",
        "{app1:events}:pubsub",
        "{app1:events}:idp.tokens",
        "{app1:events}:crm",
    ]
    assert intakes.publishers["crm"].types == frozenset({"session.revoke"})


@pytest.mark.parametrize("name", ["dlq", "pubsub", "dedup", "bad name", "x" * 33, ""])
def test_a_publisher_name_that_would_clash_or_escape_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="publisher"):
        make_settings(publishers={name: ["session.revoke"]})


@pytest.mark.parametrize("pair", [("billing", "Billing"), ("hr-sync", "hr_sync")])
def test_publisher_names_that_would_share_a_password_variable_are_refused(
    pair: tuple[str, str],
) -> None:
    with pytest.raises(ValueError, match="too alike"):
        make_settings(publishers={name: ["session.revoke"] for name in pair})


def test_a_namespace_that_could_blur_redis_user_names_is_refused() -> None:
    """``ss`` with a publisher ``app`` and a namespace ``ss-pub`` would both have a Redis user
    ``ss-pub-app``."""
    with pytest.raises(ValueError, match="-pub"):
        make_settings(namespace="ss-pub")


@pytest.mark.parametrize("name", ["pubsub", "dlq"])
def test_a_process_may_not_publish_into_one_of_our_own_intakes(name: str) -> None:
    from sessionsvc import Publisher

    with pytest.raises(ValueError, match="publisher"):
        make_settings(publisher=name)
    with pytest.raises(ValueError, match="publisher"):
        Publisher(make_settings(redis_url="redis://127.0.0.1:1/0"), intake=name)


def test_identity_provider_tokens_come_in_through_the_trusted_and_the_idp_intakes_only() -> None:
    assert [i.name for i in INTAKES.all if i.tokens] == ["trusted", "idp"]
    assert INTAKES.idp.types == frozenset()  # no ordinary event
    assert INTAKES.idp_claim_key("ab") == "{ss:events}:idp.jti:ab"  # the intakes' slot
