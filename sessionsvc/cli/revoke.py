"""``sessionsvc revoke …``: publish a revocation event to an intake stream."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from sessionsvc.revocation.events import EventRejected
from sessionsvc.revocation.publisher import Publisher

__all__ = ["register"]


def cmd_revoke(args: argparse.Namespace) -> int:
    """Publish one revoke event; prints {"stream_id": ...}; exit 2 if the event is invalid."""
    publisher = Publisher(intake=args.publisher)
    source = args.source or (None if publisher.intake.owner else "cli")
    meta = {"reason": args.reason, "source": source, "id": args.id}
    try:
        if args.kind == "session":
            entry = publisher.revoke_session(args.value, **meta)
        elif args.kind == "user":
            entry = publisher.revoke_user(args.value, before=args.before, **meta)
        elif args.kind == "token":
            entry = publisher.revoke_token(args.value, exp=args.exp, **meta)
        elif args.kind == "all":
            before = time.time() if args.before is None else args.before
            entry = publisher.revoke_all(before=before, **meta)
        else:
            entry = publisher.revoke_key(args.value, **meta)
    except EventRejected as exc:
        print(f"sessionsvc: error: {exc}", file=sys.stderr)
        return 2
    finally:
        publisher.close()
    sys.stdout.write(json.dumps({"stream_id": entry}) + "\n")
    return 0


def register(sub: Any, add: Callable[..., Any]) -> None:
    """Add the ``revoke`` group to the CLI."""
    revoke = sub.add_parser("revoke", help="publish a revocation event (applied by the worker)")
    kinds = revoke.add_subparsers(dest="kind", required=True, metavar="KIND")
    specs = {
        "session": ("SID", "revoke one session"),
        "user": ("SUB", "revoke every token of a user issued before --before (default: now)"),
        "token": ("JTI", "revoke one token (give --exp so the entry can be forgotten)"),
        "all": (None, "revoke every token issued before --before (default: now)"),
        "key": ("KID", "revoke every token signed with a key"),
    }
    for kind, (metavar, help_text) in specs.items():
        p = kinds.add_parser(kind, help=help_text, description=help_text)
        p.set_defaults(func=cmd_revoke, value=None)
        if metavar:
            p.add_argument("value", metavar=metavar)
        if kind in ("user", "all"):
            p.add_argument("--before", type=float, help="seconds since the epoch")
        if kind == "token":
            p.add_argument("--exp", type=float, help="the token's exp (seconds since the epoch)")
        p.add_argument("--reason", help="why (kept in the revocation log)")
        p.add_argument(
            "--source",
            help="who is revoking (trusted intake only; default: cli). A publisher's events "
            "always carry the publisher's name",
        )
        p.add_argument("--id", help="idempotency key")
        p.add_argument(
            "--publisher",
            metavar="NAME",
            help="write to this publisher's intake (default: SESSIONSVC_PUBLISHER, else the "
            "trusted intake <ns>:events)",
        )
