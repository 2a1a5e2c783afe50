"""The ``sessionsvc`` command line.

Exit codes: 0 success (every token valid), 1 a token was rejected or ``config check`` found a
problem, 2 usage or configuration errors. Results go to stdout as JSON; diagnostics to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, TextIO

from sessionsvc.cli.config_check import check_config
from sessionsvc.cli.demo import run_demo, serve_demo
from sessionsvc.cli.keys_rotate import register as register_keys_rotate
from sessionsvc.cli.redis_acl import register as register_redis
from sessionsvc.cli.revoke import register as register_revoke
from sessionsvc.cli.sessions import register as register_sessions
from sessionsvc.config import load_settings
from sessionsvc.errors import ClaimNotAllowed, ConfigError, TokenRejected
from sessionsvc.logs import configure_logging
from sessionsvc.tokens.issuer import TokenIssuer
from sessionsvc.tokens.key_policy import SUPPORTED_ALGS
from sessionsvc.tokens.keygen import generate_jwks
from sessionsvc.tokens.keys import load_jwks
from sessionsvc.validator import Validator
from workers.app import add_arguments as add_worker_arguments
from workers.app import run as run_worker

__all__ = ["build_parser", "main"]


def _json_default(value: object) -> Any:
    if isinstance(value, MappingProxyType):
        return dict(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _print_json(obj: object, out: TextIO | None = None) -> None:
    # sys.stdout looked up per call (not bound at import) so that redirect_stdout works
    (out or sys.stdout).write(json.dumps(obj, default=_json_default) + "\n")


def cmd_keys_generate(args: argparse.Namespace) -> int:
    """Print a new private JWKS with one key."""
    _print_json(generate_jwks(args.alg, args.kid))
    return 0


def cmd_keys_public(args: argparse.Namespace) -> int:
    """Print the public JWKS of a private JWKS file."""
    source = sys.stdin.read() if args.file == "-" else str(Path(args.file))
    _print_json(load_jwks(source, ring="access").public_jwks())
    return 0


def cmd_token_issue(args: argparse.Namespace) -> int:
    """Issue an access + refresh pair (no session is stored: see ``sessions``)."""
    claims = None
    if args.claims:
        try:
            claims = json.loads(args.claims)
        except ValueError:
            raise ConfigError("--claims must be a JSON object") from None
        if not isinstance(claims, dict):
            raise ConfigError("--claims must be a JSON object")
    pair = TokenIssuer().issue(args.sub, sid=args.sid, claims=claims)
    out = pair.as_dict()
    del out["refresh_expires_in"]
    _print_json(out)
    return 0


def cmd_token_verify(args: argparse.Namespace) -> int:
    """Verify tokens; one JSON result per token; exit 1 if any is rejected."""
    validator = Validator()
    tokens = (line.strip() for line in sys.stdin) if args.token == "-" else iter([args.token])
    rejected = False
    for token in tokens:
        if args.token == "-" and not token:
            continue
        try:
            _print_json({"valid": True, "claims": validator.validate(token)})
        except TokenRejected as exc:
            rejected = True
            _print_json({"valid": False, "reason": exc.reason, "detail": exc.detail})
    return 1 if rejected else 0


def cmd_config_check(args: argparse.Namespace) -> int:
    """Report configuration problems (secrets redacted); exit 1 if there is an error."""
    findings = check_config()
    for level, message in findings:
        print(f"{level}: {message}")
    return 1 if any(level == "error" for level, _ in findings) else 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the walkthrough (throw-away keys and Redis; no configuration needed); ``--serve``
    serves the example web app for a browser instead."""
    configure_logging("development", logging.ERROR)  # the demo shows dead letters itself
    if args.serve:
        return serve_demo(args.port)
    return run_demo()


def cmd_worker(args: argparse.Namespace) -> int:
    """Run the revocation worker (consume events, apply, dead-letter, housekeeping)."""
    return run_worker(args)


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of every command."""
    parser = argparse.ArgumentParser(
        prog="sessionsvc",
        description="Session management where logout logs out: local JWT validation, "
        "revocation through Redis Streams.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(parent: Any, name: str, func: Callable[[argparse.Namespace], int]) -> Any:
        p = parent.add_parser(
            name, help=(func.__doc__ or "").strip().splitlines()[0], description=func.__doc__
        )
        p.set_defaults(func=func)
        return p

    keys = sub.add_parser("keys", help="generate and rotate keys, derive public JWKS")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    gen = add(keys_sub, "generate", cmd_keys_generate)
    gen.add_argument(
        "--alg", choices=list(SUPPORTED_ALGS), default="EdDSA", help="algorithm (default EdDSA)"
    )
    gen.add_argument("--kid", help="key id (default: random)")
    pub = add(keys_sub, "public", cmd_keys_public)
    pub.add_argument("file", metavar="FILE", help="private JWKS file, or - for stdin")
    register_keys_rotate(keys_sub, add)

    token = sub.add_parser("token", help="issue and verify tokens")
    token_sub = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    issue = add(token_sub, "issue", cmd_token_issue)
    issue.add_argument("--sub", required=True, help="subject (user id)")
    issue.add_argument("--sid", help="session id (default: new)")
    issue.add_argument("--claims", help="allow-listed app claims as a JSON object")
    verify = add(token_sub, "verify", cmd_token_verify)
    verify.add_argument("token", metavar="TOKEN", help="a token, or - to read one per line")

    config = sub.add_parser("config", help="inspect configuration")
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    add(config_sub, "check", cmd_config_check)

    register_sessions(sub, add)
    register_revoke(sub, add)
    register_redis(sub, add)
    demo = add(sub, "demo", cmd_demo)
    demo.add_argument("--serve", action="store_true", help="serve the example web app until Ctrl-C")
    demo.add_argument("--port", type=int, default=8000, help="port of --serve (default 8000)")
    worker = add(sub, "worker", cmd_worker)
    add_worker_arguments(worker)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sessionsvc`` console script."""
    args = build_parser().parse_args(argv)
    try:
        env = load_settings().env
    except ConfigError:
        env = "production"
    configure_logging(env)
    try:
        return int(args.func(args))
    except (ConfigError, ClaimNotAllowed, ValueError) as exc:
        print(f"sessionsvc: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `sessionsvc ... | head`: the reader left; not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
