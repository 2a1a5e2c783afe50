"""Configuration: ``Settings`` from ``SESSIONSVC_*`` environment variables (``settings``) and the
Redis URL check (``redis_url``). ``from sessionsvc.config import Settings, load_settings``."""

from sessionsvc.config.redis_url import check_redis_url
from sessionsvc.config.settings import (
    EVENT_TYPES,
    NAMESPACE,
    PUBLISHER_NAME,
    EventType,
    Settings,
    check_namespace,
    check_publisher_names,
    load_settings,
    redact_url,
)

__all__ = [
    "EVENT_TYPES",
    "NAMESPACE",
    "PUBLISHER_NAME",
    "EventType",
    "Settings",
    "check_namespace",
    "check_publisher_names",
    "check_redis_url",
    "load_settings",
    "redact_url",
]
