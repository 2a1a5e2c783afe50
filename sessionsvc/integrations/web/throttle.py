"""Login throttling (pure): failed logins counted in Redis per user name and per client address.

Each counter counts in fixed windows of ``WebSettings.login_window`` seconds, from the window's
first failure. The login endpoint asks ``check`` *before* the app's credential check: at
``login_user_attempts`` failures of the name, or ``login_ip_attempts`` from the address, it
answers 429 (``throttled``) with ``Retry-After``, the seconds until every counter at its limit
has ended its window, so a locked name cannot be brute-forced. ``failed`` counts a failure on
both counters, ``succeeded`` resets the name's (never the address's). The limits bound the
failures the counters have seen: attempts in flight at the same moment each pass ``check``.

Keys (``sessionsvc._redis.layout``), one script call each (two slots: never one script across
both): ``<ns>:{u:<tag>}:login_fail`` in the user's slot (``login_tag``: ``user_tag`` of the name;
a name ``user_tag`` refuses — empty, unprintable, over 128 bytes — is counted under ``~`` and
the base64url of the first 16 bytes of its SHA-256: never a real user's tag, still counted),
and ``<ns>:{ip:<network>}:login_fail`` (``client_network``: an IPv4 address, an IPv4-mapped
IPv6 one as IPv4, any other IPv6 address as its /64; no client address, or one that is not
an IP address: no address counter). The scripts (``login_check``, ``login_fail``,
``login_reset``) are the only writers; a counter without an expiry gets the window when read.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from typing import Final

from sessionsvc._redis import layout
from sessionsvc._redis.scripts import SCRIPTS
from sessionsvc.encoding import b64url_encode
from sessionsvc.errors import InvalidArgument
from sessionsvc.integrations.web.config import WebSettings
from sessionsvc.integrations.web.http import Problem
from sessionsvc.sessions.keys import user_tag
from sessionsvc.sessions.model import Op

__all__ = ["REFUSED_NAME_PREFIX", "LoginThrottle", "client_network", "login_tag", "throttled"]

REFUSED_NAME_PREFIX: Final = "~"
"""Starts the tag of a name ``user_tag`` refuses (outside base64url: no user has such a tag)."""
_IPV6_GROUP: Final = 64  # one host (one /64 of SLAAC or privacy addresses) counts once


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
    description = "too many failed logins; try again later"
    return Problem(429, "too_many_attempts", description, [("retry-after", seconds)])


class LoginThrottle:
    """The throttling ops of one namespace (``Settings.namespace``), run with
    ``sessionsvc._redis.run.run`` or ``arun``: ``check``, ``failed``, ``succeeded``."""

    __slots__ = (
        "_check",
        "_fail",
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
        self._check = SCRIPTS["login_check"].bind(namespace)
        self._fail = SCRIPTS["login_fail"].bind(namespace)
        self._reset = SCRIPTS["login_reset"].bind(namespace)

    def user_key(self, username: str) -> str:
        """The failed-login counter of ``username``, in the user's slot (``{u:<tag>}``)."""
        return layout.user_prefix(self.namespace, login_tag(username)) + layout.LOGIN_FAIL

    def ip_key(self, client: str | None) -> str | None:
        """The failed-login counter of ``client``'s address (``client_network``), or ``None``."""
        network = client_network(client)
        if network is None:
            return None
        return layout.ip_prefix(self.namespace, network) + layout.LOGIN_FAIL

    def check(self, username: str, client: str | None) -> Op[float | None]:
        """The seconds to wait before ``username`` may try to log in from ``client`` (the
        longer of the windows whose counter is at its limit), or ``None``: go on."""
        wait: float | None = None
        for key, limit in self._counters(username, client):
            count, left = yield self._check(counter=key, window_ms=self._window)
            if int(count) >= limit:
                wait = max(wait or 0.0, int(left) / 1000)
        return wait

    def failed(self, username: str, client: str | None) -> Op[None]:
        """Count a failed login of ``username`` from ``client`` (the name's and the address's
        counters; each starts its window at its first failure)."""
        for key, _limit in self._counters(username, client):
            yield self._fail(counter=key, window_ms=self._window)

    def succeeded(self, username: str) -> Op[None]:
        """Forget ``username``'s failed logins (it just logged in); the address's stay."""
        yield self._reset(counter=self.user_key(username))

    def _counters(self, username: str, client: str | None) -> list[tuple[str, int]]:
        counters = [(self.user_key(username), self.user_attempts)]
        ip = self.ip_key(client)
        if ip is not None:
            counters.append((ip, self.ip_attempts))
        return counters
