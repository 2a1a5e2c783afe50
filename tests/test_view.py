"""sessionsvc.revocation.view: every revocation kind, expiry, union merge, generation, checks."""

from __future__ import annotations

import dataclasses
import math

import pytest

from sessionsvc.revocation.view import KINDS, Revocation, RevocationView

NOW = 1_800_000_000
LATER = NOW + 3600


def check(
    view: RevocationView,
    *,
    sid: str = "s0",
    jti: str = "j0",
    sub: str = "u0",
    iat: int = NOW,
    kid: str = "k0",
) -> str | None:
    return view.check(sid, jti, sub, iat, kid)


def view_of(*revs: Revocation) -> RevocationView:
    view = RevocationView()
    for rev in revs:
        view.apply(rev)
    return view


def state(view: RevocationView) -> tuple[object, ...]:
    return (view.sessions, view.tokens, view.users, view.keys, view.global_before)


def test_empty_view_rejects_nothing() -> None:
    view = RevocationView()
    assert check(view) is None
    assert len(view) == 0
    assert view.generation == 0


# --- each kind ----------------------------------------------------------------------------------


def test_session_revocation_rejects_its_sid_only() -> None:
    view = view_of(Revocation("session", "s1", until=LATER))
    assert check(view, sid="s1") == "session"
    assert check(view, sid="s2") is None


def test_session_revocation_rejects_tokens_issued_after_it() -> None:
    view = view_of(Revocation("session", "s1", until=LATER))
    assert check(view, sid="s1", iat=LATER - 1) == "session"


def test_token_revocation_rejects_its_jti_only() -> None:
    view = view_of(Revocation("token", "j1", until=LATER))
    assert check(view, jti="j1") == "token"
    assert check(view, jti="j2") is None


def test_user_revocation_rejects_tokens_issued_before() -> None:
    view = view_of(Revocation("user", "alice", before=NOW, until=LATER))
    assert check(view, sub="alice", iat=NOW - 1) == "user"


def test_user_revocation_boundary_iat_equal_to_before_passes() -> None:
    view = view_of(Revocation("user", "alice", before=NOW, until=LATER))
    assert check(view, sub="alice", iat=NOW) is None


def test_user_revocation_passes_tokens_issued_after() -> None:
    view = view_of(Revocation("user", "alice", before=NOW, until=LATER))
    assert check(view, sub="alice", iat=NOW + 1) is None


def test_user_revocation_passes_other_users() -> None:
    view = view_of(Revocation("user", "alice", before=NOW, until=LATER))
    assert check(view, sub="bob", iat=NOW - 1) is None


def test_user_revocation_with_fractional_before() -> None:
    view = view_of(Revocation("user", "alice", before=NOW + 0.5, until=LATER))
    assert check(view, sub="alice", iat=NOW) == "user"
    assert check(view, sub="alice", iat=NOW + 1) is None


def test_global_revocation_rejects_every_token_issued_before() -> None:
    view = view_of(Revocation("all", before=NOW, until=LATER))
    assert check(view, sub="anyone", iat=NOW - 1) == "all"


def test_global_revocation_boundary_iat_equal_to_before_passes() -> None:
    view = view_of(Revocation("all", before=NOW, until=LATER))
    assert check(view, iat=NOW) is None


def test_key_revocation_rejects_its_kid_only() -> None:
    view = view_of(Revocation("key", "k1"))
    assert check(view, kid="k1") == "key"
    assert check(view, kid="k2") is None


def test_first_matching_kind_is_reported() -> None:
    view = view_of(
        Revocation("session", "s1", until=LATER),
        Revocation("token", "j1", until=LATER),
        Revocation("user", "u1", before=LATER, until=LATER),
        Revocation("all", before=LATER, until=LATER),
        Revocation("key", "k1"),
    )
    assert check(view, sid="s1", jti="j1", sub="u1", kid="k1") == "session"
    assert check(view, jti="j1", sub="u1", kid="k1") == "token"
    assert check(view, sub="u1", kid="k1") == "user"
    assert check(view, kid="k1") == "all"
    assert check(view, kid="k1", iat=LATER) == "key"


def test_len_counts_entries() -> None:
    view = view_of(
        Revocation("session", "s1"),
        Revocation("token", "j1"),
        Revocation("user", "u1", before=NOW),
        Revocation("key", "k1"),
    )
    assert len(view) == 4


# --- apply only widens ----------------------------------------------------------------------------


def test_later_until_extends_a_session_entry() -> None:
    view = view_of(Revocation("session", "s1", until=NOW), Revocation("session", "s1", until=LATER))
    assert view.sessions.until("s1") == LATER


def test_earlier_until_never_shortens_an_entry() -> None:
    view = view_of(Revocation("token", "j1", until=LATER))
    assert view.apply(Revocation("token", "j1", until=NOW)) is False
    assert view.tokens.until("j1") == LATER


