"""``sessionsvc demo``: a terminal walkthrough of the whole product.

It needs no configuration and no Redis: it generates throw-away keys, starts a throw-away
redis-server (from PATH, or the Valkey of the ``embedded`` extra) and shows login, local
validation on another "node", refresh rotation, logout reaching that node, a revocation event
from "another system" (a publisher, in its own intake) through the worker, what that publisher
may not do, an identity provider's back-channel logout, refresh-token theft detection, attack
rejections, and the example web app driven over HTTP (``sessionsvc.cli.web_demo``;
``--serve`` serves it for a browser). Without a server binary it falls back to
``SESSIONSVC_REDIS_URL`` under a throw-away namespace.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import redis

from sessionsvc._redis.acl import password_hash, render, roles
from sessionsvc.cli.demo_idp import DemoIdp, idp_walkthrough
from sessionsvc.cli.web_demo import serve, web_walkthrough
from sessionsvc.config import Settings
from sessionsvc.embedded import RedisProcess
from sessionsvc.encoding import as_text, b64url_decode, b64url_encode
from sessionsvc.errors import RefreshReuseDetected, TokenRejected
from sessionsvc.revocation.intakes import Intakes
from sessionsvc.revocation.view import Revocation
from sessionsvc.sessions.service import SessionService
from sessionsvc.tokens.issuer import TokenIssuer
from sessionsvc.tokens.keygen import generate_jwks
from sessionsvc.tokens.keys import load_jwks
from sessionsvc.validator import Validator
from workers.worker import Worker, WorkerOptions

__all__ = ["demo_settings", "run_demo", "serve_demo"]

Say = Callable[[str], None]


def demo_settings(
    redis_url: str = "redis://127.0.0.1:6379/0", namespace: str = "ss", idps: str | None = None
) -> Settings:
    """Development settings with fresh EdDSA key rings and one publisher, ``idp``, allowed to
    revoke users and sessions, and ``idps`` as the trusted identity providers (the environment
    is not read)."""
    return Settings(
        idps=idps,  # type: ignore[arg-type]
        publishers={"idp": ("user.revoke", "session.revoke")},
        access_jwks=json.dumps(generate_jwks("EdDSA", "demo-access-1")),  # type: ignore[arg-type]
        refresh_jwks=json.dumps(generate_jwks("EdDSA", "demo-refresh-1")),  # type: ignore[arg-type]
        issuer="https://auth.demo.invalid",
        audience="demo-api",
        redis_url=redis_url,  # type: ignore[arg-type]
        namespace=namespace,
        env="development",
        _env_file=None,  # type: ignore[call-arg]
        _env_prefix="SESSIONSVC_DEMO_UNUSED_",
    )


@contextlib.contextmanager
def _redis(say: Say) -> Iterator[tuple[str, str]]:
    """A Redis URL and namespace for the demo: a throw-away server if one can be started."""
    try:
        with tempfile.TemporaryDirectory() as tmp, RedisProcess(Path(tmp)) as server:
            server.start()
            say(f"Redis: started a throw-away server ({Path(server.binary).name}) on {server.url}")
            yield server.url, "ss"
            return
    except RuntimeError as exc:
        url = Settings.model_fields["redis_url"].default.get_secret_value()
        say(f"Redis: no server binary ({exc}); using {url} under a throw-away namespace")
    namespace = f"demo-{secrets.token_hex(4)}"
    yield url, namespace
    client = redis.Redis.from_url(url)
    for key in client.scan_iter(f"{namespace}:*"):
        client.delete(key)
    client.close()


def _attempt(say: Say, label: str, validate: Callable[[], object]) -> None:
    try:
        validate()
        say(f"   {label:<40} accepted")
    except TokenRejected as exc:
        say(f"   {label:<40} rejected: reason={exc.reason} ({exc.detail})")


def _waiter(validator: Validator) -> Callable[..., float]:
    """``wait(value)``: block until node B's feed applied a revocation of ``value``; ms taken."""
    seen: dict[str, float] = {}
    arrived = threading.Condition()

    def listener(rev: Revocation) -> None:
        with arrived:
            seen[rev.value] = time.perf_counter()
            arrived.notify_all()

    validator.add_listener(listener)

    def wait(value: str, since: float | None = None) -> float:
        start = time.perf_counter() if since is None else since
        with arrived:
            arrived.wait_for(lambda: value in seen, timeout=5)
        return (seen.get(value, time.perf_counter()) - start) * 1000

    return wait


