"""``sessionsvc config check``: every configuration problem at once, secrets redacted."""

from __future__ import annotations

from typing import Literal

from sessionsvc.config import Settings, load_settings, redact_url
from sessionsvc.errors import ConfigError
from sessionsvc.idp.trust import load_idps
from sessionsvc.tokens.keys import KeyRing, check_disjoint
from sessionsvc.tokens.ring_watch import RingWatch

__all__ = ["Finding", "check_config"]

Finding = tuple[Literal["ok", "warning", "error"], str]


def check_config(settings: Settings | None = None) -> list[Finding]:
    """Load settings and both key rings; return findings. Never includes key material."""
    try:
        settings = settings or load_settings()
    except ConfigError as exc:
        return [("error", str(exc))]
    findings: list[Finding] = [
        ("ok", f"env={settings.env} issuer={settings.issuer!r} audience={settings.audience!r}"),
        ("ok", f"redis_url={redact_url(settings.redis_url.get_secret_value())}"),
        *_sentinel(settings),
        *_replicas(settings),
        (
            "ok",
            f"access_ttl={settings.access_ttl}s refresh_ttl={settings.refresh_ttl}s "
            f"leeway={settings.leeway}s",
        ),
        ("ok", _durability(settings)),
    ]
    rings: dict[str, KeyRing] = {}
    for name, source in (("access", settings.access_jwks), ("refresh", settings.refresh_jwks)):
        if source is None:
            level: Literal["warning", "error"] = "error" if name == "access" else "warning"
            findings.append(
                (
                    level,
                    f"SESSIONSVC_{name.upper()}_JWKS is not set"
                    + (": this node cannot issue or refresh tokens" if name == "refresh" else ""),
                )
            )
            continue
        try:
            watch = RingWatch(source.get_secret_value(), ring=name, interval=0)
            ring = rings[name] = watch.ring  # (a path, inline JSON or an https:// URL)
        except ConfigError as exc:
            findings.append(("error", str(exc)))
            continue
        keys = ", ".join(
            f"{k.kid} ({k.alg}{', signs' if k is ring.active else ''})" for k in ring.keys.values()
        )
        findings.append(("ok", f"{name} key ring: {keys}"))
        if ring.active is None:
            findings.append(("warning", f"{name} key ring has no private key: verify only"))
    if len(rings) == 2:
        try:
            check_disjoint(rings["access"], rings["refresh"])
        except ConfigError as exc:
            findings.append(("error", str(exc)))
    findings += _idps(settings)
    return findings


def _idps(settings: Settings) -> list[Finding]:
    """The trusted identity providers (``SESSIONSVC_IDPS``): each issuer and what it may end;
    never a bearer token."""
    if settings.idps is None:
        return []
    try:
        idps = load_idps(settings.idps.get_secret_value())
    except ConfigError as exc:
        return [("error", str(exc))]
    out: list[Finding] = []
    for trust in idps:
        ways = ["push" if trust.receiver_tokens else "", "poll" if trust.poll else ""]
        via = "+".join(w for w in ways if w) or "stream and back-channel logout only"
        kinds = ", ".join(sorted(trust.events))
        out.append(("ok", f"identity provider {trust.issuer!r}: {kinds} ({via})"))
    return out


_SURVIVES = {
    "none": "not checked: an acknowledged revocation survives what Redis' persistence gives it",
    "aof": "AOF checked at start: a primary crash loses at most ~1 s (appendfsync everysec)",
    "replica": "confirmed by a replica (WAIT 1) before it is acknowledged",
}


def _durability(settings: Settings) -> str:
    """What an acknowledged revocation survives at the configured level."""
    level = settings.durability
    timeout = f" within {settings.durability_timeout:g}s" if level == "replica" else ""
    return f"durability={level}: {_SURVIVES[level]}{timeout}"


def _sentinel(settings: Settings) -> list[Finding]:
    """The Sentinel line, when sentinels are set (never the sentinels' password)."""
    if not settings.redis_sentinels:
        return []
    sentinels = ",".join(settings.redis_sentinels)
    return [("ok", f"redis_sentinels={sentinels} redis_service={settings.redis_service}")]


def _replicas(settings: Settings) -> list[Finding]:
    """Where a validator's feed reads with ``read_from_replicas`` (a replica URL redacted)."""
    if not settings.read_from_replicas:
        return []
    url = settings.redis_replica_url
    where = (
        "a replica the sentinels name"
        if settings.redis_sentinels
        else "a replica of the {rev} slot"
        if settings.redis_cluster
        else f"redis_replica_url={redact_url('' if url is None else url.get_secret_value())}"
    )
    return [
        (
            "ok",
            f"read_from_replicas: the feed reads {where}; fresh only up to the newest worker "
            f"tick (tick_interval={settings.tick_interval:g}s)",
        )
    ]
