"""Reading a JWKS file as a document and replacing it atomically (the shell of rotation).

``write_atomic`` writes a temp file in the same directory (created with ``mode``, 0600 by
default: private keys), flushes it to disk, renames it over the target and syncs the directory:
a reader (``RingWatch``) sees the old file or the new one, never a part.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from sessionsvc.encoding import StrictDecodeError, loads_object
from sessionsvc.errors import ConfigError
from sessionsvc.tokens.ring_watch import MAX_JWKS_BYTES

__all__ = ["read_document", "write_atomic", "write_document"]


def read_document(path: Path) -> dict[str, Any]:
    """The JWKS file at ``path`` as a strict JSON object (``ConfigError`` otherwise; never
    quoting the content)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read JWKS file {str(path)!r}: {exc.strerror}") from None
    if len(data) > MAX_JWKS_BYTES:
        raise ConfigError(f"JWKS file {str(path)!r} is over {MAX_JWKS_BYTES} bytes")
    try:
        return loads_object(data)
    except StrictDecodeError as exc:
        raise ConfigError(f"JWKS file {str(path)!r} is not a strict JSON object ({exc})") from None


def write_document(path: Path, doc: dict[str, Any], *, mode: int = 0o600) -> None:
    """``doc`` as JSON (one line and a newline) replacing ``path`` atomically."""
    write_atomic(path, json.dumps(doc, separators=(",", ":")) + "\n", mode=mode)


def write_atomic(path: Path, text: str, *, mode: int = 0o600) -> None:
    """Replace ``path`` by ``text``: temp file with ``mode``, fsync, rename, directory fsync.
    A symlink is followed (its target is replaced, the link stays). An existing file keeps its
    owner and group, and its mode within ``mode`` | 0640: its group (the service's) may still
    read it, others lose what ``mode`` does not give them (a private file: everything)."""
    path = Path(os.path.realpath(path))
    directory = path.parent
    owner = _owner(path, mode)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if owner is not None:
            uid, gid, mode = owner
            os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _owner(path: Path, mode: int) -> tuple[int, int, int] | None:
    """The owner, group and mode to keep for ``path`` (``None``: a new file)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode) & (mode | 0o640) | (mode & 0o600)
