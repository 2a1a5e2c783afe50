"""How an adapter's parts fit together (pure): one place that wires the policies, the login
flow and the endpoints for a validator and a session core, whatever the framework."""

from __future__ import annotations

from typing import NamedTuple, Protocol

from sessionsvc.config import Settings
from sessionsvc.integrations.web.auth import AuthCore
from sessionsvc.integrations.web.config import WebSettings
from sessionsvc.integrations.web.endpoints import Endpoints
from sessionsvc.integrations.web.login import LoginFlow
from sessionsvc.integrations.web.throttle import LoginThrottle
from sessionsvc.revocation.view import Revocation
from sessionsvc.sessions.core import SessionCore
from sessionsvc.tokens.verify import TokenVerifier

__all__ = ["Parts", "ValidatorLike", "assemble"]


class ValidatorLike(Protocol):
    """What the web core needs of a ``Validator``: its verifier (the public access keys) and
    ``revoke`` (a sign-out made here, applied here at once, its listeners told)."""

    verifier: TokenVerifier

    def revoke(self, revocation: Revocation, *, notify: bool = False) -> bool: ...


class Parts(NamedTuple):
    """An adapter's web core: the policies, the login flow, the other endpoints, and the
    settings warnings to log once."""

    core: AuthCore
    login_flow: LoginFlow
    endpoints: Endpoints
    warnings: list[str]


def assemble(
    settings: Settings, web: WebSettings, validator: ValidatorLike, sessions: SessionCore
) -> Parts:
    """The parts for ``validator`` and ``sessions``; ``ConfigError`` for insecure settings."""
    core = AuthCore(settings, web, revoke_locally=lambda rev: validator.revoke(rev, notify=True))
    warnings = core.check()
    login_flow = LoginFlow(core, sessions, LoginThrottle(web, settings.namespace))
    endpoints = Endpoints(core, sessions, lambda: validator.verifier.ring)
    return Parts(core, login_flow, endpoints, warnings)