def run_demo(out: Say = print) -> int:
    """Run the walkthrough, writing lines to ``out``; return 0."""
    say = out
    say("sessionsvc demo: logout that logs out\n")
    with _redis(say) as (url, namespace):
        idp = DemoIdp()
        settings = demo_settings(url, namespace, idps=idp.trust())
        _walkthrough(say, settings, url, idp, throwaway=namespace == "ss")
        web_walkthrough(say, settings)
    return 0


def serve_demo(port: int, out: Say = print) -> int:
    """Serve the example web app on a throw-away Redis (or ``SESSIONSVC_REDIS_URL`` under a
    throw-away namespace) with a worker, until Ctrl-C."""
    with _redis(out) as (url, namespace):
        settings = demo_settings(url, namespace)
        worker = Worker(settings, WorkerOptions(consumer="demo"))
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        try:
            return serve(settings, port, out)
        finally:
            worker.stop()
            thread.join(timeout=10)


def _walkthrough(say: Say, settings: Settings, url: str, idp: DemoIdp, *, throwaway: bool) -> None:
    service = SessionService(settings)
    public = load_jwks(json.dumps(service.core.issuer.access_keys.public_jwks()), ring="access")
    node_b = Validator(settings, keys=public)  # an app node holds public keys only
    wait = _waiter(node_b)
    node_b.start()
    worker = Worker(settings, WorkerOptions(consumer="demo"))
    worker_thread = threading.Thread(target=worker.run, daemon=True)
    worker_thread.start()
    raw = redis.Redis.from_url(url)
    try:
        say("1. Keys: EdDSA access and refresh rings (throw-away); node B holds the public key.")
        _login_and_logout(say, service, node_b, wait)
        _other_system(
            say, settings, service, node_b, raw=raw, wait=wait, url=url, isolated=throwaway
        )
        idp_walkthrough(say, idp, service=service, node_b=node_b, worker=worker, wait=wait)
        _theft(say, service, node_b, wait)
        _attacks(say, service.core.issuer, node_b)
        health = node_b.health()
        say(
            f"\nNode B: {health['view_size']} revocations in its view, "
            f"{health['applied_entries']} applied from the log."
        )
    finally:
        worker.stop()
        worker_thread.join(timeout=10)
        node_b.close()
        service.close()
        raw.close()


def _login_and_logout(
    say: Say, service: SessionService, node_b: Validator, wait: Callable[..., float]
) -> None:
    pair = service.login("alice", ip="203.0.113.7", user_agent="demo", device="laptop")
    say(f"2. Node A: alice logs in; session {pair.session_id}")
    claims = node_b.validate(pair.access_token)
    runs, start = 100_000, time.perf_counter()
    for _ in range(runs):
        node_b.validate(pair.access_token)
    per_call = (time.perf_counter() - start) / runs * 1e6
    say(f"3. Node B validates locally: sub={claims['sub']}; cached: {per_call:.2f} µs a call")
    rotated = service.refresh(pair.refresh_token)
    again = service.refresh(pair.refresh_token)  # a retry after a lost response
    same = "the same" if again.refresh_token == rotated.refresh_token else "a different"
    say(f"4. Refresh rotates the pair; a retry with the old refresh token gets {same} new one")
    start = time.perf_counter()
    service.logout(pair.session_id)
    took = wait(pair.session_id, start)
    say(f"5. Node A: alice logs out; node B had the revocation after {took:.2f} ms")
    _attempt(say, "node B, alice's access token", lambda: node_b.validate(rotated.access_token))


