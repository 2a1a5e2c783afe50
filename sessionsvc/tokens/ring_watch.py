"""``RingWatch``: the current key ring of one configured JWKS source, reloaded without a restart.

The source is the configured one (``SESSIONSVC_ACCESS_JWKS`` / ``REFRESH_JWKS``), never Redis:
whoever can write Redis must not be able to add a key (the revocation log only takes keys away,
``key.revoke``). Inline JSON never changes; a file path, or an ``https://`` JWKS URL of public
keys (``sessionsvc.tokens.jwks_url``), is re-read by ``reload()`` (and by ``poll()`` once
``interval`` seconds have passed, or by the thread of ``sessionsvc.tokens.ring_watcher``: no
request waits for it).

Invariants:

- the first load raises ``ConfigError`` as ``load_jwks`` does: a node never starts without a ring;
- a reload reads the file whole through one open (at most ``MAX_JWKS_BYTES``): an atomic
  replacement (``mv`` of a temp file, a Kubernetes Secret's ``..data`` symlink swap) is seen
  wholly before or wholly after; unchanged bytes (SHA-256) are not judged again;
- a file that cannot be read or judged (missing, partial, corrupt, a key the policy refuses, a
  ring ``accept`` refuses) keeps the current ring: counted in ``failures`` and logged once per
  distinct content (``key_ring_reload_failed``, never the content), and retried at every reload;
- a new ring is handed to every listener; a failing listener is logged, never raised.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Final

import structlog

from sessionsvc.errors import ConfigError
from sessionsvc.tokens.jwks_url import MAX_JWKS_BYTES, check_public, https_fetcher, is_url
from sessionsvc.tokens.keys import KeyRing, load_jwks

__all__ = ["MAX_JWKS_BYTES", "RingWatch", "is_inline", "read_file"]

_UNREADABLE: Final = b"unreadable"  # the "digest" of a file that could not be read
log = structlog.get_logger("sessionsvc.keys")


def is_inline(source: str) -> bool:
    """Is ``source`` the JWKS JSON itself (not a path)? The rule of ``load_jwks``."""
    return source.strip().startswith("{")


class RingWatch:
    """The current ``ring`` of one JWKS source; ``reload()`` picks up a change."""

    def __init__(
        self,
        source: str,
        *,
        ring: str,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        accept: Callable[[KeyRing], None] | None = None,
    ) -> None:
        self.name = ring
        self.interval = interval
        self.clock = clock
        self.path = None if is_inline(source) or is_url(source) else Path(source.strip())
        self.url = source.strip() if is_url(source) else None
        self.reloads = 0
        self.failures = 0
        self.last_error: str | None = None
        self.listeners: list[Callable[[KeyRing], None]] = []
        self._accept = accept
        self._lock = threading.Lock()
        self._bad: bytes | None = None
        self._fetch: Callable[[], bytes] | None = None
        if self.url is not None:
            self._fetch = https_fetcher(self.url, ring)
        elif self.path is not None:
            self._fetch = partial(self._read, self.path)
        if self._fetch is None:
            self._digest = b""
            self.ring = self._judge(source.strip())
        else:
            data = self._fetch()
            self._digest = hashlib.sha256(data).digest()
            self.ring = self._judge(_text(data, ring))
        self._due = clock() + interval

    @property
    def watched(self) -> bool:
        """True for a file or URL source with a non-zero interval (inline JSON never
        changes)."""
        return self._fetch is not None and self.interval > 0

    def poll(self) -> bool:
        """``reload()`` if ``interval`` seconds have passed since the last one; else False."""
        if not self.watched or self.clock() < self._due:
            return False
        return self.reload()

    def reload(self) -> bool:
        """Re-read the source now; True if a new ring replaced the current one."""
        if self._fetch is None:
            return False
        self._due = self.clock() + self.interval
        try:  # (I/O outside the lock: a slow source must not hold every other reload)
            data = self._fetch()
        except ConfigError as exc:
            with self._lock:
                return self._failed(_UNREADABLE, exc)
        with self._lock:
            digest = hashlib.sha256(data).digest()
            if digest == self._digest:
                self._bad = None
                return False
            # a refused content is judged again: its refusal may depend on the other ring
            # (the issuer's disjointness check), which may have changed since
            try:
                ring = self._judge(_text(data, self.name))
            except ConfigError as exc:
                return self._failed(digest, exc)
            self.ring, self._digest, self._bad = ring, digest, None
            self.reloads += 1
            self.last_error = None
            log.info("key_ring_reloaded", ring=self.name, kids=list(ring.keys))
            for listener in list(self.listeners):  # (under the lock: in the order of reloads)
                try:
                    listener(ring)
                except Exception:
                    log.exception("key_ring_listener_failed", ring=self.name)
        return True

    def _judge(self, text: str) -> KeyRing:
        if self.url is not None:
            check_public(text, self.name)  # a URL serves verification keys only
        ring = load_jwks(text, ring=self.name)
        if self._accept is not None:
            self._accept(ring)
        return ring

    def _failed(self, digest: bytes, exc: ConfigError) -> bool:
        if digest != self._bad:
            self._bad = digest
            self.failures += 1
            self.last_error = str(exc)
            log.warning("key_ring_reload_failed", ring=self.name, error=str(exc), kept=True)
        return False

    def _read(self, path: Path) -> bytes:
        return read_file(path, f"{self.name} key ring")


def read_file(path: Path, where: str) -> bytes:
    """A JWKS file's bytes: a regular file (opened without blocking: a FIFO put there must not
    hang a reload), at most ``MAX_JWKS_BYTES``; ``ConfigError`` naming ``where`` otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise ConfigError(f"{where}: the JWKS path is not a regular file")
            data = f.read(MAX_JWKS_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read JWKS file: {exc.strerror}") from None
    except ValueError:  # a NUL byte in the path
        raise ConfigError(f"{where}: cannot read JWKS file: invalid path") from None
    if len(data) > MAX_JWKS_BYTES:
        raise ConfigError(f"{where}: JWKS file is over {MAX_JWKS_BYTES} bytes")
    return data


def _text(data: bytes, ring: str) -> str:
    """The file's text, which must be a JSON object (else ``load_jwks`` would read it as a
    path)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{ring} key ring: cannot read JWKS file: not UTF-8 text") from None
    if not is_inline(text):
        raise ConfigError(f"{ring} key ring: JWKS file does not hold a JSON object")
    return text
