"""The keys of the identity providers we trust, fetched and cached (a shell: a daemon thread
refreshes them).

``IssuerKeys`` holds one issuer's JWKS (``trust.jwks``: a path, the JSON inline, or an
``https://`` URL verified against ``trust.ca_file`` when given); ``IssuerKeyring`` is the
``KeyLookup`` of every trusted issuer. Invariants:

- a JWKS holding an HMAC secret or any private member is refused whole (``check_public``): a
  public key is never usable as an HMAC secret. A key verifies an ``alg`` token only if the
  issuer lists ``alg``, its ``kty``/``crv`` fit it, its ``alg``, ``use`` and ``key_ops`` (when
  present) allow it, and an RSA modulus has at least 2048 bits;
- no request waits for a refresh: keys older than ``jwks_refresh`` keep answering while ONE
  daemon thread fetches; a failed or refused refresh keeps the last good keys (logged, never the
  body) and is retried ``unknown_kid_cooldown`` (at least 1 s, at most ``jwks_refresh``) later;
- an unknown ``kid`` refetches synchronously at most once per ``unknown_kid_cooldown``; no keys
  yet: a synchronous fetch, ``IdpKeysUnavailable`` if it fails (never ``IdpTokenRejected``);
  so is an unknown ``kid`` while the last fetch failed (the keys held may be stale);
- one fetch per issuer at a time: a caller needing one while another runs shares its result.
"""

from __future__ import annotations

import hashlib
import math
import os
import stat
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Final

import jwt
import structlog
from cryptography.hazmat.primitives.asymmetric import rsa

from sessionsvc.encoding import StrictDecodeError, loads_object
from sessionsvc.errors import ConfigError, IdpKeysUnavailable, IdpTokenRejected
from sessionsvc.idp.model import KeyLookup
from sessionsvc.idp.trust import Idps, IdpTrust
from sessionsvc.tokens.jwks_url import MAX_JWKS_BYTES, check_public, https_fetcher, is_url

__all__ = ["MIN_RSA_BITS", "IssuerKeyring", "IssuerKeys"]

log = structlog.get_logger("sessionsvc.idp")
MIN_RSA_BITS: Final = 2048
_RSA: Final = ("RSA", frozenset[str]())
_FITS: Final[Mapping[str, tuple[str, frozenset[str]]]] = {
    **dict.fromkeys(("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"), _RSA),
    "ES256": ("EC", frozenset({"P-256"})),
    "ES384": ("EC", frozenset({"P-384"})),
    "ES512": ("EC", frozenset({"P-521"})),
    "EdDSA": ("OKP", frozenset({"Ed25519", "Ed448"})),
}


@dataclass(frozen=True, slots=True, repr=False)
class _Jwks:
    """One judged JWKS: its SHA-256, its public JWKs, and the ``PyJWK`` built per (index, alg)."""

    digest: bytes
    keys: tuple[dict[str, Any], ...]
    built: dict[tuple[int, str], jwt.PyJWK] = field(default_factory=dict)


