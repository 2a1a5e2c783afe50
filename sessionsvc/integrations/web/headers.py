"""Lazy views of a request's headers and cookies for ``WebRequest`` (pure): nothing is copied
or parsed until the core asks, and a protected request asks for one header.

Invariants:

- Names are looked up lower-case with ``-`` (``"content-type"``); a name with ``_`` is never
  found (in a WSGI environ, ``X_Foo`` and ``X-Foo`` are one key: no name can stand in for
  another).
- ``cookie`` is never a header here: the cookies are ``LazyCookies``, parsed on first use,
  the first value of a name winning (``parse_cookies``).
- ``ScopeHeaders`` joins a header sent more than once with ``", "`` (RFC 9110 §5.3); an
  environ's values are as the server joined them. An ASGI server should send header names
  lower-case (the ASGI spec); they are lower-cased here anyway, so that a non-conforming
  server or middleware cannot hide an ``Origin`` or ``Sec-Fetch-Site`` from the CSRF checks.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from sessionsvc.integrations.web.http import parse_cookies

__all__ = ["EnvironHeaders", "LazyCookies", "ScopeHeaders"]

_UNPREFIXED = {"content-type": "CONTENT_TYPE", "content-length": "CONTENT_LENGTH"}


class EnvironHeaders(Mapping[str, str]):
    """The headers of a WSGI environ (or Django's ``request.META``), read in place."""

    __slots__ = ("_environ",)

    def __init__(self, environ: Mapping[str, object]) -> None:
        self._environ = environ

    def __getitem__(self, name: str) -> str:
        if name == "cookie" or "_" in name:
            raise KeyError(name)
        value = self._environ.get(_UNPREFIXED.get(name) or "HTTP_" + name.upper().replace("-", "_"))
        if not isinstance(value, str) or (name in _UNPREFIXED and not value):
            raise KeyError(name)  # (CGI sets CONTENT_TYPE to "" when none was sent)
        return value

    def __iter__(self) -> Iterator[str]:
        for name, key in _UNPREFIXED.items():
            if self._environ.get(key):
                yield name
        for key in self._environ:
            if key.startswith("HTTP_") and key != "HTTP_COOKIE":
                yield key[5:].lower().replace("_", "-")

    def __len__(self) -> int:
        return sum(1 for _ in self)


class ScopeHeaders(Mapping[str, str]):
    """The headers of an ASGI scope (``[(name, value), ...]`` as bytes), read in place."""

    __slots__ = ("_raw",)

    def __init__(self, raw: Sequence[tuple[bytes, bytes]]) -> None:
        self._raw = raw

    def __getitem__(self, name: str) -> str:
        key = name.encode("latin-1")
        values = [v.decode("latin-1") for n, v in self._raw if n.lower() == key]
        if not values or name == "cookie":
            raise KeyError(name)
        return ", ".join(values)

    def __iter__(self) -> Iterator[str]:
        names = dict.fromkeys(n.decode("latin-1").lower() for n, _ in self._raw)
        return iter([n for n in names if n != "cookie"])

    def __len__(self) -> int:
        return sum(1 for _ in self)


class LazyCookies(Mapping[str, str]):
    """The ``Cookie`` header as a mapping (``parse_cookies``), parsed on first use."""

    __slots__ = ("_header", "_parsed")

    def __init__(self, header: str) -> None:
        self._header = header
        self._parsed: dict[str, str] | None = None

    def _cookies(self) -> dict[str, str]:
        if self._parsed is None:
            self._parsed = parse_cookies(self._header)
        return self._parsed

    def __getitem__(self, name: str) -> str:
        return self._cookies()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._cookies())

    def __len__(self) -> int:
        return len(self._cookies())
