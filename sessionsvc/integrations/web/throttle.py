"""Login throttling (pure): login attempts counted in Redis per user name and per client address.

Each counter counts in fixed windows of ``WebSettings.login_window`` seconds, from the window's
first attempt. The login endpoint calls ``check`` *before* the app's credential check, and
``check`` *reserves*: it counts this attempt (one atomic INCR per counter), then compares. An
attempt that makes a counter go over its limit (``login_user_attempts`` for the name,
``login_ip_attempts`` for the address) is answered 429 (``throttled``) with ``Retry-After``, the
seconds left in that counter's window; so at most the limit's attempts per window reach the
credential check, however many arrive at the same moment, and a locked name cannot be
brute-forced. The address is reserved first: an attempt it refuses does not count for the name
(an address over its limit cannot lock out names), an attempt the name refuses stays counted
for the address. A failure needs nothing more (it was counted before the check: there is no
``failed``); ``succeeded`` resets the name's counter and gives the address back its
reservation, never below 0, so successful logins do not use up a shared address's (an office
NAT's) budget: the address's counter counts the attempts that did not succeed.

The name is counted normalised (``login_name``: NFKC, case-folded, surrounding whitespace
stripped), so ``Alice``, ``alice`` and `` alice`` share one counter, whatever the app's own
credential lookup makes of them.

Keys (``sessionsvc._redis.layout``), one script call each (two slots: never one script across
both): ``<ns>:{u:<tag>}:login_fail`` in the user's slot (``login_tag`` of the normalised name:
its ``user_tag``; a name ``user_tag`` refuses — empty, unprintable, over 128 bytes — is counted
under ``~`` and the base64url of the first 16 bytes of its SHA-256: never a real user's tag,
still counted), and ``<ns>:{ip:<network>}:login_fail`` (``client_network``: an IPv4 address, an
IPv4-mapped IPv6 one as IPv4, any other IPv6 address as its /64; no client address, or one that
is not an IP address: no address counter). The scripts (``login_reserve``, ``login_release``,
``login_reset``) are the only writers; a key holding no integer is an error before any write,
and a counter without an expiry gets the window when a script meets it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import unicodedata
from typing import Final

from sessionsvc._redis import layout
from sessionsvc._redis.scripts import SCRIPTS
from sessionsvc.encoding import b64url_encode
from sessionsvc.errors import InvalidArgument
from sessionsvc.integrations.web.config import WebSettings
from sessionsvc.integrations.web.http import Problem
from sessionsvc.sessions.keys import user_tag
from sessionsvc.sessions.model import Op

__all__ = [
    "REFUSED_NAME_PREFIX",
    "LoginThrottle",
    "client_network",
    "login_name",
    "login_tag",
    "throttled",
]

REFUSED_NAME_PREFIX: Final = "~"
"""Starts the tag of a name ``user_tag`` refuses (outside base64url: no user has such a tag)."""
_IPV6_GROUP: Final = 64  # one host (one /64 of SLAAC or privacy addresses) counts once


def login_name(username: str) -> str:
    """The form of ``username`` that is counted: NFKC, case-folded (and NFKC again: folding can
    undo a composition), surrounding whitespace stripped. ``Alice``, ``alice``, `` alice `` and
    ``ａｌｉｃｅ`` (full width) are one name to the throttle."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", username).casefold())
    return folded.strip()


def login_tag(username: str) -> str:
    """The hash-tag body of ``username``'s counter: ``user_tag(username)``, or for a name it
    refuses ``REFUSED_NAME_PREFIX`` and the base64url of 16 bytes of the name's SHA-256."""
    try:
        return user_tag(username)
    except InvalidArgument:
        raw = str(username).encode("utf-8", "surrogatepass")
        return REFUSED_NAME_PREFIX + b64url_encode(hashlib.sha256(raw).digest()[:16])


def client_network(client: str | None) -> str | None:
    """What the address counter of ``client`` is named after: an IPv4 address (an IPv4-mapped
    IPv6 one included), an IPv6 address's /64 (``2001:db8:1:2::/64``), or ``None`` for no
    client address or one that is not an IP address (a Unix socket, a test client's name)."""
    if not client:
        return None
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv4Address):
        return str(address)
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    network = int(address) >> (128 - _IPV6_GROUP) << (128 - _IPV6_GROUP)  # (drops a zone id)
    return f"{ipaddress.IPv6Address(network)}/{_IPV6_GROUP}"


def throttled(wait: float) -> Problem:
    """The 429 of a throttled login: ``Retry-After`` the whole seconds of ``wait`` (at least 1).
    The description does not say which counter is at its limit."""
    seconds = str(max(1, math.ceil(wait)))
    description = "too many login attempts; try again later"
    return Problem(429, "too_many_attempts", description, [("retry-after", seconds)])


class LoginThrottle:
    """The throttling ops of one namespace (``Settings.namespace``), run with
    ``sessionsvc._redis.run.run`` or ``arun``: ``check`` (reserve an attempt), ``succeeded``."""

    __slots__ = (
        "_release",
        "_reserve",
        "_reset",
        "_window",
        "ip_attempts",
        "namespace",
        "user_attempts",
    )

    def __init__(self, web: WebSettings, namespace: str) -> None:
        self.namespace = namespace
        self.user_attempts = web.login_user_attempts
        self.ip_attempts = web.login_ip_attempts
        self._window = str(web.login_window * 1000)
        self._reserve = SCRIPTS["login_reserve"].bind(namespace)
        self._release = SCRIPTS["login_release"].bind(namespace)
        self._reset = SCRIPTS["login_reset"].bind(namespace)

    def user_key(self, username: str) -> str:
        """The attempt counter of ``username`` (``login_name``), in the user's slot
        (``{u:<tag>}``)."""
        tag = login_tag(login_name(username))
        return layout.user_prefix(self.namespace, tag) + layout.LOGIN_FAIL

    def ip_key(self, client: str | None) -> str | None:
        """The attempt counter of ``client``'s address (``client_network``), or ``None``."""
        network = client_network(client)
        if network is None:
            return None
        return layout.ip_prefix(self.namespace, network) + layout.LOGIN_FAIL

    def check(self, username: str, client: str | None) -> Op[float | None]:
        """Reserve one login attempt of ``username`` from ``client``, before its credentials
        are checked: ``None``, go on; or the seconds to wait (the window's remainder of the
        counter this attempt took over its limit): refuse it. The address's counter first;
        an attempt it refuses is not counted for the name."""
        ip = self.ip_key(client)
        if ip is not None:
            wait = yield from self._take(ip, self.ip_attempts)
            if wait is not None:
                return wait
        return (yield from self._take(self.user_key(username), self.user_attempts))

    def succeeded(self, username: str, client: str | None) -> Op[None]:
        """``username`` just logged in from ``client``: forget the name's attempts, and give
        the address back the attempt ``check`` reserved (never below 0)."""
        yield self._reset(counter=self.user_key(username))
        ip = self.ip_key(client)
        if ip is not None:
            yield self._release(counter=ip, window_ms=self._window)

    def _take(self, key: str, limit: int) -> Op[float | None]:
        count, left = yield self._reserve(counter=key, window_ms=self._window)
        return int(left) / 1000 if int(count) > limit else None
