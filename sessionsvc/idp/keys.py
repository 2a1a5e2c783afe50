"""The keys of the identity providers we trust, fetched and cached (a shell: a daemon thread
refreshes them).

``IssuerKeys`` holds one issuer's JWKS (``trust.jwks``: a path, the JSON inline, or an
``https://`` URL verified against ``trust.ca_file`` when given); ``IssuerKeyring`` is the
``KeyLookup`` of every trusted issuer. Invariants:

- every JWKS loaded is judged whole, and a key picked for a token, by ``sessionsvc.idp.jwks``
  (no HMAC secret, no private member; the key must fit the token's ``alg``), and only for an
  ``alg`` the issuer lists;
- no request waits for a refresh: keys older than ``jwks_refresh`` keep answering while ONE
  daemon thread fetches; a failed or refused refresh keeps the last good keys (logged, never the
  body) and is retried ``unknown_kid_cooldown`` (at least 1 s, at most ``jwks_refresh``) later;
- an unknown ``kid`` refetches synchronously at most once per ``unknown_kid_cooldown``; no keys
  yet: a synchronous fetch, ``IdpKeysUnavailable`` if it fails (never ``IdpTokenRejected``),
  and no other until the cooldown passed; so is an unknown ``kid`` while the last fetch failed
  (the keys held may be stale). ``wait=False`` (the worker's apply path) never fetches in the
  caller's thread: the fetch runs behind and the answer is ``IdpKeysUnavailable``;
- one fetch per issuer at a time: a caller needing one while another runs shares its result.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path

import jwt
import structlog

from sessionsvc.errors import ConfigError, IdpKeysUnavailable, IdpTokenRejected
from sessionsvc.idp.jwks import MIN_RSA_BITS, Jwks, find, parse, rejected, shown
from sessionsvc.idp.model import KeyLookup
from sessionsvc.idp.trust import Idps, IdpTrust
from sessionsvc.tokens.jwks_url import https_fetcher, is_url
from sessionsvc.tokens.ring_watch import read_file

__all__ = ["MIN_RSA_BITS", "IssuerKeyring", "IssuerKeys"]

log = structlog.get_logger("sessionsvc.idp")


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
        self._jwks: Jwks | None = None
        self._loaded = self._attempted = -math.inf  # last success, last start of a fetch
        self._attempts = 0  # fetches finished: a waiter sees whether one ran meanwhile
        self._error: str | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        source, self._fetch = trust.jwks.strip(), fetch
        if fetch is None and is_url(source):
            self._fetch = https_fetcher(source, self._where, cafile=trust.ca_file)
        elif fetch is None and source.startswith("{"):
            self._jwks = parse(source.encode("utf-8"), self._where)  # inline: never changes
        elif fetch is None:
            self._fetch = partial(read_file, Path(source), self._where)

    def key(self, kid: str | None, alg: str, *, wait: bool = True) -> jwt.PyJWK:
        """The key verifying a token of this issuer with header ``kid`` and ``alg``:
        ``IdpTokenRejected`` (``invalid_key``) when none may, ``IdpKeysUnavailable`` when no
        keys could be fetched yet. ``wait=False`` (the worker's apply path, which must never
        wait on a provider): a fetch this would wait for runs in the background instead, and
        the answer is ``IdpKeysUnavailable`` (the caller tries again later)."""
        if alg not in self.trust.algorithms:
            raise rejected("alg_not_allowed", f"{self._where} does not sign with {shown(alg)}")
        jwks = self._current(wait)
        found = find(jwks, kid, alg, self._where)
        if found is None and self._fetch is not None:
            with self._lock:
                due = self._clock() - self._attempted >= self.trust.unknown_kid_cooldown
                seen = self._attempts
            if due and not wait:
                self._background(seen, force=True)
                raise IdpKeysUnavailable(f"{self._where}: refetching its JWKS for a new kid")
            if due:  # (an IdP's rotation is seen at once; made-up kids: one fetch per cooldown)
                jwks = self._fetch_shared(seen) or jwks
                found = find(jwks, kid, alg, self._where)
        if found is None:
            what = f"kid {shown(kid)}" if kid is not None else f"one {alg} key (no kid given)"
            if self._error is not None:  # (the keys held may be stale: never refused for good)
                raise IdpKeysUnavailable(f"{self._where}: no {what}, JWKS failing ({self._error})")
            raise rejected("unknown_key", f"{self._where} has no {what}")
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

    def _current(self, wait: bool = True) -> Jwks:
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

    def _fetch_shared(self, seen: int) -> Jwks | None:
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
                jwks = old if same and old is not None else parse(data, self._where)
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
                "invalid_issuer", "unknown_issuer", f"issuer {shown(issuer)} is not trusted"
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