def test_user_entry_keeps_the_larger_before_and_later_until() -> None:
    view = view_of(
        Revocation("user", "u1", before=NOW, until=LATER + 10),
        Revocation("user", "u1", before=NOW + 5, until=LATER),
    )
    assert view.users == {"u1": (NOW + 5, LATER + 10)}


def test_smaller_before_never_unrevokes_a_user() -> None:
    view = view_of(Revocation("user", "u1", before=NOW, until=LATER))
    view.apply(Revocation("user", "u1", before=NOW - 100, until=LATER))
    assert check(view, sub="u1", iat=NOW - 1) == "user"


def test_global_entry_keeps_the_larger_before_and_later_until() -> None:
    view = view_of(
        Revocation("all", before=NOW + 5, until=LATER),
        Revocation("all", before=NOW, until=LATER + 10),
    )
    assert view.global_before == (NOW + 5, LATER + 10)


# --- prune --------------------------------------------------------------------------------------


def test_prune_drops_entries_whose_until_has_passed() -> None:
    view = view_of(
        Revocation("session", "s1", until=NOW),
        Revocation("token", "j1", until=NOW),
        Revocation("user", "u1", before=NOW, until=NOW),
        Revocation("all", before=NOW, until=NOW),
    )
    assert view.prune(NOW) == 4
    assert len(view) == 0
    assert check(view, sid="s1", jti="j1", sub="u1", iat=NOW - 1) is None


def test_prune_keeps_entries_still_needed() -> None:
    revs = (
        Revocation("session", "s1", until=LATER),
        Revocation("token", "j1", until=LATER),
        Revocation("user", "u1", before=NOW, until=LATER),
        Revocation("all", before=NOW, until=LATER),
    )
    view = view_of(*revs)
    assert view.prune(LATER - 1) == 0
    assert check(view, sid="s1") == "session"
    assert view.global_before == (NOW, LATER)


def test_prune_is_exclusive_at_until() -> None:
    view = view_of(Revocation("session", "s1", until=LATER))
    assert view.prune(LATER - 0.001) == 0
    assert view.prune(LATER) == 1


def test_prune_only_drops_the_expired_ones() -> None:
    view = view_of(
        Revocation("session", "old", until=NOW), Revocation("session", "new", until=LATER)
    )
    assert view.prune(NOW) == 1
    assert view.sessions.until("new") == LATER
    assert view.sessions.until("old") is None


def test_key_revocations_are_never_pruned() -> None:
    view = view_of(Revocation("key", "k1"))
    assert view.prune(math.inf) == 0
    assert check(view, kid="k1") == "key"


def test_default_until_is_forever() -> None:
    view = view_of(Revocation("session", "s1"))
    view.prune(1e18)
    assert check(view, sid="s1") == "session"


def test_pruned_entry_can_be_applied_again() -> None:
    view = view_of(Revocation("token", "j1", until=NOW))
    view.prune(NOW)
    assert view.apply(Revocation("token", "j1", until=LATER)) is True
    assert check(view, jti="j1") == "token"


# --- generation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rev",
    [
        Revocation("session", "s1", until=LATER),
        Revocation("token", "j1", until=LATER),
        Revocation("user", "u1", before=NOW, until=LATER),
        Revocation("all", before=NOW, until=LATER),
        Revocation("key", "k1"),
    ],
)
def test_generation_moves_on_a_new_entry(rev: Revocation) -> None:
    view = RevocationView()
    assert view.apply(rev) is True
    assert view.generation == 1


@pytest.mark.parametrize(
    "rev",
    [
        Revocation("session", "s1", until=LATER),
        Revocation("token", "j1", until=LATER),
        Revocation("user", "u1", before=NOW, until=LATER),
        Revocation("all", before=NOW, until=LATER),
        Revocation("key", "k1"),
    ],
)
def test_reapplying_is_idempotent_and_keeps_the_generation(rev: Revocation) -> None:
    view = view_of(rev)
    before = (state(view), view.generation)
    assert view.apply(rev) is False
    assert (state(view), view.generation) == before


def test_generation_moves_when_an_entry_widens() -> None:
    view = view_of(Revocation("user", "u1", before=NOW, until=LATER))
    assert view.apply(Revocation("user", "u1", before=NOW + 1, until=LATER)) is True
    assert view.generation == 2


def test_generation_does_not_move_on_a_narrower_entry() -> None:
    view = view_of(Revocation("all", before=NOW, until=LATER))
    assert view.apply(Revocation("all", before=NOW - 1, until=LATER - 1)) is False
    assert view.generation == 1


def test_generation_does_not_move_on_prune() -> None:
    view = view_of(Revocation("session", "s1", until=NOW), Revocation("all", before=NOW, until=NOW))
    view.prune(LATER)
    assert view.generation == 2


# --- merge --------------------------------------------------------------------------------------


