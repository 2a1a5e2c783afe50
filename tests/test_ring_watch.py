"""sessionsvc.tokens.ring_watch: a JWKS file re-read without a restart; a bad file keeps the
current ring (real files in tmp_path, explicit reloads, a manual clock for the interval)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from revocation_harness import wait_for

from sessionsvc import KeyRing
from sessionsvc.errors import ConfigError
from sessionsvc.tokens.keygen import generate_jwk
from sessionsvc.tokens.ring_watch import MAX_JWKS_BYTES, RingWatch
from sessionsvc.tokens.ring_watcher import RingWatcher
from tests.conftest import ManualClock


def jwks(*kids: str) -> dict[str, Any]:
    return {"keys": [generate_jwk("EdDSA", kid) for kid in kids]}


def replace(path: Path, content: str | bytes) -> None:
    """Write a temp file beside ``path`` and rename it over ``path`` (atomic)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(content.encode() if isinstance(content, str) else content)
    os.replace(tmp, path)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    p = tmp_path / "access.jwks"
    p.write_text(json.dumps(jwks("k-1")))
    return p


@pytest.fixture
def watch(path: Path) -> RingWatch:
    return RingWatch(str(path), ring="access", interval=10.0)


def test_a_file_replaced_by_a_rename_is_picked_up(path: Path, watch: RingWatch) -> None:
    replace(path, json.dumps(jwks("k-1", "k-2")))
    assert watch.reload() is True
    assert list(watch.ring.keys) == ["k-1", "k-2"] and watch.reloads == 1


def test_a_file_rewritten_in_place_is_picked_up(path: Path, watch: RingWatch) -> None:
    path.write_text(json.dumps(jwks("k-3")))
    assert watch.reload() is True
    assert list(watch.ring.keys) == ["k-3"]


def test_a_symlink_swap_like_a_kubernetes_secret_mount_is_picked_up(tmp_path: Path) -> None:
    for name, kid in (("v1", "k-1"), ("v2", "k-2")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "access.jwks").write_text(json.dumps(jwks(kid)))
    (tmp_path / "..data").symlink_to("v1")
    (tmp_path / "access.jwks").symlink_to("..data/access.jwks")
    watch = RingWatch(str(tmp_path / "access.jwks"), ring="access")
    (tmp_path / "..data.tmp").symlink_to("v2")
    os.replace(tmp_path / "..data.tmp", tmp_path / "..data")
    assert watch.reload() is True
    assert list(watch.ring.keys) == ["k-2"]


def test_unchanged_bytes_are_not_judged_again(path: Path, watch: RingWatch) -> None:
    seen: list[KeyRing] = []
    watch.listeners.append(seen.append)
    replace(path, path.read_bytes())  # a new inode, the same content
    assert watch.reload() is False
    assert seen == [] and watch.reloads == 0


def test_listeners_get_the_new_ring(path: Path, watch: RingWatch) -> None:
    seen: list[KeyRing] = []
    watch.listeners.append(seen.append)
    replace(path, json.dumps(jwks("k-2")))
    watch.reload()
    assert seen == [watch.ring]


def test_a_corrupt_file_keeps_the_ring_and_is_counted(path: Path, watch: RingWatch) -> None:
    before = watch.ring
    replace(path, "{not json")
    assert watch.reload() is False
    assert watch.ring is before and watch.failures == 1
    assert watch.last_error is not None and "not a strict JSON object" in watch.last_error


