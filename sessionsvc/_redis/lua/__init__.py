"""The Lua sources of sessionsvc, joined into scripts once at import.

Every script that revokes starts with ``apply.lua`` (the one apply path); the session scripts
add ``session.lua``. A script's text is the concatenation of its parts, so the apply logic
exists once in the source tree and the same text runs in every script that embeds it.

``rev_prelude(names)`` declares the ``{rev}`` keys a script touches, in order, as the Lua table
``K`` (what ``apply_revocation`` takes) and ``U``, the number of them: the script's own keys
follow at ``KEYS[U + 1]``. The Python side builds KEYS from the same ``names`` tuple, so the
two cannot drift; every key a script touches is declared (Redis Cluster's rule).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["rev_prelude", "source"]

_HERE = Path(__file__).parent


def source(*names: str) -> str:
    """The concatenated text of the named ``.lua`` files of this folder (without extension)."""
    return "\n".join((_HERE / f"{name}.lua").read_text(encoding="utf-8") for name in names)


def rev_prelude(names: tuple[str, ...]) -> str:
    """``local K = {sid = KEYS[1], …}`` and ``local U = n`` for the ``{rev}`` key ``names``."""
    fields = ", ".join(f"{n.replace(':', '_')} = KEYS[{i}]" for i, n in enumerate(names, 1))
    return f"local K = {{{fields}}}\nlocal U = {len(names)}\n"