def test_merge_is_a_union() -> None:
    ours = view_of(Revocation("session", "s1", until=LATER), Revocation("key", "k1"))
    theirs = view_of(
        Revocation("token", "j1", until=LATER), Revocation("user", "u1", before=NOW, until=LATER)
    )
    ours.merge(theirs)
    assert check(ours, sid="s1") == "session"
    assert check(ours, kid="k1") == "key"
    assert check(ours, jti="j1") == "token"
    assert check(ours, sub="u1", iat=NOW - 1) == "user"


def test_merge_keeps_the_larger_before_and_later_until() -> None:
    ours = view_of(
        Revocation("user", "u1", before=NOW + 5, until=LATER),
        Revocation("all", before=NOW, until=LATER + 10),
        Revocation("session", "s1", until=LATER),
    )
    theirs = view_of(
        Revocation("user", "u1", before=NOW, until=LATER + 10),
        Revocation("all", before=NOW + 5, until=LATER),
        Revocation("session", "s1", until=LATER + 10),
    )
    ours.merge(theirs)
    assert ours.users == {"u1": (NOW + 5, LATER + 10)}
    assert ours.global_before == (NOW + 5, LATER + 10)
    assert ours.sessions.until("s1") == LATER + 60  # kept to the minute, rounded up


def test_merge_never_forgets() -> None:
    ours = view_of(
        Revocation("session", "s1", until=LATER), Revocation("all", before=NOW, until=LATER)
    )
    before = state(ours)
    ours.merge(RevocationView())  # e.g. a re-bootstrap from an emptied Redis
    assert state(ours) == before


def test_merge_is_commutative() -> None:
    a = (Revocation("user", "u1", before=NOW, until=LATER), Revocation("token", "j1", until=NOW))
    b = (Revocation("user", "u1", before=NOW + 1, until=NOW), Revocation("key", "k1"))
    left, right = view_of(*a), view_of(*b)
    left.merge(view_of(*b))
    right.merge(view_of(*a))
    assert state(left) == state(right)


def test_merge_twice_is_idempotent() -> None:
    ours = view_of(Revocation("session", "s1", until=LATER))
    theirs = view_of(Revocation("token", "j1", until=LATER), Revocation("all", before=NOW))
    ours.merge(theirs)
    snapshot = (state(ours), ours.generation)
    ours.merge(theirs)
    assert (state(ours), ours.generation) == snapshot


def test_merge_moves_the_generation_only_on_change() -> None:
    ours = view_of(Revocation("session", "s1", until=LATER))
    ours.merge(view_of(Revocation("session", "s1", until=LATER)))
    assert ours.generation == 1
    ours.merge(view_of(Revocation("session", "s2", until=LATER)))
    assert ours.generation == 2


def test_until_is_rounded_up_to_the_minute() -> None:
    view = view_of(Revocation("session", "s1", until=NOW + 1))
    assert view.sessions.until("s1") == NOW + 60
    assert view.prune(NOW + 59) == 0
    assert view.prune(NOW + 60) == 1


def test_bulk_add_ids_reports_only_new_ones() -> None:
    view = view_of(Revocation("session", "s1", until=LATER))
    new = view.add_ids("session", ["s1", "s2"], LATER)
    assert new == ["s2"]
    assert view.generation == 2
    assert check(view, sid="s2") == "session"


# --- Revocation validation ----------------------------------------------------------------------


def test_kinds_are_the_five_of_the_design() -> None:
    assert frozenset({"session", "user", "token", "all", "key"}) == KINDS


@pytest.mark.parametrize("kind", ["sessions", "jti", "global", "", "SESSION"])
def test_unknown_kind_is_refused(kind: str) -> None:
    with pytest.raises(ValueError, match="unknown revocation kind"):
        Revocation(kind, "x")  # type: ignore[arg-type]


def test_all_takes_no_value() -> None:
    with pytest.raises(ValueError, match="'all' takes no value"):
        Revocation("all", "x", before=NOW)


@pytest.mark.parametrize("kind", ["session", "user", "token", "key"])
def test_other_kinds_need_a_value(kind: str) -> None:
    with pytest.raises(ValueError, match="every other kind needs one"):
        Revocation(kind)  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["before", "until"])
def test_nan_times_are_refused(field: str) -> None:
    # a NaN `before` would make max() keep or drop it depending on argument order: a silently
    # lost revocation
    with pytest.raises(ValueError, match=field):
        Revocation("user", "u1", **{field: math.nan})


@pytest.mark.parametrize("value", ["1800000000", None, True])
def test_non_numeric_times_are_refused(value: object) -> None:
    with pytest.raises(ValueError, match="before"):
        Revocation("all", before=value)  # type: ignore[arg-type]


def test_revocation_is_immutable() -> None:
    rev = Revocation("session", "s1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        rev.value = "s2"  # type: ignore[misc]


def test_revocation_defaults() -> None:
    rev = Revocation("key", "k1")
    assert (rev.before, rev.until) == (0.0, math.inf)
