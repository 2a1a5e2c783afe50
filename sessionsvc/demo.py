"""``sessionsvc demo``: a terminal walkthrough of issuing, validating and revoking.

It needs no configuration: it generates throw-away keys and uses development settings.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable

from .config import Settings
from .errors import TokenRejected
from .keygen import generate_jwks
from .keys import load_jwks
from .tokens import TokenIssuer
from .validator import Validator
from .view import Revocation

__all__ = ["demo_settings", "run_demo"]


def demo_settings() -> Settings:
    """Development settings with freshly generated EdDSA key rings."""
    return Settings(
        access_jwks=json.dumps(generate_jwks("EdDSA", "demo-access-1")),  # type: ignore[arg-type]
        refresh_jwks=json.dumps(generate_jwks("EdDSA", "demo-refresh-1")),  # type: ignore[arg-type]
        issuer="https://auth.demo.invalid",
        audience="demo-api",
        env="development",
        _env_file=None,  # type: ignore[call-arg]
    )


def _attempt(say: Callable[[str], None], label: str, validate: Callable[[], object]) -> None:
    try:
        validate()
        say(f"   {label:<40} accepted")
    except TokenRejected as exc:
        say(f"   {label:<40} rejected: reason={exc.reason} ({exc.detail})")


def run_demo(out: Callable[[str], None] = print) -> int:
    """Issue a pair, validate it, revoke its session, show the rejection; return 0."""
    print = out
    settings = demo_settings()
    issuer = TokenIssuer(settings)
    public = load_jwks(json.dumps(issuer.access_keys.public_jwks()), ring="access")
    validator = Validator(settings, keys=public)  # an app node holds public keys only
    print("sessionsvc demo: logout that logs out\n")
    print("1. Keys: an EdDSA access ring and a separate EdDSA refresh ring (throw-away);")
    print("   the validator holds only the public access key.")
    pair = issuer.issue("alice", claims={"roles": ["reader"]})
    print(f"2. Login: user 'alice' gets a token pair in session {pair.session_id}")
    print(f"   access token  {pair.access_token[:48]}...  (expires in {pair.expires_in}s)")
    claims = validator.validate(pair.access_token)
    print(f"3. Validate locally: valid; sub={claims['sub']} sid={claims['sid']} "
          f"roles={list(claims['roles'])}")  # fmt: skip
    runs = 100_000
    start = time.perf_counter()
    for _ in range(runs):
        validator.validate(pair.access_token)
    per_call = (time.perf_counter() - start) / runs * 1e6
    print(f"   again, from the verified-token cache: {per_call:.2f} µs per validation")
    print(f"4. Logout: session {pair.session_id} is revoked in the validator's view.")
    validator.revoke(Revocation("session", pair.session_id, until=time.time() + 3600))
    print("5. Validate the same access token again:")
    _attempt(print, "alice's access token", lambda: validator.validate(pair.access_token))
    print("6. Attacks are rejected with a precise reason:")
    fresh = issuer.issue("bob")
    header, payload, signature = fresh.access_token.split(".")
    none_header = _b64({"alg": "none", "typ": "at+jwt", "kid": "demo-access-1"})
    claims_bob = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged = _b64(claims_bob | {"sub": "admin"})
    _attempt(print, "alg none", lambda: validator.validate(f"{none_header}.{payload}."))
    _attempt(
        print,
        "payload changed to sub=admin",
        lambda: validator.validate(f"{header}.{forged}.{signature}"),
    )
    _attempt(
        print, "refresh token used as access token", lambda: validator.validate(fresh.refresh_token)
    )
    _attempt(print, "oversized token (10 KB)", lambda: validator.validate("a" * 10_000))
    _attempt(print, "bob's untouched access token", lambda: validator.validate(fresh.access_token))
    print("\nNext: sessions in Redis and revocation events reach every node through a stream.")
    return 0


def _b64(obj: object) -> str:
    raw = json.dumps(obj, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
