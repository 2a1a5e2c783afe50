"""The package layering of ``sessionsvc/*/__init__.py``: the pure token core imports neither
Redis, nor the revocation feeds, nor the validator."""

from __future__ import annotations

import ast
from pathlib import Path

import sessionsvc

ROOT = Path(sessionsvc.__file__).parent


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_tokens_import_no_redis_no_feed_no_validator() -> None:
    forbidden = ("redis", "sessionsvc.validator", "sessionsvc.revocation", "sessionsvc._redis")
    for path in sorted((ROOT / "tokens").glob("*.py")):
        bad = [n for n in imports(path) if n.startswith(forbidden)]
        assert bad == [], f"{path.name} imports {bad}"
