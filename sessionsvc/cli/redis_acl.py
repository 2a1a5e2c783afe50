"""``sessionsvc redis acl``: the Redis ACL rules of every role, ready for ``redis-cli``."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sessionsvc._redis.acl import password_hash, render, roles, sentinel_role
from sessionsvc.config import NAMESPACE, check_namespace, check_publisher_names
from sessionsvc.errors import ConfigError

__all__ = ["register"]

PASSWORD_PREFIX = "SESSIONSVC_ACL_PASSWORD_"


class _Layout(BaseSettings):
    """The settings the rules depend on (no issuer or keys needed to print them)."""

    model_config = SettingsConfigDict(env_prefix="SESSIONSVC_", env_file=".env", extra="ignore")
    namespace: str = Field(default="ss", pattern=NAMESPACE)
    publishers: dict[str, tuple[str, ...]] = {}
    durability: Literal["none", "aof", "replica"] = "none"
    redis_cluster: bool = False
    read_from_replicas: bool = False
    redis_sentinel_username: str | None = Field(default=None, pattern=r"^\S{1,128}$")

    @field_validator("redis_sentinel_username", mode="before")
    @classmethod
    def _unset_if_empty(cls, value: Any) -> Any:
        return None if value == "" else value  # as Settings reads it

    @field_validator("publishers")
    @classmethod
    def _names(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        check_publisher_names(value)  # the rules Settings applies
        return value

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        return check_namespace(value)


def _passwords(source: str | None) -> dict[str, str]:
    if source is None:
        return {}
    if source == "env":
        items = os.environ.items()
    else:
        try:
            text = Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"--passwords: cannot read {source}: {exc.strerror}") from None
        items = (line.partition("=")[::2] for line in text.splitlines() if "=" in line)  # type: ignore[assignment]
    return {k.strip(): v.strip() for k, v in items if k.strip().startswith(PASSWORD_PREFIX)}


def cmd_redis_acl(args: argparse.Namespace) -> int:
    """Print the ACL rules of every role (or of the roles named): one ACL SETUSER line each."""
    try:
        layout = _Layout()
    except ValueError:
        raise ConfigError(
            "SESSIONSVC_NAMESPACE, SESSIONSVC_PUBLISHERS, SESSIONSVC_DURABILITY, "
            "SESSIONSVC_REDIS_CLUSTER, SESSIONSVC_READ_FROM_REPLICAS or "
            "SESSIONSVC_REDIS_SENTINEL_USERNAME is invalid"
        ) from None
    if args.sentinel:
        if args.roles:
            raise ConfigError("--sentinel prints the sentinels' user only: name no ROLE with it")
        picked = [sentinel_role(layout.namespace, layout.redis_sentinel_username)]
    else:
        durability = args.durability or layout.durability
        cluster = layout.redis_cluster if args.cluster is None else args.cluster
        replicas = layout.read_from_replicas if args.replicas is None else args.replicas
        picked = roles(
            layout.namespace,
            sorted(layout.publishers),
            args.roles,
            durability=durability,
            cluster=cluster,
            replicas=replicas,
        )
    given = _passwords(args.passwords)
    for role in picked:
        digest = None
        if args.passwords is not None:
            name = PASSWORD_PREFIX + role.password_name
            if not given.get(name):
                raise ConfigError(f"no password for {role.user}: set {name}")
            digest = password_hash(given[name])
        print(render(role, digest, args.format, client_setinfo=args.client_setinfo))
    return 0


def register(sub: Any, add: Callable[..., Any]) -> None:
    """Add the ``redis`` group to the CLI."""
    redis_group = sub.add_parser("redis", help="Redis set-up: the ACL users of every role")
    actions = redis_group.add_subparsers(dest="redis_command", required=True, metavar="ACTION")
    acl = add(actions, "acl", cmd_redis_acl)
    acl.add_argument(
        "roles",
        nargs="*",
        metavar="ROLE",
        help="operator, validator, app, worker, publisher (every configured publisher, or an "
        "example one) or publisher:NAME; default: every role",
    )
    acl.add_argument(
        "--format",
        choices=["setuser", "aclfile"],
        default="setuser",
        help="setuser: ACL SETUSER lines for redis-cli (default); aclfile: lines of an ACL file",
    )
    acl.add_argument(
        "--passwords",
        metavar="env|FILE",
        help="read each role's password from SESSIONSVC_ACL_PASSWORD_<ROLE> (VALIDATOR, APP, "
        "WORKER, OPERATOR, PUBLISHER_<NAME>, SENTINEL) in the environment, or from a file of such "
        "NAME=password lines; printed as SHA-256 only. Default: placeholders Redis refuses",
    )
    acl.add_argument(
        "--sentinel",
        action="store_true",
        help="print instead the user sessionsvc's clients authenticate as on the sentinels "
        "(SESSIONSVC_REDIS_SENTINEL_USERNAME, default <namespace>-sentinel; password "
        "SESSIONSVC_ACL_PASSWORD_SENTINEL): only SENTINEL MASTERS. Run it on every sentinel",
    )
    acl.add_argument(
        "--durability",
        choices=["none", "aof", "replica"],
        help="the SESSIONSVC_DURABILITY the rules are for (default: that variable, else none); "
        "only aof lets app and worker read INFO (INFO persistence, for its check)",
    )
    acl.add_argument(
        "--cluster",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the rules for Redis Cluster (default: SESSIONSVC_REDIS_CLUSTER, else no): every "
        "role may also read the slot map (CLUSTER SLOTS) and the command table (COMMAND), and "
        "send ASKING. Run the lines on every node, replicas too: ACL users do not replicate",
    )
    acl.add_argument(
        "--read-from-replicas",
        dest="replicas",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="with --cluster: the validator may also run CLUSTER NODES and READONLY, to follow "
        "the log on a replica (default: SESSIONSVC_READ_FROM_REPLICAS, else no)",
    )
    acl.add_argument(
        "--client-setinfo",
        action="store_true",
        help="also allow CLIENT SETINFO (Redis >= 7.2, Valkey; sent by redis-py >= 5 and "
        "others on connect). Redis 7.0 refuses lines that name it",
    )
