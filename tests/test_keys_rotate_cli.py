"""``sessionsvc keys rotate``: the file it writes (atomic, 0600), what it prints (no key
material), its refusals, and help text on every option."""

from __future__ import annotations

import argparse
import json
import stat
from pathlib import Path
from typing import Any

import pytest

from sessionsvc.cli.keys_rotate import rotate_file
from sessionsvc.cli.main import build_parser, main
from sessionsvc.tokens.keygen import generate_jwks
from sessionsvc.tokens.keys import load_jwks
from sessionsvc.tokens.rotation import ROTATION, RotationRefused
from tests.conftest import AUDIENCE, ISSUER

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k"}
NOW = 1_800_000_000


@pytest.fixture(autouse=True)
def _clean(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSIONSVC_ISSUER", ISSUER)
    monkeypatch.setenv("SESSIONSVC_AUDIENCE", AUDIENCE)


@pytest.fixture
def jwks_file(tmp_path: Path) -> Path:
    path = tmp_path / "access.jwks"
    path.write_text(json.dumps(generate_jwks("EdDSA", "old")))
    path.chmod(0o600)
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def doc_of(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def test_stage_prints_kids_and_times_but_no_key_material(
    capsys: pytest.CaptureFixture[str], jwks_file: Path
) -> None:
    code, out, _ = run(capsys, "keys", "rotate", str(jwks_file), "--kid", "new")
    result = json.loads(out)
    assert code == 0
    assert result["kids"] == ["old", "new"] and result["signing"] == "old"
    assert result["rotation"]["state"] == "staged"
    secrets = {jwk[m] for jwk in doc_of(jwks_file)["keys"] for m in PRIVATE_MEMBERS if m in jwk}
    assert secrets and not any(s in out for s in secrets)


def test_the_rewritten_file_is_closed_to_others_and_keeps_its_group(
    capsys: pytest.CaptureFixture[str], jwks_file: Path
) -> None:
    jwks_file.chmod(0o644)
    run(capsys, "keys", "rotate", str(jwks_file))
    assert stat.S_IMODE(jwks_file.stat().st_mode) == 0o640  # the service's group still reads


def test_a_symlinked_file_is_rotated_through_its_link(
    capsys: pytest.CaptureFixture[str], jwks_file: Path, tmp_path: Path
) -> None:
    link = tmp_path / "current.jwks"
    link.symlink_to(jwks_file)
    assert run(capsys, "keys", "rotate", str(link))[0] == 0
    assert link.is_symlink() and len(json.loads(jwks_file.read_text())["keys"]) == 2


def test_a_delay_under_the_floor_is_refused_without_force(
    capsys: pytest.CaptureFixture[str], jwks_file: Path
) -> None:
    code, _, err = run(capsys, "keys", "rotate", str(jwks_file), "--delay", "30")
    assert code == 2 and "--force" in err


def test_the_file_is_replaced_by_a_rename_leaving_no_temp_file(
    capsys: pytest.CaptureFixture[str], jwks_file: Path
) -> None:
    inode = jwks_file.stat().st_ino
    run(capsys, "keys", "rotate", str(jwks_file))
    assert jwks_file.stat().st_ino != inode
    assert [p.name for p in jwks_file.parent.iterdir()] == [jwks_file.name]


def test_promote_right_after_staging_is_refused(
    capsys: pytest.CaptureFixture[str], jwks_file: Path
) -> None:
    run(capsys, "keys", "rotate", str(jwks_file))
    before = jwks_file.read_bytes()
    code, _, err = run(capsys, "keys", "rotate", str(jwks_file), "--promote")
    assert code == 2 and "promote refused" in err
    assert jwks_file.read_bytes() == before


def test_retire_right_after_promotion_is_refused(jwks_file: Path) -> None:
    rotate_file(jwks_file, "stage", ring="access", now=NOW, delay=300)
    rotate_file(jwks_file, "promote", ring="access", now=NOW + 300, lifetime=940)
    with pytest.raises(RotationRefused, match="retire refused"):
        rotate_file(jwks_file, "retire", ring="access", now=NOW + 300 + 939)


def test_three_steps_end_with_the_new_key_alone(jwks_file: Path) -> None:
    rotate_file(jwks_file, "stage", ring="access", now=NOW, delay=300, kid="new")
    rotate_file(jwks_file, "promote", ring="access", now=NOW + 300, lifetime=940)
    result = rotate_file(jwks_file, "retire", ring="access", now=NOW + 1240)
    assert result["kids"] == ["new"] and result["signing"] == "new"
    assert ROTATION not in doc_of(jwks_file)


def test_the_new_key_takes_the_algorithm_of_the_signing_key(tmp_path: Path) -> None:
    path = tmp_path / "refresh.jwks"
    path.write_text(json.dumps(generate_jwks("ES256", "old")))
    rotate_file(path, "stage", ring="refresh", now=NOW, kid="new")
    assert load_jwks(str(path), ring="refresh").keys["new"].alg == "ES256"


def test_public_out_holds_public_keys_only(jwks_file: Path, tmp_path: Path) -> None:
    public = tmp_path / "public" / "access.public.jwks"
    public.parent.mkdir()
    rotate_file(jwks_file, "stage", ring="access", now=NOW, public_out=public)
    keys = json.loads(public.read_text())["keys"]
    assert [k["kid"] for k in keys] == ["old", keys[1]["kid"]]
    assert not any(PRIVATE_MEMBERS & k.keys() for k in keys)


def test_a_delay_not_longer_than_the_reload_interval_is_refused(
    capsys: pytest.CaptureFixture[str], jwks_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SESSIONSVC_KEYS_RELOAD_INTERVAL", "60")
    code, _, err = run(capsys, "keys", "rotate", str(jwks_file), "--delay", "60")
    assert code == 2 and "longer than SESSIONSVC_KEYS_RELOAD_INTERVAL" in err


def test_an_option_of_another_step_is_refused(
    capsys: pytest.CaptureFixture[str], jwks_file: Path
) -> None:
    code, _, err = run(capsys, "keys", "rotate", str(jwks_file), "--retire", "--delay", "1")
    assert code == 2 and "belong to step 1" in err


def test_every_option_has_help_text() -> None:
    parser = build_parser()
    keys = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    keys_sub = next(
        a for a in keys.choices["keys"]._actions if isinstance(a, argparse._SubParsersAction)
    )
    rotate = keys_sub.choices["rotate"]
    options = [a for a in rotate._actions if not isinstance(a, argparse._HelpAction)]
    assert options and all(a.help for a in options)
