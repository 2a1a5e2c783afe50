"""Settings: environment variables with the ``SESSIONSVC_`` prefix, or a ``.env`` file.

Only names are read here; keys are parsed and judged by ``sessionsvc.tokens.keys``. Values that
may hold
secrets (JWKS documents, the Redis URL with its password) are ``SecretStr`` so that neither
``repr`` nor a log line shows them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Final, Literal, get_args

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from sessionsvc._boundary import Rule, map_exceptions
from sessionsvc.config.redis_sentinel import (
    check_sentinel_settings,
    check_sentinels,
    parse_sentinels,
)
from sessionsvc.config.redis_tls import check_redis_tls, readable_file
from sessionsvc.config.redis_url import check_cluster_url, check_redis_url, redact_url
from sessionsvc.config.replicas import check_replica_settings
from sessionsvc.errors import ConfigError, InvalidArgument

__all__ = [
    "EVENT_TYPES",
    "NAMESPACE",
    "PUBLISHER_NAME",
    "Settings",
    "check_namespace",
    "check_publisher_names",
    "load_settings",
    "redact_url",
    "settings_boundary",
    "settings_config",
]

EventType = Literal["session.revoke", "user.revoke", "token.revoke", "all.revoke", "key.revoke"]
EVENT_TYPES: Final[tuple[str, ...]] = get_args(EventType)
PUBLISHER_NAME: Final = r"^[A-Za-z0-9_-]{1,32}$"
NAMESPACE: Final = r"^[A-Za-z0-9_.-]{1,32}$"


def check_namespace(value: str) -> str:
    """A namespace without ``-pub`` in it: the Redis user names ``<ns>-<role>`` and
    ``<ns>-pub-<publisher>`` of two namespaces on one Redis can then never be the same."""
    if "-pub" in value:
        raise InvalidArgument("a namespace may not contain '-pub' (it would blur Redis user names)")
    return value


_RESERVED_INTAKES: Final = frozenset({"dlq", "pubsub", "dedup"})
DEFAULT_FEED_BLOCK: Final = 1.0  # seconds; lower when max_staleness / 4 is lower
MIN_FEED_BLOCK: Final = 0.05


def check_publisher_names(names: Iterable[str]) -> None:
    """Refuse publisher names that are not 1-32 of ``[A-Za-z0-9_-]``, that name one of our own
    keys (``dlq``, ``pubsub``, ``dedup``), or that two publishers would share once case and
    ``-``/``_`` are ignored (their ACL password variables, ``PUBLISHER_<NAME>``, would be one).
    ``InvalidArgument`` (a ``ValueError``: in a validator pydantic reports it as its own)."""
    seen: dict[str, str] = {}
    for name in names:
        if (
            not isinstance(name, str)
            or not re.fullmatch(PUBLISHER_NAME, name)
            or name.lower() in _RESERVED_INTAKES
        ):
            raise InvalidArgument(
                "publisher names are 1-32 of [A-Za-z0-9_-], not dlq, pubsub or dedup"
            )
        folded = name.upper().replace("-", "_")
        if folded in seen:
            raise InvalidArgument(f"publisher names {seen[folded]!r} and {name!r} are too alike")
        seen[folded] = name


def settings_config(prefix: str) -> SettingsConfigDict:
    """The configuration of every settings class: variables with ``prefix`` (or a ``.env``
    file), unknown ones ignored, frozen, values never quoted in errors."""
    return SettingsConfigDict(
        env_prefix=prefix, env_file=".env", extra="ignore", frozen=True, hide_input_in_errors=True
    )


class Settings(BaseSettings):
    """Everything sessionsvc reads from its environment (prefix ``SESSIONSVC_``)."""

    model_config = settings_config("SESSIONSVC_")

    access_jwks: SecretStr | None = None
    """Access-token key ring: a path to a JWKS file, or the JWKS JSON itself."""
    refresh_jwks: SecretStr | None = None
    """Refresh-token key ring (separate keys): a path or the JWKS JSON."""
    keys_reload_interval: float = Field(default=10.0, ge=0, le=3600)
    """Seconds between re-reads of a JWKS file (a changed ring is used without a restart; 0:
    read at start only). Inline JSON is never re-read."""
    issuer: str = Field(min_length=1)
    """The exact ``iss`` of every token (compared byte for byte)."""
    audience: str = Field(min_length=1)
    """Our ``aud``: a token's ``aud`` must be, or contain, this value."""
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    """The one shared Redis; refused unless redis-py reads it as written (``config.redis_url``)."""
    access_ttl: int = Field(default=15 * 60, gt=0, le=24 * 3600)
    """Access-token lifetime in seconds (default 15 minutes)."""
    refresh_ttl: int = Field(default=7 * 24 * 3600, gt=0, le=400 * 24 * 3600)
    """Refresh-token (and session) lifetime in seconds (default 7 days)."""
    leeway: int = Field(default=30, ge=0, le=300)
    """Clock-skew allowance in seconds for exp/nbf/iat (default 30, at most 300)."""
    env: Literal["development", "production"] = "production"
    """``production`` (the default) uses JSON logs; ``development`` readable console logs."""
    max_token_size: int = Field(default=8192, ge=512, le=65536)
    """Tokens longer than this many characters are rejected before decoding."""
    cache_size: int = Field(default=100_000, ge=0)
    """Verified-token cache entries (0 disables the cache)."""
    app_claims: tuple[str, ...] = ("roles", "scope")
    """Application claims allowed into access tokens besides the registered ones."""
    namespace: str = Field(default="ss", pattern=NAMESPACE)
    """Prefix of every Redis key and stream (``ss:{u:…}:…``, ``ss:{rev}:…``)."""
    idle_timeout: int = Field(default=24 * 3600, gt=0, le=400 * 24 * 3600)
    """A session unused (not refreshed) for this many seconds ends (sliding; default 24 h)."""
    absolute_timeout: int = Field(default=7 * 24 * 3600, gt=0, le=400 * 24 * 3600)
    """A session ends this many seconds after login whatever its use (default: refresh_ttl)."""
    max_sessions_per_user: int = Field(default=0, ge=0, le=10_000)
    """At most this many live sessions per user; the oldest is evicted (0: unlimited)."""
    refresh_overlap: float = Field(default=10.0, ge=0, le=300)
    """Seconds after a rotation in which the previous refresh token is still answered."""
    redis_socket_timeout: float = Field(default=2.0, gt=0, le=60)
    """Seconds to wait for a Redis reply before ``StoreUnavailable`` (redis-py's default is 5)."""
    redis_connect_timeout: float = Field(default=1.0, gt=0, le=60)
    """Seconds to wait for a TCP connection to Redis."""
    # --- Redis Cluster ---------------------------------------------------------------------
    redis_cluster: bool = False
    """``redis_url`` names any node of a Redis Cluster: clients are redis-py's ``RedisCluster``
    (slot map from that node; MOVED/ASK followed). A ``redis://`` or ``rediss://`` URL, db 0."""

    @field_validator("redis_cluster")
    @classmethod
    def _check_redis_cluster(cls, value: bool, info: ValidationInfo) -> bool:
        url = info.data.get("redis_url")
        if value and url is not None:
            check_cluster_url(url.get_secret_value())  # ValueError: never quotes it
        return value

    # --- end Redis Cluster -----------------------------------------------------------------

    # --- Redis Sentinel: sessionsvc.config.redis_sentinel ----------------------------------
    redis_sentinels: Annotated[tuple[str, ...], NoDecode] = ()
    """The sentinels, ``host:port,host:port``: clients ask them for the current primary of
    ``redis_service`` (``redis_url`` then gives only user, password, database and TLS)."""
    redis_service: str | None = Field(default=None, pattern=r"^\S{1,128}$")
    """The name the sentinels monitor the primary under (required with ``redis_sentinels``)."""
    redis_sentinel_username: str | None = None
    """The ACL user for the sentinels themselves, if they demand one (not the data nodes')."""
    redis_sentinel_password: SecretStr | None = None
    """The sentinels' own password (``requirepass`` in sentinel.conf), if they demand one."""

    @field_validator("redis_sentinels", mode="before")
    @classmethod
    def _split_sentinels(cls, value: Any) -> Any:
        return parse_sentinels(value)

    @field_validator(
        "redis_service", "redis_sentinel_username", "redis_sentinel_password", mode="before"
    )
    @classmethod
    def _empty_sentinel_value_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("redis_sentinels")
    @classmethod
    def _check_sentinels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_sentinels(value)

    @model_validator(mode="after")
    def _check_sentinel(self) -> Settings:
        check_sentinel_settings(
            self.redis_sentinels,
            self.redis_service,
            self.redis_cluster,
            self.redis_url.get_secret_value(),
        )
        return self

    # --- end Redis Sentinel ----------------------------------------------------------------

    # -- TLS to Redis (rediss://): sessionsvc.config.redis_tls --------------------------------
    redis_ca_file: Path | None = None
    """PEM CA bundle the Redis server's certificate must chain to (unset: the system store)."""
    redis_client_cert_file: Path | None = None
    """PEM client certificate, for a server that demands one (with ``redis_client_key_file``)."""
    redis_client_key_file: Path | None = None
    """The client certificate's PEM private key, unencrypted (mode 600)."""

    @field_validator(
        "redis_ca_file", "redis_client_cert_file", "redis_client_key_file", mode="before"
    )
    @classmethod
    def _empty_path_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("redis_ca_file", "redis_client_cert_file", "redis_client_key_file")
    @classmethod
    def _readable_tls_file(cls, value: Path | None) -> Path | None:
        return None if value is None else readable_file(value)

    @model_validator(mode="after")
    def _check_redis_tls(self) -> Settings:
        check_redis_tls(
            self.redis_url.get_secret_value(),
            self.redis_ca_file,
            self.redis_client_cert_file,
            self.redis_client_key_file,
        )
        return self

    # -- end of TLS to Redis -----------------------------------------------------------------
    max_staleness: float = Field(default=15.0, ge=0.5, le=3600)
    """A validator whose view was last proven current longer ago than this is *stale*."""
    staleness_policy: Literal["fail_closed", "direct", "fail_open"] = "fail_closed"
    """While stale: reject (``stale``), check Redis per request, or accept with a warning."""
    feed_block: float = Field(default=None, ge=0.05, le=30, validate_default=True)
    """Seconds a validator's XREAD blocks; each return proves freshness (must be < staleness).
    Unset: derived from ``max_staleness`` (``min(1, max_staleness / 4)``, at least 0.05)."""
    log_retention: int = Field(default=24 * 3600, ge=60)
    """Seconds the worker keeps revocation-log entries (a validator away longer re-bootstraps)."""
    publishers: dict[str, tuple[EventType, ...]] = Field(default_factory=dict)
    """Publisher intakes: name → the event types that publisher may send (JSON object). Each
    publisher writes only its own stream ``{<ns>:events}:<name>``; the worker reads them all."""
    publisher: str | None = Field(default=None, pattern=PUBLISHER_NAME)
    """The publisher intake this process writes to (``Publisher``, ``sessionsvc revoke``);
    unset: the trusted intake ``<ns>:events`` (administrators and operators only)."""
    idps: SecretStr | None = None
    """Identity providers whose logout and security event tokens the worker accepts: a JSON
    list of trust entries, or a path to a JSON file holding one (``sessionsvc.idp.trust``
    checks it; it may hold receiver bearer tokens, so it is a secret). Unset: none."""
    max_revocations: int = Field(default=1_000_000, ge=1000, le=100_000_000)
    """At most this many revocations in force that one publisher's events may have planted (a
    budget per publisher); one more is refused and dead-lettered (``over_capacity``)."""
    # durability: what an acknowledged revocation survives (docs/operations.md, "Durability")
    durability: Literal["none", "aof", "replica"] = "none"
    """``none``: nothing checked or waited for (Redis' own persistence decides); ``aof``: refuse
    to start unless Redis has AOF on (``INFO persistence``); ``replica``: a revocation is
    acknowledged only once a replica confirmed it (``WAIT 1``), else ``RevocationNotDurable``.
    On Redis Cluster both go to the primary serving the revocations' slot (``{rev}``; a
    publisher's ``WAIT``: its intake's)."""
    durability_timeout: float = Field(default=0.5, ge=0.001, le=10)
    """Seconds ``replica`` durability waits for a replica's confirmation (``WAIT``'s timeout;
    shorter than ``SESSIONSVC_REDIS_SOCKET_TIMEOUT``)."""

    @model_validator(mode="after")
    def _check_durability_timeout(self) -> Settings:
        if self.durability_timeout >= self.redis_socket_timeout:
            raise ValueError(
                f"SESSIONSVC_DURABILITY_TIMEOUT={self.durability_timeout:g} must be shorter than "
                f"SESSIONSVC_REDIS_SOCKET_TIMEOUT={self.redis_socket_timeout:g} (a WAIT outliving "
                "the socket timeout would drop the connection)"
            )
        return self

    # --- validators on replicas: sessionsvc.config.replicas --------------------------------
    read_from_replicas: bool = False
    """A validator's feed reads the revocation log from a replica (Sentinel: one the sentinels
    name; Cluster: one of the ``{rev}`` slot; one Redis: ``redis_replica_url``); it is fresh
    only up to the newest worker tick it has read (``tick_interval``)."""
    redis_replica_url: SecretStr | None = None
    """On one Redis (no Sentinel, no Cluster) with ``read_from_replicas``: the replica's URL."""
    tick_interval: float = Field(default=1.0, ge=0, le=60)
    """Seconds between the worker's tick entries in the revocation log (0: none); validators on
    replicas measure their freshness from them (at most half ``max_staleness`` then)."""

    @field_validator("redis_replica_url", mode="before")
    @classmethod
    def _empty_replica_url_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _check_replicas(self) -> Settings:
        replica = self.redis_replica_url
        check_replica_settings(
            self.read_from_replicas,
            None if replica is None else replica.get_secret_value(),
            redis_url=self.redis_url.get_secret_value(),
            cluster=self.redis_cluster,
            sentinel=bool(self.redis_sentinels),
            tick_interval=self.tick_interval,
            max_staleness=self.max_staleness,
        )
        return self

    # --- end validators on replicas ----------------------------------------------------------

    @model_validator(mode="before")
    @classmethod
    def _default_absolute_timeout(cls, data: Any) -> Any:
        # absolute_timeout defaults to refresh_ttl (whatever refresh_ttl was set to)
        if isinstance(data, dict) and data.get("absolute_timeout") is None:
            data = {k: v for k, v in data.items() if k != "absolute_timeout"}
            if data.get("refresh_ttl") is not None:
                data["absolute_timeout"] = data["refresh_ttl"]
        return data

    @field_validator("access_jwks", "refresh_jwks", "idps", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: SecretStr) -> SecretStr:
        check_redis_url(value.get_secret_value())  # ValueError: the message never quotes it
        return value

    @field_validator("feed_block", mode="before")
    @classmethod
    def _default_feed_block(cls, value: Any, info: ValidationInfo) -> Any:
        # not given: a quarter of max_staleness (validated before it), at most 1 s
        if value is not None:
            return value
        staleness = info.data.get("max_staleness", DEFAULT_FEED_BLOCK * 4)
        return max(MIN_FEED_BLOCK, min(DEFAULT_FEED_BLOCK, staleness / 4))

    @model_validator(mode="after")
    def _check_feed(self) -> Settings:
        if self.feed_block >= self.max_staleness:
            raise ValueError(
                f"SESSIONSVC_FEED_BLOCK={self.feed_block:g} must be shorter than "
                f"SESSIONSVC_MAX_STALENESS={self.max_staleness:g} (leave SESSIONSVC_FEED_BLOCK "
                "unset to derive it from SESSIONSVC_MAX_STALENESS)"
            )
        return self

    @field_validator("publishers")
    @classmethod
    def _check_publishers(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        check_publisher_names(value)
        for name, types in value.items():
            if not types or len(set(types)) != len(types):
                raise ValueError(f"publisher {name!r}: list each allowed event type once")
        return value

    @field_validator("namespace")
    @classmethod
    def _check_namespace(cls, value: str) -> str:
        return check_namespace(value)

    @field_validator("publisher")
    @classmethod
    def _check_publisher(cls, value: str | None) -> str | None:
        if value is not None:
            check_publisher_names([value])
        return value

    @model_validator(mode="after")
    def _check_lifetimes(self) -> Settings:
        if self.refresh_ttl < self.access_ttl:
            raise ValueError("refresh_ttl must not be shorter than access_ttl")
        return self


def load_settings(**overrides: object) -> Settings:
    """Read ``Settings`` from the environment, mapping validation errors to ``ConfigError``.

    The message lists every problem by its environment variable name and never echoes a value.
    """
    with _SETTINGS_BOUNDARY:
        return Settings(**overrides)  # type: ignore[arg-type]


def settings_boundary(prefix: str) -> map_exceptions:
    """The boundary around building a settings class whose variables start with ``prefix``:
    pydantic's errors become a ``ConfigError`` naming each variable, never quoting a value."""

    def problems(exc: Exception, what: str) -> ConfigError:
        assert isinstance(exc, ValidationError)
        found = []
        for err in exc.errors(include_input=False, include_url=False):
            field = ".".join(str(p) for p in err["loc"]) or "settings"
            name = f"{prefix}{field.upper()}" if err["loc"] else field
            message = "is required" if err["type"] == "missing" else err["msg"]
            found.append(f"{name}: {message}")
        return ConfigError("invalid settings: " + "; ".join(found))

    def unparsable(exc: Exception, what: str) -> ConfigError:
        """A complex value (e.g. app_claims) that is not JSON."""
        match = re.search(r'field "(\w+)"', str(exc))
        name = f"{prefix}{match[1].upper()}" if match else "settings"
        return ConfigError(f"invalid settings: {name}: cannot be parsed (expected JSON)")

    return map_exceptions(
        rules=(
            Rule(SettingsError, ConfigError, unparsable, chain=False),
            Rule(ValidationError, ConfigError, problems, chain=False),
        )
    )


_SETTINGS_BOUNDARY: Final = settings_boundary("SESSIONSVC_")
