"""Access logs without tokens: ``TokenQueryFilter``, a ``logging.Filter`` that rewrites each
record before it is formatted, and ``install`` for the servers' access loggers.

The web core refuses a token in a URL query string (400), but a server logs the whole URL
first. The filter replaces with ``[redacted]`` the value of every query parameter named in
``SENSITIVE_PARAMS`` (any case, the name percent-decoded; a query nested in a parameter
percent-encoded, as in a redirect URL, too), and anything that looks like a JWT (``eyJ`` then
three to five dot-separated base64url segments) wherever it appears, whatever its name. It
knows the record shapes of uvicorn (``args``: client, method, path with query, HTTP version,
status), gunicorn (``args``: the atoms, ``q`` and ``{query_string}e`` bare query strings) and
werkzeug (``args[0]``: the request line), and falls back on ``msg`` and every string in
``args``. It never drops a record: one it cannot rewrite keeps its level and time, with a
placeholder for its text.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Final
from urllib.parse import unquote, unquote_plus

__all__ = [
    "DEFAULT_LOGGERS",
    "REDACTED",
    "SENSITIVE_PARAMS",
    "TokenQueryFilter",
    "install",
    "redact",
    "redact_query",
]

SENSITIVE_PARAMS: Final = frozenset(
    {
        *("accesstoken", "refreshtoken", "token", "idtoken", "code", "jwt", "csrftoken"),
        *("password", "passwd", "secret", "clientsecret", "apikey", "key", "auth"),
        *("authorization", "session", "sessionid", "sid", "assertion", "logouttoken"),
    }
)
"""Query parameters whose value never reaches a log, compared percent-decoded, lower-case, with
everything but letters and digits dropped (``access_token``, ``Access-Token``, ``accessToken``
are one)."""
REDACTED: Final = "[redacted]"
DEFAULT_LOGGERS: Final = ("uvicorn.access", "gunicorn.access", "werkzeug")
_UNSCRUBBABLE: Final = "[access log line redacted: it could not be checked for tokens]"
_QUERY_ATOMS: Final = frozenset({"q", "{query_string}e"})  # gunicorn's bare query strings

# A parameter: a separator (raw, or percent-encoded in a nested query), a name, "=", a value
# that runs to the next separator, whitespace or double quote (log formats quote URLs).
_SEP = r"(?:[?&;]|%3[Ff]|%26|%3[Bb])"
_NAME = r"(?:[^\s?&;=%\"]|%(?!3[DdFfBb]|26)[0-9A-Fa-f]{2})+"
_EQ = r"(?:=|%3[Dd])"
_VALUE = r"(?:[^\s?&;%\"]|%(?!3[FfBb]|26)[0-9A-Fa-f]{2}|%(?![0-9A-Fa-f]{2}))*"
_PARAM: Final = re.compile(rf"(?P<head>{_SEP}(?P<name>{_NAME}){_EQ})(?P<value>{_VALUE})")
# A JWS (three segments) or JWE (five), not glued to more base64url (a "%20" before it is fine).
_JWT: Final = re.compile(
    r"(?:(?<![A-Za-z0-9_-])|(?<=%[0-9A-Fa-f]{2}))eyJ[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*){2,4}"
)


def _param(match: re.Match[str]) -> str:
    name = "".join(c for c in unquote_plus(unquote_plus(match["name"])).lower() if c.isalnum())
    if match["value"] and name in SENSITIVE_PARAMS:
        return match["head"] + REDACTED
    return match[0]


def redact(text: str) -> str:
    """``text`` (a URL, a path with its query, a request line, a whole log line) with every
    sensitive parameter's value and every JWT-like string replaced by ``REDACTED``."""
    if "=" in text or "%3d" in text.lower():
        text = _PARAM.sub(_param, text)
    if "eyJ" in text:
        text = _JWT.sub(REDACTED, text)
        if "eyJ" in text and "%" in text:  # a JWT whose dots came percent-encoded
            text = _JWT.sub(REDACTED, unquote(unquote(text)))
    return text


def redact_query(query: str) -> str:
    """``redact`` for a bare query string (``a=1&token=…``, without its ``?``)."""
    return redact("?" + query)[1:]


def _scrub(record: logging.LogRecord) -> None:
    if isinstance(record.msg, str):
        record.msg = redact(record.msg)
    args = record.args
    if isinstance(args, Mapping):  # gunicorn: its atoms (a dict subclass, kept: it is rewritten)
        changed = {}
        for key, value in args.items():
            if isinstance(value, str):
                clean = redact_query(value) if key in _QUERY_ATOMS else redact(value)
                if clean != value:
                    changed[key] = clean
        if changed and isinstance(args, MutableMapping):
            args.update(changed)
        elif changed:
            record.args = {**args, **changed}
    elif isinstance(args, tuple):  # uvicorn, werkzeug, anyone: the same positions
        record.args = tuple(redact(a) if isinstance(a, str) else a for a in args)


class TokenQueryFilter(logging.Filter):
    """Rewrites every record it sees so that no token in a URL survives (module docstring);
    never drops one. Add it to a logger (``install``) or to a handler (then it also sees the
    records of child loggers that propagate to it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite ``record`` in place; always ``True`` (the record is kept)."""
        try:
            _scrub(record)
        except Exception:  # never break the server's logging call, never let the text through
            record.msg, record.args = _UNSCRUBBABLE, ()
        return True


def install(logger_names: Iterable[str] = DEFAULT_LOGGERS) -> None:
    """Add a ``TokenQueryFilter`` to each named logger that has none yet (idempotent). Call it
    at start-up, before the server logs its first request: logging configuration that the
    servers apply (``dictConfig``) replaces handlers, not the filters of a logger."""
    shared = TokenQueryFilter()
    for name in logger_names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, TokenQueryFilter) for f in logger.filters):
            logger.addFilter(shared)
