"""``sessionsvc keys rotate``: stage, promote and retire a signing key in a private JWKS file.

The steps are ``sessionsvc.tokens.rotation``; this shell reads the file, takes the delays from
the options or the ``SESSIONSVC_*`` settings, writes the file atomically (mode 0600) and prints
what the ring now holds — kids and timestamps, never key material.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from sessionsvc.config import Settings, load_settings
from sessionsvc.errors import ConfigError
from sessionsvc.tokens import rotation
from sessionsvc.tokens.jwks_file import read_document, write_atomic, write_document
from sessionsvc.tokens.key_policy import SUPPORTED_ALGS
from sessionsvc.tokens.keygen import generate_jwk

__all__ = ["register", "rotate_file"]

MIN_PROMOTE_DELAY = 300.0
Step = Literal["stage", "promote", "retire"]


def rotate_file(
    path: Path,
    step: Step,
    *,
    ring: str,
    now: float,
    delay: float = MIN_PROMOTE_DELAY,
    lifetime: float = 0.0,
    alg: str | None = None,
    kid: str | None = None,
    public_out: Path | None = None,
) -> dict[str, Any]:
    """Run one step on the JWKS file at ``path`` (rewritten atomically, mode 0600); the summary
    of the result (no key material). ``RotationRefused`` when the step is not allowed yet."""
    doc = read_document(path)
    if step == "stage":
        current = rotation.ring_of(doc, ring).active
        new_alg = alg or (current.alg if current else "EdDSA")
        new_kid = kid or f"{ring}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime(now))}"
        out = rotation.stage(doc, generate_jwk(new_alg, new_kid), ring=ring, now=now, delay=delay)
    elif step == "promote":
        out = rotation.promote(doc, ring=ring, now=now, lifetime=lifetime)
    else:
        out = rotation.retire(doc, ring=ring, now=now)
    write_document(path, out)
    if public_out is not None:
        public = rotation.ring_of(out, ring).public_jwks()
        write_atomic(public_out, json.dumps(public) + "\n", mode=0o644)
    return {"step": step} | rotation.summary(out, ring=ring)


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    """Rotate the signing key of a private JWKS file: stage, then --promote, then --retire.

    Without an option a new verification-only key is staged; --promote makes it the signing
    key once every node has reloaded the file (the delay recorded at staging); --retire removes
    the old key once the last token it signed has expired (the lifetime recorded at promotion).
    The file is rewritten atomically with mode 0600; no key material is printed."""
    step: Step = "promote" if args.promote else "retire" if args.retire else "stage"
    if step != "stage" and (args.alg or args.kid or args.delay is not None):
        raise ConfigError("--alg, --kid and --delay belong to step 1 (without --promote/--retire)")
    if step != "promote" and args.lifetime is not None:
        raise ConfigError("--lifetime belongs to step 2 (--promote)")
    settings = _settings()
    delay = lifetime = 0.0
    if step == "stage":
        delay = _at_least(_delay(args.delay, settings), MIN_PROMOTE_DELAY, "--delay", args.force)
    elif step == "promote":
        lifetime = _lifetime(args.lifetime, args.ring, settings)
        if settings is not None:
            ttl = settings.access_ttl if args.ring == "access" else settings.refresh_ttl
            floor = float(ttl + settings.leeway)
        else:
            floor = MIN_PROMOTE_DELAY
        lifetime = _at_least(lifetime, floor, "--lifetime", args.force)
    result = rotate_file(
        Path(args.file),
        step,
        ring=args.ring,
        now=time.time(),
        delay=delay,
        lifetime=lifetime,
        alg=args.alg,
        kid=args.kid,
        public_out=Path(args.public_out) if args.public_out else None,
    )
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


def _settings() -> Settings | None:
    try:
        return load_settings()
    except ConfigError:
        return None


def _delay(given: float | None, settings: Settings | None) -> float:
    if settings is None:
        if given is None:
            raise ConfigError("--delay is required when the SESSIONSVC_* settings do not load")
        return given
    interval = settings.keys_reload_interval
    delay = max(MIN_PROMOTE_DELAY, 3 * interval) if given is None else given
    if delay <= interval:
        raise ConfigError(
            f"--delay {delay:g} must be longer than SESSIONSVC_KEYS_RELOAD_INTERVAL ({interval:g})"
        )
    return delay


def _at_least(value: float, floor: float, option: str, force: bool) -> float:
    # a typo (0) must not skip a wait that protects the fleet: below the floor only with --force
    if value < floor and not force:
        raise ConfigError(f"{option} {value:g} is under {floor:g} s; add --force if you mean it")
    return value


def _lifetime(given: float | None, ring: str, settings: Settings | None) -> float:
    if settings is None:
        if given is None:
            raise ConfigError("--lifetime is required when the SESSIONSVC_* settings do not load")
        return given  # (floored by the caller)
    ttl = settings.access_ttl if ring == "access" else settings.refresh_ttl
    longest = float(ttl + settings.leeway)
    return longest + settings.keys_reload_interval if given is None else given


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:  # (also NaN)
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds >= 0")
    return value


def register(keys_sub: Any, add: Callable[..., Any]) -> None:
    """Add ``keys rotate`` to the ``keys`` sub-commands."""
    p = add(keys_sub, "rotate", cmd_keys_rotate)
    p.add_argument(
        "file",
        metavar="FILE",
        help="the private JWKS file of the ring; rewritten in place (temp file + rename, 0600)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="accept a --delay under 300 s or a --lifetime under the ring's token lifetime "
        "(tests, a lab; never a fleet)",
    )
    steps = p.add_mutually_exclusive_group()
    steps.add_argument(
        "--promote",
        action="store_true",
        help="step 2: the staged key signs, the old one only verifies (refused before the "
        "delay recorded at staging has passed)",
    )
    steps.add_argument(
        "--retire",
        action="store_true",
        help="step 3: remove the old key (refused before the lifetime recorded at promotion "
        "has passed)",
    )
    p.add_argument(
        "--ring",
        choices=["access", "refresh"],
        default="access",
        help="which ring FILE holds (default access): names the key and picks the TTL",
    )
    p.add_argument(
        "--alg",
        choices=list(SUPPORTED_ALGS),
        help="step 1: algorithm of the new key (default: that of the current signing key)",
    )
    p.add_argument("--kid", help="step 1: kid of the new key (default RING-YYYYMMDD-HHMMSS, UTC)")
    p.add_argument(
        "--delay",
        type=_non_negative,
        help="step 1: seconds before --promote is allowed; longer than every node's "
        "SESSIONSVC_KEYS_RELOAD_INTERVAL (default max(300, 3 x that interval))",
    )
    p.add_argument(
        "--lifetime",
        type=_non_negative,
        help="step 2: seconds before --retire is allowed (default: the ring's TTL + LEEWAY + "
        "KEYS_RELOAD_INTERVAL from the SESSIONSVC_* settings)",
    )
    p.add_argument(
        "--public-out",
        metavar="PUBLIC_FILE",
        help="also write the ring's public JWKS here (atomically, 0644): what validators read",
    )