class IssuerKeys:
    """The keys of one trusted issuer, judged at every load, refreshed in the background."""

    def __init__(
        self,
        trust: IdpTrust,
        *,
        fetch: Callable[[], bytes] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.trust, self._clock, self._where = trust, clock, f"issuer {trust.issuer!r}"
        self._lock = threading.Lock()  # the state below
        self._fetching = threading.Lock()  # held by the one fetch running
        self._jwks: _Jwks | None = None
        self._loaded = self._attempted = -math.inf  # last success, last start of a fetch
        self._attempts = 0  # fetches finished: a waiter sees whether one ran meanwhile
        self._error: str | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        source, self._fetch = trust.jwks.strip(), fetch
        if fetch is None and is_url(source):
            self._fetch = https_fetcher(source, self._where, cafile=trust.ca_file)
        elif fetch is None and source.startswith("{"):
            self._jwks = _parse(source.encode("utf-8"), self._where)  # inline: never changes
        elif fetch is None:
            self._fetch = partial(_read_file, Path(source), self._where)

    def key(self, kid: str | None, alg: str, *, wait: bool = True) -> jwt.PyJWK:
        """The key verifying a token of this issuer with header ``kid`` and ``alg``:
        ``IdpTokenRejected`` (``invalid_key``) when none may, ``IdpKeysUnavailable`` when no
        keys could be fetched yet. ``wait=False`` (the worker's apply path, which must never
        wait on a provider): a fetch this would wait for runs in the background instead, and
        the answer is ``IdpKeysUnavailable`` (the caller tries again later)."""
        if alg not in self.trust.algorithms:
            raise _rejected("alg_not_allowed", f"{self._where} does not sign with {_shown(alg)}")
        jwks = self._current(wait)
        found = _find(jwks, kid, alg, self._where)
        if found is None and self._fetch is not None:
            with self._lock:
                due = self._clock() - self._attempted >= self.trust.unknown_kid_cooldown
                seen = self._attempts
            if due and not wait:
                self._background(seen, force=True)
                raise IdpKeysUnavailable(f"{self._where}: refetching its JWKS for a new kid")
            if due:  # (an IdP's rotation is seen at once; made-up kids: one fetch per cooldown)
                jwks = self._fetch_shared(seen) or jwks
                found = _find(jwks, kid, alg, self._where)
        if found is None:
            what = f"kid {_shown(kid)}" if kid is not None else f"one {alg} key (no kid given)"
            if self._error is not None:  # (the keys held may be stale: never refused for good)
                raise IdpKeysUnavailable(f"{self._where}: no {what}, JWKS failing ({self._error})")
            raise _rejected("unknown_key", f"{self._where} has no {what}")
        return found

    def close(self, timeout: float = 5.0) -> None:
        """Start no more refreshes; wait up to ``timeout`` seconds for a running one."""
        with self._lock:
            self._closed, thread = True, self._thread
        if thread is not None:
            thread.join(timeout)

    def warm(self) -> None:
        """Start fetching in the background if no keys are held yet (a worker's start)."""
        with self._lock:
            empty, seen = self._jwks is None, self._attempts
        if empty:
            self._background(seen, force=True)

    def _background(self, seen: int, *, force: bool = False) -> None:
        """Start the one background fetch: when keys are due a refresh, or (``force``) at
        most once a second (a provider that is down is not hammered)."""
        with self._lock:
            now = self._clock()
            retry = min(self.trust.jwks_refresh, max(self.trust.unknown_kid_cooldown, 1.0))
            if (
                self._fetch is not None
                and not self._closed
                and self._thread is None
                and (force or now - self._loaded >= self.trust.jwks_refresh)
                and now - self._attempted >= (min(1.0, retry) if force else retry)
            ):
                self._thread = threading.Thread(
                    target=self._refresh, args=(seen,), name="idp-jwks", daemon=True
                )
                self._thread.start()

    def _current(self, wait: bool = True) -> _Jwks:
        with self._lock:
            jwks, seen = self._jwks, self._attempts
        if jwks is not None:
            self._background(seen)
            return jwks
        if not wait:
            self._background(seen, force=True)
            raise IdpKeysUnavailable(f"{self._where}: its keys are being fetched")
        with self._lock:  # a provider whose JWKS fails is asked again once per cooldown only
            retry = min(self.trust.jwks_refresh, max(self.trust.unknown_kid_cooldown, 1.0))
            failing = self._error is not None and self._clock() - self._attempted < retry
        if failing:
            raise IdpKeysUnavailable(f"{self._where}: no keys could be fetched ({self._error})")
        jwks = self._fetch_shared(seen)
        if jwks is None:
            raise IdpKeysUnavailable(f"{self._where}: no keys could be fetched ({self._error})")
        return jwks

    def _refresh(self, seen: int) -> None:
        try:
            self._fetch_shared(seen)
        finally:
            with self._lock:
                self._thread = None

    def _fetch_shared(self, seen: int) -> _Jwks | None:
        """Fetch now, unless a fetch finished since ``seen`` (then its result): the keys held."""
        with self._fetching:
            with self._lock:
                if self._attempts != seen or self._fetch is None:
                    return self._jwks
                started = self._attempted = self._clock()
            try:
                data = self._fetch()
                old = self._jwks
                same = old is not None and hashlib.sha256(data).digest() == old.digest
                jwks = old if same and old is not None else _parse(data, self._where)
            except Exception as exc:  # (an injected fetcher's too: a thread must not die of it)
                error = str(exc) if isinstance(exc, ConfigError) else type(exc).__name__
                with self._lock:
                    self._attempts, self._error = self._attempts + 1, error
                log.warning("idp_jwks_fetch_failed", issuer=self.trust.issuer, error=error)
                return self._jwks
            with self._lock:
                self._jwks, self._loaded, self._error = jwks, started, None
                self._attempts += 1
            if not same:
                kids = [k.get("kid") for k in jwks.keys]
                log.info("idp_jwks_loaded", issuer=self.trust.issuer, kids=kids)
            return jwks


class IssuerKeyring:
    """The ``KeyLookup`` of every trusted issuer: one ``IssuerKeys`` each."""

    def __init__(
        self,
        idps: Idps,
        *,
        fetchers: Mapping[str, Callable[[], bytes]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        fetchers = fetchers or {}
        self.issuers = {
            t.issuer: IssuerKeys(t, fetch=fetchers.get(t.issuer), clock=clock) for t in idps
        }

    def key(self, issuer: str, kid: str | None, alg: str) -> jwt.PyJWK:
        """The key of ``issuer`` for a token with header ``kid`` and ``alg`` (``KeyLookup``);
        ``IdpTokenRejected`` (``invalid_issuer``) for an issuer we do not trust."""
        return self._keys(issuer).key(kid, alg)

    def without_waiting(self) -> KeyLookup:
        """This keyring as a ``KeyLookup`` that never waits on a fetch (``wait=False``)."""
        return _NoWait(self)

    def warm(self) -> None:
        """Start fetching every issuer's keys that none are held of yet, in the background."""
        for keys in self.issuers.values():
            keys.warm()

    def _keys(self, issuer: str) -> IssuerKeys:
        keys = self.issuers.get(issuer)
        if keys is None:
            raise IdpTokenRejected(
                "invalid_issuer", "unknown_issuer", f"issuer {_shown(issuer)} is not trusted"
            )
        return keys

    def close(self, timeout: float = 5.0) -> None:
        """Stop refreshing; wait at most ``timeout`` seconds in all for running fetches."""
        deadline = time.monotonic() + timeout
        for keys in self.issuers.values():
            keys.close(max(0.0, deadline - time.monotonic()))


class _NoWait:
    __slots__ = ("_ring",)

    def __init__(self, ring: IssuerKeyring) -> None:
        self._ring = ring

    def key(self, issuer: str, kid: str | None, alg: str) -> jwt.PyJWK:
        return self._ring._keys(issuer).key(kid, alg, wait=False)


def _rejected(reason: str, detail: str) -> IdpTokenRejected:
    return IdpTokenRejected("invalid_key", reason, detail)


def _shown(value: object) -> str:
    """A header value as a detail may show it: quoted, at most 64 characters."""
    return repr(value[:64] if isinstance(value, str) else value)[:70]


def _parse(data: bytes, where: str) -> _Jwks:
    """The judged JWKS ``data``; ``ConfigError`` (never quoting it) if it is refused."""
    try:
        doc = loads_object(data)
    except StrictDecodeError:
        raise ConfigError(f"{where}: the JWKS is not a strict JSON object") from None
    keys = doc.get("keys")
    if not isinstance(keys, list) or not keys or not all(isinstance(k, dict) for k in keys):
        raise ConfigError(f'{where}: the JWKS needs a non-empty "keys" array of objects')
    check_public(data.decode("utf-8"), where)  # no HMAC secret, no private member
    if not all(isinstance(k.get("kid", ""), str) for k in keys):
        raise ConfigError(f"{where}: a kid of the JWKS is not a string")
    return _Jwks(hashlib.sha256(data).digest(), tuple(keys))


def _refusal(jwk: Mapping[str, Any], alg: str) -> tuple[str, str] | None:
    """Why ``jwk`` may not verify an ``alg`` token, as (reason, detail); None if it may."""
    kty, curves = _FITS[alg]
    if jwk.get("kty") != kty or (curves and jwk.get("crv") not in curves):
        shape = f"{kty} ({', '.join(sorted(curves))})" if curves else kty
        return "wrong_key_type", f"an {alg} token needs a {shape} key"
    if jwk.get("alg", alg) != alg:
        return "wrong_alg", f"the key is pinned to another algorithm than {alg}"
    if jwk.get("use", "sig") != "sig":
        return "wrong_use", "the key's use is not sig"
    ops = jwk.get("key_ops", ["verify"])
    if not isinstance(ops, list) or "verify" not in ops:
        return "wrong_key_ops", "the key's key_ops do not include verify"
    return None


def _find(jwks: _Jwks, kid: str | None, alg: str, where: str) -> jwt.PyJWK | None:
    """The key for (``kid``, ``alg``); None if no key has that kid (no kid: none fits)."""
    if kid is None:
        fitting = [i for i, k in enumerate(jwks.keys) if _refusal(k, alg) is None]
        if len(fitting) > 1:
            raise _rejected("unknown_key", f"{where}: no kid given and {len(fitting)} keys fit")
        return _build(jwks, fitting[0], alg, where) if fitting else None
    named = [i for i, k in enumerate(jwks.keys) if k.get("kid") == kid]
    if not named:
        return None
    fitting = [i for i in named if _refusal(jwks.keys[i], alg) is None]
    if len(fitting) > 1:
        raise _rejected("ambiguous_key", f"{where}: {len(fitting)} keys of kid {_shown(kid)}")
    if fitting:
        return _build(jwks, fitting[0], alg, where)
    reason, detail = _refusal(jwks.keys[named[0]], alg) or ("unknown_key", "")
    raise _rejected(reason, f"{where}, kid {_shown(kid)}: {detail}")


def _build(jwks: _Jwks, index: int, alg: str, where: str) -> jwt.PyJWK:
    built = jwks.built.get((index, alg))
    if built is None:
        try:
            built = jwt.PyJWK(jwks.keys[index], alg)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:  # never its text
            detail = f"{where}: a key is unusable ({type(exc).__name__})"
            raise _rejected("unusable_key", detail) from None
        if isinstance(built.key, rsa.RSAPublicKey) and built.key.key_size < MIN_RSA_BITS:
            bits = built.key.key_size
            raise _rejected("weak_key", f"{where}: an RSA key of {bits} bits (< {MIN_RSA_BITS})")
        jwks.built[(index, alg)] = built
    return built


def _read_file(path: Path, where: str) -> bytes:
    """The JWKS file's bytes (a regular file, at most ``MAX_JWKS_BYTES``; ``ConfigError``)."""
    try:  # non-blocking open, regular files only: a FIFO put there must not hang a fetch
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise ConfigError(f"{where}: the JWKS path is not a regular file")
            data = f.read(MAX_JWKS_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read the JWKS file: {exc.strerror}") from None
    except ValueError:  # a NUL byte in the path
        raise ConfigError(f"{where}: cannot read the JWKS file: invalid path") from None
    if len(data) > MAX_JWKS_BYTES:
        raise ConfigError(f"{where}: the JWKS file is over {MAX_JWKS_BYTES} bytes")
    return data