def test_a_partial_file_keeps_the_ring_until_it_is_complete(path: Path, watch: RingWatch) -> None:
    whole = json.dumps(jwks("k-2"))
    path.write_text(whole[: len(whole) // 2])  # a writer that does not rename, caught midway
    assert watch.reload() is False
    assert list(watch.ring.keys) == ["k-1"]
    path.write_text(whole)
    assert watch.reload() is True
    assert list(watch.ring.keys) == ["k-2"]


def test_a_missing_file_keeps_the_ring(path: Path, watch: RingWatch) -> None:
    path.unlink()
    assert watch.reload() is False
    assert list(watch.ring.keys) == ["k-1"] and watch.failures == 1


def test_a_key_the_policy_refuses_keeps_the_ring(path: Path, watch: RingWatch) -> None:
    weak = {"kty": "oct", "alg": "HS256", "kid": "weak", "k": "c2VjcmV0"}
    replace(path, json.dumps({"keys": [weak]}))
    assert watch.reload() is False
    assert list(watch.ring.keys) == ["k-1"] and watch.failures == 1


def test_a_file_over_the_size_limit_keeps_the_ring(path: Path, watch: RingWatch) -> None:
    replace(path, b"{" + b" " * MAX_JWKS_BYTES + b"}")
    assert watch.reload() is False
    assert list(watch.ring.keys) == ["k-1"] and watch.failures == 1


def test_a_text_that_is_not_an_object_is_never_read_as_a_path(
    path: Path, watch: RingWatch, tmp_path: Path
) -> None:
    (tmp_path / "other.jwks").write_text(json.dumps(jwks("k-other")))
    replace(path, str(tmp_path / "other.jwks"))
    assert watch.reload() is False
    assert list(watch.ring.keys) == ["k-1"]


def test_the_same_bad_content_is_counted_once(path: Path, watch: RingWatch) -> None:
    replace(path, "{bad")
    watch.reload()
    watch.reload()
    assert watch.failures == 1


def test_accept_can_refuse_a_new_ring(path: Path) -> None:
    def accept(ring: KeyRing) -> None:
        if "k-evil" in ring.keys:
            raise ConfigError("refused")

    watch = RingWatch(str(path), ring="access", accept=accept)
    replace(path, json.dumps(jwks("k-evil")))
    assert watch.reload() is False
    assert list(watch.ring.keys) == ["k-1"]


def test_a_failing_listener_does_not_undo_the_reload(path: Path, watch: RingWatch) -> None:
    def broken(ring: KeyRing) -> None:
        raise RuntimeError("listener bug")

    watch.listeners.append(broken)
    replace(path, json.dumps(jwks("k-2")))
    assert watch.reload() is True
    assert list(watch.ring.keys) == ["k-2"]


def test_poll_rereads_only_once_the_interval_has_passed(path: Path) -> None:
    clock = ManualClock(1000)
    watch = RingWatch(str(path), ring="access", interval=10.0, clock=clock)
    replace(path, json.dumps(jwks("k-2")))
    clock.now += 9
    assert watch.poll() is False
    clock.now += 1
    assert watch.poll() is True


def test_an_interval_of_zero_never_polls(path: Path) -> None:
    clock = ManualClock(1000)
    watch = RingWatch(str(path), ring="access", interval=0, clock=clock)
    replace(path, json.dumps(jwks("k-2")))
    clock.now += 3600
    assert watch.poll() is False


def test_inline_json_is_never_reloaded() -> None:
    watch = RingWatch(json.dumps(jwks("k-1")), ring="access")
    assert watch.reload() is False and not watch.watched


def test_a_bad_file_at_start_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "bad.jwks").write_text("{bad")
    with pytest.raises(ConfigError, match="access key ring"):
        RingWatch(str(tmp_path / "bad.jwks"), ring="access")


def test_the_watcher_thread_picks_up_a_change(path: Path) -> None:
    watch = RingWatch(str(path), ring="access", interval=0.01)
    watcher = RingWatcher([watch], 0.01).start()
    try:
        replace(path, json.dumps(jwks("k-2")))
        wait_for(lambda: "k-2" in watch.ring.keys, "the watcher's reload")
    finally:
        watcher.stop()


def test_a_fifo_in_place_of_the_file_is_refused_without_blocking(tmp_path: Path) -> None:
    path = tmp_path / "access.jwks"
    path.write_text(json.dumps(jwks("k-1")))
    watch = RingWatch(str(path), ring="access")
    path.unlink()
    os.mkfifo(path)  # a writer of the directory: open() would wait for a writer forever
    assert watch.reload() is False
    assert "not a regular file" in (watch.last_error or "") and list(watch.ring.keys) == ["k-1"]
