"""Which identity providers we trust, and for what (pure, no I/O but reading the settings' file).

``SESSIONSVC_IDPS`` is a JSON list of entries (or a path to a JSON file holding one)::

    [{"issuer": "https://idp.example.com/realms/main",
      "audience": "my-client-id",
      "jwks": "https://idp.example.com/realms/main/protocol/openid-connect/certs",
      "algorithms": ["RS256"],
      "events": ["backchannel_logout", "session_revoked", "credential_change"],
      "receiver_tokens": ["…a long random bearer token…"]}]

Invariants:

- An issuer appears once; its tokens are verified with its own keys only (``jwks``: a path, the
  JWKS JSON inline, or an ``https://`` URL), with the algorithms it lists: asymmetric ones only
  (``none`` and HMAC are refused: an identity provider's keys are public, and a public key must
  never be usable as an HMAC secret).
- ``events`` says what this issuer may end: back-channel logout, CAEP session revocation,
  CAEP credential change. Anything else it sends is refused (``access_denied``).
- A Shared Signals push is accepted only with one of the issuer's ``receiver_tokens`` (compared
  in constant time); none configured: pushes are refused. Tokens are secrets: never printed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from sessionsvc.encoding import StrictDecodeError, loads_object
from sessionsvc.errors import ConfigError

__all__ = ["ALGORITHMS", "EVENT_KINDS", "EventKind", "IdpTrust", "Idps", "PollSource", "load_idps"]

ALGORITHMS: Final = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
"""Algorithms an identity provider's token may use (asymmetric only)."""
EventKind = Literal["backchannel_logout", "session_revoked", "credential_change"]
EVENT_KINDS: Final[frozenset[str]] = frozenset(
    {"backchannel_logout", "session_revoked", "credential_change"}
)
Text = Annotated[str, Field(min_length=1, max_length=2048, pattern=r"^[^\x00-\x1f\x7f]+$")]
MAX_IDPS: Final = 64
MAX_SET_AGE: Final = 6 * 24 * 3600
"""The longest ``max_set_age``: a SET's jti is remembered ``MAX_SET_AGE`` + 1 day."""
Issuer = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")]


class PollSource(BaseModel):
    """An RFC 8936 poll endpoint of a transmitter: the worker polls it and acknowledges."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    url: Text
    token: SecretStr | None = None
    """Bearer token the worker presents to the transmitter."""
    interval: float = Field(default=5.0, ge=0.1, le=3600)
    """Seconds between polls when the last one returned nothing."""
    max_events: int = Field(default=100, ge=1, le=1000)


class IdpTrust(BaseModel):
    """One trusted identity provider."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    issuer: Issuer
    """Its exact ``iss`` (compared byte for byte; at most 256 characters, as a session records
    it)."""
    audience: tuple[Text, ...] = Field(min_length=1)
    """What its tokens' ``aud`` must be, or contain, one of (our client id at that issuer)."""
    jwks: Text
    """Its keys: a path to a JWKS file, the JWKS JSON, or an ``https://`` URL."""
    ca_file: Path | None = None
    """A CA bundle for an ``https://`` JWKS or poll URL (default: the system's)."""
    algorithms: tuple[str, ...] = ("RS256",)
    events: frozenset[EventKind] = EVENT_KINDS  # type: ignore[assignment]
    require_typ: bool = False
    """Refuse a logout token without ``typ: logout+jwt`` (the spec only recommends it)."""
    receiver_tokens: tuple[SecretStr, ...] = ()
    """Bearer tokens a transmitter presents to push SETs (``POST /ssf/events``)."""
    poll: PollSource | None = None
    max_token_age: int = Field(default=300, ge=10, le=3600)
    """Seconds a logout token may live (``exp - iat``) and how old its ``iat`` may be."""
    max_set_age: int = Field(default=6 * 24 * 3600, ge=60, le=MAX_SET_AGE)
    """Seconds a SET's ``iat`` may be old (a polled or queued SET arrives late; its ``jti`` is
    remembered a day longer than this, so an older one could be replayed)."""
    jwks_refresh: float = Field(default=300.0, ge=1, le=86400)
    """Seconds a fetched JWKS is used before it is fetched again in the background."""
    unknown_kid_cooldown: float = Field(default=30.0, ge=0, le=3600)
    """At most one refetch per this many seconds for a ``kid`` the JWKS does not hold."""

    @field_validator("audience", mode="before")
    @classmethod
    def _one_audience(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value

    def model_post_init(self, _context: object) -> None:
        for alg in self.algorithms:
            if alg not in ALGORITHMS:
                raise ValueError(
                    f"algorithm {alg!r} is not accepted from an identity provider (one of "
                    f"{', '.join(sorted(ALGORITHMS))}: never none, never HMAC)"
                )
        if not self.algorithms:
            raise ValueError("algorithms must list at least one algorithm")
        if self.ca_file is not None and not self.ca_file.is_file():
            raise ValueError("ca_file is not a readable file")


_ENTRIES: Final = TypeAdapter(list[IdpTrust])


class Idps:
    """The trusted identity providers, by issuer."""

    def __init__(self, entries: tuple[IdpTrust, ...] = ()) -> None:
        self._by_issuer: dict[str, IdpTrust] = {}
        for entry in entries:
            if entry.issuer in self._by_issuer:
                raise ConfigError(f"SESSIONSVC_IDPS: issuer {entry.issuer!r} is listed twice")
            self._by_issuer[entry.issuer] = entry

    def get(self, issuer: str) -> IdpTrust | None:
        """The trust entry of ``issuer``, or None for an issuer we do not trust."""
        return self._by_issuer.get(issuer)

    def __iter__(self) -> Iterator[IdpTrust]:
        return iter(self._by_issuer.values())

    def __len__(self) -> int:
        return len(self._by_issuer)


def load_idps(value: str | None) -> Idps:
    """The identity providers ``SESSIONSVC_IDPS`` configures (JSON list, or a path to a JSON
    file holding one); ``ConfigError`` naming the first problem (never a bearer token)."""
    if value is None or not value.strip():
        return Idps()
    text = value.strip()
    if not text.startswith("["):
        try:
            text = Path(text).read_text(encoding="utf-8")
        except (OSError, ValueError):
            raise ConfigError("SESSIONSVC_IDPS: not a JSON list, nor a readable file") from None
    try:  # strict JSON (no duplicate members, no NaN) wrapped, as loads_object takes objects
        doc = loads_object(b'{"idps": ' + text.encode("utf-8") + b"}")
    except StrictDecodeError as exc:
        raise ConfigError(f"SESSIONSVC_IDPS: not strict JSON ({exc})") from None
    entries = doc["idps"]
    if len(doc) != 1 or not isinstance(entries, list):
        raise ConfigError("SESSIONSVC_IDPS: must be a JSON list of identity providers")
    if len(entries) > MAX_IDPS:
        raise ConfigError(f"SESSIONSVC_IDPS: at most {MAX_IDPS} identity providers")
    try:
        return Idps(tuple(_ENTRIES.validate_python(entries)))
    except ValidationError as exc:
        err = exc.errors(include_input=False, include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"SESSIONSVC_IDPS: {where}: {err['msg']}") from None
