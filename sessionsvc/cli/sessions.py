"""``sessionsvc sessions …``: list, revoke one, revoke all — JSON on stdout.

Exit codes as in ``sessionsvc.cli.main``: 0 done, 1 the session id is not one of ours, 2 usage,
configuration, or Redis unreachable. Only ``SESSIONSVC_REDIS_URL`` (and the required issuer and
audience) are needed: listing and revoking sign nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from sessionsvc.config import load_settings, redact_url
from sessionsvc.errors import SessionNotFound, StoreUnavailable
from sessionsvc.sessions.service import SessionService

__all__ = ["cmd_sessions_list", "cmd_sessions_revoke", "cmd_sessions_revoke_all", "register"]

Command = Callable[[argparse.Namespace], int]


def _with_service(body: Callable[[SessionService], object]) -> int:
    settings = load_settings()
    with SessionService(settings) as service:
        try:
            result = body(service)
        except SessionNotFound as exc:
            print(json.dumps({"error": "not_found", "detail": str(exc)}))
            return 1
        except StoreUnavailable as exc:
            url = redact_url(settings.redis_url.get_secret_value())
            print(f"sessionsvc: error: Redis at {url} unavailable ({exc})", file=sys.stderr)
            return 2
    print(json.dumps(result))
    return 0


def cmd_sessions_list(args: argparse.Namespace) -> int:
    """List the live sessions of a user (created, last seen, expiry, ip, user agent, device)."""
    return _with_service(lambda s: [i.as_dict() for i in s.list_sessions(args.sub)])


def cmd_sessions_revoke(args: argparse.Namespace) -> int:
    """End one session and revoke its tokens (applied even if the session already ended)."""
    return _with_service(
        lambda s: {"session_id": args.sid, "ended": s.logout(args.sid, reason=args.reason)}
    )


def cmd_sessions_revoke_all(args: argparse.Namespace) -> int:
    """End every session of a user and revoke all their tokens issued until now."""
    return _with_service(
        lambda s: {"sub": args.sub, "sessions_ended": s.logout_all(args.sub, reason=args.reason)}
    )


def register(sub: Any, add: Callable[[Any, str, Command], Any]) -> None:
    """Add the ``sessions`` command group to the top-level subparsers ``sub``."""
    sessions = sub.add_parser(
        "sessions", help="list and revoke sessions stored in Redis", description=__doc__
    )
    actions = sessions.add_subparsers(dest="sessions_command", required=True, metavar="ACTION")
    add(actions, "list", cmd_sessions_list).add_argument("sub", metavar="SUB", help="user id")
    revoke = add(actions, "revoke", cmd_sessions_revoke)
    revoke.add_argument("sid", metavar="SID", help="session id")
    revoke.add_argument("--reason", default="admin", help="recorded in the revocation log")
    revoke_all = add(actions, "revoke-all", cmd_sessions_revoke_all)
    revoke_all.add_argument("sub", metavar="SUB", help="user id")
    revoke_all.add_argument("--reason", default="admin", help="recorded in the revocation log")
