"""What every adapter's ``Auth`` does first: its settings (given, or from the environment), its
validator and session service (given, or built from the settings), and the web core's parts for
them (``web.assembly.assemble``; the settings warnings logged once)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import structlog

from sessionsvc.config import Settings, load_settings
from sessionsvc.integrations.web.assembly import assemble
from sessionsvc.integrations.web.auth import AuthCore
from sessionsvc.integrations.web.config import WebSettings, load_web_settings
from sessionsvc.integrations.web.endpoints import Endpoints
from sessionsvc.integrations.web.login import LoginFlow
from sessionsvc.sessions.service import AsyncSessionService, SessionService
from sessionsvc.validator import Validator

__all__ = ["Wired"]

S = TypeVar("S", SessionService, AsyncSessionService)
log = structlog.get_logger("sessionsvc.web")


class Wired(Generic[S]):
    """The parts an adapter's ``Auth`` holds: ``settings``, ``web``, ``validator``,
    ``sessions``, ``core``, ``login_flow``, ``endpoints``."""

    settings: Settings
    web: WebSettings
    validator: Validator
    sessions: S
    core: AuthCore
    login_flow: LoginFlow
    endpoints: Endpoints

    def _wire(
        self,
        settings: Settings | None,
        web: WebSettings | None,
        validator: Validator | None,
        sessions: S | None,
        make_sessions: Callable[[Settings], S],
    ) -> None:
        self.settings = settings = settings or load_settings()
        self.web = web = web or load_web_settings()
        self.validator = validator or Validator(settings)
        self.sessions = sessions or make_sessions(settings)
        parts = assemble(settings, web, self.validator, self.sessions.core)  # (ConfigError)
        self.core, self.login_flow, self.endpoints = parts.core, parts.login_flow, parts.endpoints
        for warning in parts.warnings:
            log.warning("web_settings", warning=warning)