def _other_system(
    say: Say,
    settings: Settings,
    service: SessionService,
    node_b: Validator,
    *,
    raw: redis.Redis,
    wait: Callable[..., float],
    url: str,
    isolated: bool,
) -> None:
    bob = service.login("bob")
    node_b.validate(bob.access_token)
    intakes = Intakes.of(settings)
    stream = intakes.publishers["idp"].stream
    start = time.perf_counter()
    raw.xadd(stream, {"type": "user.revoke", "sub": "bob", "reason": "password_changed"})
    took = wait("bob", start)
    say(
        f"6. The identity provider, in its own intake: XADD {stream} type user.revoke sub bob;\n"
        f"   through the worker, node B had it after {took:.2f} ms"
    )
    _attempt(say, "node B, bob's access token", lambda: node_b.validate(bob.access_token))
    raw.xadd(stream, {"type": "all.revoke", "before": str(int(time.time()))})
    deadline = time.monotonic() + 5
    while not raw.exists(intakes.dlq) and time.monotonic() < deadline:
        time.sleep(0.01)
    letters: Any = raw.xrange(intakes.dlq, count=1)
    code = as_text(letters[0][1][b"dlq:error"]) if letters else "(none yet)"
    say(f"   it may not send all.revoke: dead-lettered, {code}")
    if isolated:
        say(f"   {_trim_attempt(settings, url)}")


def _trim_attempt(settings: Settings, url: str) -> str:
    """As the IdP's own Redis user, try to trim the operators' intake (as ACLs cannot forbid
    XADD's MAXLEN, only a stream of its own keeps a publisher from other queues)."""
    role = next(r for r in roles(settings.namespace, ["idp"]) if r.kind == "publisher:idp")
    password = secrets.token_urlsafe(24)
    admin = redis.Redis.from_url(url)
    admin.execute_command(*render(role, password_hash(password)).split())  # type: ignore[no-untyped-call]
    admin.close()
    idp = redis.Redis.from_url(url, username=role.user, password=password, driver_info=None)
    try:
        idp.execute_command(  # type: ignore[no-untyped-call]
            "XADD", f"{settings.namespace}:events", "MAXLEN", "0", "*", "x", "y"
        )
    except redis.exceptions.NoPermissionError:
        return f"as Redis user {role.user}, XADD {settings.namespace}:events MAXLEN 0: NOPERM"
    finally:
        idp.close()
    return "the trim was not refused (check the ACL rules)"


def _theft(
    say: Say, service: SessionService, node_b: Validator, wait: Callable[..., float]
) -> None:
    carol = service.login("carol")
    newer = service.refresh(carol.refresh_token)
    newest = service.refresh(newer.refresh_token)
    try:
        service.refresh(carol.refresh_token)  # a stolen, twice-old refresh token
    except RefreshReuseDetected:
        say("8. Carol's twice-old refresh token is replayed: RefreshReuseDetected, session revoked")
    wait(carol.session_id)
    _attempt(
        say, "node B, carol's newest access token", lambda: node_b.validate(newest.access_token)
    )


def _attacks(say: Say, issuer: TokenIssuer, validator: Validator) -> None:
    say("9. Attacks are rejected with a precise reason:")
    fresh = issuer.issue("dave")
    header, payload, signature = fresh.access_token.split(".")
    none_header = _b64({"alg": "none", "typ": "at+jwt", "kid": "demo-access-1"})
    forged = _b64(json.loads(b64url_decode(payload)) | {"sub": "admin"})
    _attempt(say, "alg none", lambda: validator.validate(f"{none_header}.{payload}."))
    _attempt(
        say,
        "payload changed to sub=admin",
        lambda: validator.validate(f"{header}.{forged}.{signature}"),
    )
    _attempt(
        say, "refresh token used as access token", lambda: validator.validate(fresh.refresh_token)
    )
    _attempt(say, "oversized token (10 KB)", lambda: validator.validate("a" * 10_000))
    _attempt(say, "dave's untouched access token", lambda: validator.validate(fresh.access_token))


def _b64(obj: object) -> str:
    return b64url_encode(json.dumps(obj, separators=(",", ":")))
