"""The Redis URL: refused unless redis-py reads it as written; redacted for display (no I/O).

A password with an unescaped ``/``, ``?``, ``#`` or ``@`` (as ``openssl rand -base64`` makes)
moves the end of the userinfo, so redis-py would take part of it for the host, port, path or
query, and its errors ("Port could not be cast to integer value as …") would print that part.
``check_redis_url`` refuses such URLs before any client is built; its message never contains
the URL. ``redact_url`` masks what could be a password even in URLs it would refuse.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import re
from typing import Final
from urllib.parse import unquote_plus, urlsplit

import redis.asyncio.connection
import redis.connection

__all__ = ["check_cluster_url", "check_redis_url", "redact_url"]

SCHEMES: Final = ("redis://", "rediss://", "unix://")
_USERINFO: Final = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:%]*")  # RFC 3986 §3.2.1
_BAD_ESCAPE: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")
_QUERY_PAIR: Final = re.compile(r"(?<=[?&])([^?&=]*)=([^&]*)")
_TLS_IN_URL: Final = (
    "has an ssl_* query parameter: TLS is configured by SESSIONSVC_REDIS_CA_FILE, "
    "SESSIONSVC_REDIS_CLIENT_CERT_FILE and SESSIONSVC_REDIS_CLIENT_KEY_FILE (certificate "
    "checks are always on)"
)
_ENCODE: Final = (
    "percent-encode the user name and password (/ as %2F, ? as %3F, # as %23, @ as %40, "
    "% as %25, + as %2B in a query)"
)


def check_redis_url(url: str) -> None:
    """Raise ``ValueError`` unless redis-py parses ``url`` exactly as written: a ``redis://``,
    ``rediss://`` or ``unix://`` URL whose userinfo holds no unescaped reserved character, with
    at most one ``@`` (in the authority), a numeric port, valid escapes, no fragment, and only
    query parameters redis-py accepts, none of them ``ssl_*`` (redis-py would let such a parameter
    override the TLS options of ``sessionsvc._redis.clients``: ``ssl_cert_reqs=none``). The
    message never quotes any part of ``url``."""
    if not url.startswith(SCHEMES):
        raise ValueError("must be a redis://, rediss:// or unix:// URL")
    try:
        parts = urlsplit(url)
        _ = parts.port  # ValueError for a port that is not a number (its message quotes it)
        scheme_kwargs = redis.connection.parse_url(url)  # type: ignore[no-untyped-call]
    except (ValueError, TypeError):
        raise ValueError(f"cannot be parsed as a Redis URL; {_ENCODE}") from None
    userinfo = parts.netloc.rpartition("@")[0]
    if (
        url.count("@") != parts.netloc.count("@")
        or "@" in userinfo
        or not _USERINFO.fullmatch(userinfo)
        or "#" in url
        or _BAD_ESCAPE.search(url)
    ):
        raise ValueError(f"holds an unescaped reserved character; {_ENCODE}")
    accepted = _query_names(scheme_kwargs.get("connection_class", redis.connection.Connection))
    for pair in filter(None, parts.query.split("&")):
        raw_name, _, raw_value = pair.partition("=")
        name = unquote_plus(raw_name)
        if name not in accepted:  # "&" in a password starts a parameter redis-py does not know
            raise ValueError(f"has a query parameter redis-py does not accept; {_ENCODE}")
        if name.startswith("ssl_"):  # redis-py lets them override ours (ssl_cert_reqs=none)
            raise ValueError(_TLS_IN_URL)
        if name in ("password", "username") and "+" in raw_value:
            raise ValueError(f"has a + in a query value (read as a space); {_ENCODE}")


def check_cluster_url(url: str) -> None:
    """Raise ``ValueError`` unless ``url`` (already passed by ``check_redis_url``) can name a
    Redis Cluster node: TCP (``redis://``/``rediss://``), database 0. Never quotes ``url``."""
    if url.startswith("unix://"):
        raise ValueError("Redis Cluster needs a redis:// or rediss:// URL (a node's host:port)")
    if redis.connection.parse_url(url).get("db", 0) != 0:  # type: ignore[no-untyped-call]
        raise ValueError("Redis Cluster has database 0 only: end the URL in /0 or nothing")


@functools.cache
def _query_names(sync_class: type) -> frozenset[str]:
    """Query parameters redis-py passes on as keywords that both its sync and asyncio
    connection classes accept (any other name would end in a TypeError that quotes it)."""
    async_class = getattr(redis.asyncio.connection, sync_class.__name__)
    return (_init_params(sync_class) & _init_params(async_class)) | {"max_connections"}


def _init_params(cls: type) -> frozenset[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is not None:
            names.update(inspect.signature(init).parameters)
    return frozenset(names - {"self", "args", "kwargs"})


def redact_url(url: str) -> str:
    """``url`` with anything that may be a password replaced by ``***`` (for logs and ``config
    check``): in the userinfo, taken conservatively as everything between ``//`` and the *last*
    ``@``, what follows its first ``:``; and the value of every query parameter whose name holds
    ``password`` (``password=``, ``ssl_password=``: redis-py reads both) up to the next ``&``,
    ``#`` and ``@`` included."""
    hidden = bytearray(len(url))  # per character: 0 shown, 1 masked, 2 a password= name
    _, slashes, rest = url.partition("//")
    userinfo = rest.rpartition("@")[0] if slashes else ""
    if ":" in userinfo:
        start = len(url) - len(rest)
        for i in range(start + userinfo.index(":") + 1, start + len(userinfo)):
            hidden[i] = 1
    for match in _QUERY_PAIR.finditer(url):
        if "password" in unquote_plus(match[1]).lower():
            for i in range(*match.span(1)):
                hidden[i] = hidden[i] or 2
            for i in range(*match.span(2)):
                hidden[i] = 1
    shown = []
    for flag, group in itertools.groupby(range(len(url)), hidden.__getitem__):
        indices = list(group)
        shown.append("***" if flag == 1 else url[indices[0] : indices[-1] + 1])
    return "".join(shown)
