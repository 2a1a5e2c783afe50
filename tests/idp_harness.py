"""A test identity provider: an RS256 key, its JWKS, logout tokens and Security Event Tokens,
and the ``SESSIONSVC_IDPS`` entry that trusts it."""

from __future__ import annotations

import http.client
import json
import time
import uuid
from typing import Any

import jwt
import redis
from cryptography.hazmat.primitives.asymmetric import rsa

from sessionsvc.idp.model import BACKCHANNEL_LOGOUT, CREDENTIAL_CHANGE, SESSION_REVOKED
from sessionsvc.sessions.service import SessionService

IDP_ISSUER = "https://idp.example.test/realms/main"
CLIENT_ID = "sessionsvc-app"
RECEIVER_TOKEN = "receiver-token-" + "x7Qp2LmZ9vR4sT8w" * 2


class TestIdp:
    """Mints what an identity provider sends, signed by its one RS256 key (``kid`` idp-1)."""

    __test__ = False  # (not a test class)

    def __init__(self, issuer: str = IDP_ISSUER, kid: str = "idp-1") -> None:
        self.issuer, self.kid = issuer, kid
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        self.jwk = {**public, "kid": kid, "use": "sig", "alg": "RS256"}

    @property
    def jwks(self) -> str:
        return json.dumps({"keys": [self.jwk]})

    def trust(self, **overrides: Any) -> dict[str, Any]:
        """This provider's ``SESSIONSVC_IDPS`` entry."""
        entry: dict[str, Any] = {
            "issuer": self.issuer,
            "audience": CLIENT_ID,
            "jwks": self.jwks,
            "receiver_tokens": [RECEIVER_TOKEN],
        }
        entry.update(overrides)
        return entry

    def sign(self, claims: dict[str, Any], typ: str | None) -> str:
        headers: dict[str, Any] = {"kid": self.kid}
        if typ is not None:
            headers["typ"] = typ
        return jwt.encode(claims, self.key, algorithm="RS256", headers=headers)

    def logout_token(
        self,
        *,
        sub: str | None = None,
        sid: str | None = None,
        now: float | None = None,
        **extra: Any,
    ) -> str:
        """A back-channel logout token for ``sub`` and/or ``sid``."""
        iat = int(time.time() if now is None else now)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "iat": iat,
            "exp": iat + 120,
            "jti": uuid.uuid4().hex,
            "events": {BACKCHANNEL_LOGOUT: {}},
        }
        if sub is not None:
            claims["sub"] = sub
        if sid is not None:
            claims["sid"] = sid
        claims.update(extra)  # (a None drops the claim)
        return self.sign({k: v for k, v in claims.items() if v is not None}, "logout+jwt")

    def secevent(
        self, event_type: str, event: dict[str, Any], sub_id: dict[str, Any], **extra: Any
    ) -> str:
        """A SET with one event and the SSF ``sub_id`` (``extra`` claims too)."""
        claims = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "iat": int(time.time()),
            "jti": uuid.uuid4().hex,
            "sub_id": sub_id,
            "events": {event_type: event},
            **extra,
        }
        return self.sign(claims, "secevent+jwt")

    def session_revoked(self, sid: str, sub: str | None = None) -> str:
        """A CAEP session-revoked SET of the provider's session ``sid``."""
        sub_id: dict[str, Any] = {"format": "complex", "session": {"format": "opaque", "id": sid}}
        if sub is not None:
            sub_id["user"] = {"format": "iss_sub", "iss": self.issuer, "sub": sub}
        return self.secevent(SESSION_REVOKED, {"event_timestamp": int(time.time())}, sub_id)

    def credential_change(
        self, sub: str, change_type: str, at: float | None = None, credential: str = "password"
    ) -> str:
        """A CAEP credential-change SET of user ``sub``."""
        event = {
            "credential_type": credential,
            "change_type": change_type,
            "event_timestamp": int(time.time() if at is None else at),
        }
        return self.secevent(CREDENTIAL_CHANGE, event, {"format": "opaque", "id": sub})


def idps_setting(*entries: dict[str, Any]) -> str:
    """``SESSIONSVC_IDPS`` for these entries."""
    return json.dumps(list(entries))


def ended(service: SessionService, sub: str, session_id: str) -> bool:
    """Is the session no longer among the user's live ones?"""
    return all(s.session_id != session_id for s in service.list_sessions(sub))


def consumed(client: redis.Redis, stream: str, entry: Any) -> bool:
    """Has the workers' group taken every entry of ``stream`` up to ``entry`` (none pending)?
    (``client`` decodes responses.)"""
    info: Any = client.xinfo_groups(stream)
    group = next((g for g in info if g["name"] == "workers"), None)
    return group is not None and group["pending"] == 0 and group["last-delivered-id"] >= entry


def post(
    port: int | None,
    path: str,
    body: bytes,
    content_type: str = "application/x-www-form-urlencoded",
    authorization: str | None = None,
) -> tuple[int, bytes]:
    """One POST to the receiver on 127.0.0.1: its status and body."""
    assert port is not None
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": content_type, "Content-Length": str(len(body))}
    if authorization is not None:
        headers["Authorization"] = authorization
    try:
        conn.request("POST", path, body, headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()
