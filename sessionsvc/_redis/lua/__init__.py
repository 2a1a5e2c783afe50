"""The Lua sources of sessionsvc (``.lua`` files), read at import by the script registry.

Every script that revokes embeds ``apply.lua`` (the one apply path); the session scripts add
``session.lua``. A script's text is its generated prelude (``sessionsvc._redis.scripts``: the
names of its KEYS and ARGV) followed by the concatenation of its parts, so the apply logic
exists once in the source tree and the same text runs in every script that embeds it. No file
here indexes ``KEYS`` or ``ARGV`` by number: they use the prelude's ``K`` and ``A`` (and
``K_MORE``/``A_MORE`` where trailing keys or arguments start).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["source"]

_HERE = Path(__file__).parent


def source(*names: str) -> str:
    """The concatenated text of the named ``.lua`` files of this folder (without extension)."""
    return "\n".join((_HERE / f"{name}.lua").read_text(encoding="utf-8") for name in names)
