"""The layering of ``docs/architecture.md`` holds: every import of ``sessionsvc/`` and
``workers/`` stays within its unit's row, and pure modules import no I/O."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IO_MODULES = frozenset({"redis", "socket", "threading", "asyncio", "hiredis"})
EVERYTHING = "everything"


def _table() -> dict[str, frozenset[str] | str]:
    """unit → the units it may import, read from the Layers table of docs/architecture.md."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text.split("## Layers\n", 1)[1].split("\n## ", 1)[0]
    units: dict[str, frozenset[str] | str] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        unit, allowed = cells[0].strip("`"), cells[2]
        if allowed.startswith("everything"):
            units[unit] = allowed
        else:
            units[unit] = frozenset(re.findall(r"`([\w.]+)`", allowed))
    return units


TABLE = _table()
ORDER = list(TABLE)  # rows from the bottom layer up


def _allowed(unit: str) -> frozenset[str]:
    rule = TABLE[unit]
    if not isinstance(rule, str):
        return rule | {unit}
    below = ORDER[: ORDER.index(unit)]
    if rule == "everything, `workers` included":
        return frozenset(ORDER)
    excluded = set(re.findall(r"`([\w.]+)`", rule.split("except", 1)[-1]))
    return frozenset(u for u in below if u not in excluded) | {unit}


def _unit(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "workers":
        return "workers"
    return parts[1] if len(parts) > 1 else "sessionsvc"


def _modules() -> list[Path]:
    return sorted((ROOT / "sessionsvc").rglob("*.py")) + sorted((ROOT / "workers").rglob("*.py"))


def _name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    name = _name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                found.add(".".join(base + ([node.module] if node.module else [])))
            elif node.module:
                found.add(node.module)
    return found


def test_every_unit_of_the_package_has_a_row() -> None:
    units = {_unit(_name(p)) for p in _modules()} - {"sessionsvc", "__main__"}
    assert units <= set(TABLE), f"not in the Layers table: {sorted(units - set(TABLE))}"


@pytest.mark.parametrize("path", _modules(), ids=_name)
def test_imports_stay_within_the_units_row(path: Path) -> None:
    unit = _unit(_name(path))
    if unit in ("sessionsvc", "__main__"):  # the package's re-exports and ``python -m``
        return
    ours = {m for m in _imports(path) if m.split(".")[0] in ("sessionsvc", "workers")}
    wrong = {m for m in ours if _unit(m) not in _allowed(unit) and m != "sessionsvc"}
    assert not wrong, f"{_name(path)} ({unit}) imports {sorted(wrong)}"


@pytest.mark.parametrize("path", _modules(), ids=_name)
def test_pure_modules_import_no_io(path: Path) -> None:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    if "(pure" not in doc.split("\n\n", 1)[0]:
        return
    io = {m for m in _imports(path) if m.split(".")[0] in IO_MODULES}
    assert not io, f"{_name(path)} says it is pure but imports {sorted(io)}"
