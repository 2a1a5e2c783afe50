"""The identity-provider step of ``sessionsvc demo``: a throw-away provider (an Ed25519 key)
logs a user out by its own standard, OpenID Connect Back-Channel Logout, through the worker's
receiver; the same logout token sent again is refused as a replay."""

from __future__ import annotations

import http.client
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sessionsvc.errors import TokenRejected
from sessionsvc.idp.model import BACKCHANNEL_LOGOUT
from sessionsvc.sessions.service import SessionService
from sessionsvc.validator import Validator
from workers.idp_services import IdpServices
from workers.worker import Worker

__all__ = ["DemoIdp", "idp_walkthrough"]

Say = Callable[[str], None]


class DemoIdp:
    """A throw-away identity provider: its issuer, one EdDSA key, its trust entry."""

    issuer = "https://sso.demo.invalid/realms/main"
    client_id = "demo-app"

    def __init__(self) -> None:
        self._key = Ed25519PrivateKey.generate()
        public = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(self._key.public_key()))
        self._jwk = {**public, "kid": "demo-idp-1", "use": "sig", "alg": "EdDSA"}

    def trust(self) -> str:
        """``SESSIONSVC_IDPS`` trusting this provider for back-channel logout."""
        entry = {
            "issuer": self.issuer,
            "audience": self.client_id,
            "jwks": json.dumps({"keys": [self._jwk]}),
            "algorithms": ["EdDSA"],
            "events": ["backchannel_logout"],
            "require_typ": True,
        }
        return json.dumps([entry])

    def logout_token(self, sid: str) -> str:
        """A back-channel logout token of the provider's session ``sid``."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 120,
            "jti": uuid.uuid4().hex,
            "sid": sid,
            "events": {BACKCHANNEL_LOGOUT: {}},
        }
        headers = {"kid": "demo-idp-1", "typ": "logout+jwt"}
        return jwt.encode(claims, self._key, algorithm="EdDSA", headers=headers)


def idp_walkthrough(
    say: Say,
    idp: DemoIdp,
    *,
    service: SessionService,
    node_b: Validator,
    worker: Worker,
    wait: Callable[..., float],
) -> None:
    """Log erin in with the provider's session id, then let the provider log her out."""
    erin = service.login("erin", idp_issuer=idp.issuer, idp_sid="op-session-7f3a")
    node_b.validate(erin.access_token)
    token = idp.logout_token("op-session-7f3a")
    with IdpServices.start(worker, port=0) as services:
        assert services.port is not None
        start = time.perf_counter()
        status, _ = _post(services.port, token)
        took = wait(erin.session_id, start)
        say(
            "7. The identity provider logs erin out by its own standard (OIDC Back-Channel\n"
            f"   Logout): POST /backchannel-logout on the worker's receiver: {status};\n"
            f"   node B had it after {took:.2f} ms"
        )
        label = "node B, erin's access token"
        try:
            node_b.validate(erin.access_token)
            say(f"   {label:<40} accepted")
        except TokenRejected as exc:
            say(f"   {label:<40} rejected: reason={exc.reason}")
        status, body = _post(services.port, token)
        error = json.loads(body).get("error_description", "") if body else ""
        say(f"   the same logout token again: {status} ({error})")


def _post(port: int, token: str) -> tuple[int, bytes]:
    body = f"logout_token={token}".encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(
            "POST",
            "/backchannel-logout",
            body,
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()
