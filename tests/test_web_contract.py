"""The web contract (``tests/web_contract.py``) against every adapter: Django, FastAPI, Flask."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from web_apps import ADAPTERS, WebApp
from web_contract import *  # noqa: F403 (the contract's tests, collected here)
from web_harness import Browser


@pytest.fixture(params=sorted(ADAPTERS))
def adapter(request: pytest.FixtureRequest) -> Any:
    return ADAPTERS[request.param]


@pytest.fixture
def webapp(adapter: Any, redis_url: str) -> Iterator[WebApp]:
    with adapter.open(redis_url) as app:
        yield app


@pytest.fixture
def client(webapp: WebApp) -> Any:
    return webapp.client


@pytest.fixture
def browser(client: Any) -> Browser:
    return Browser(client)
