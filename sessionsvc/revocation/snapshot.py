"""The feed's snapshot: the whole revocation state and the log position in one MULTI/EXEC, and
its union into the view (pure; a part of ``FeedCore``).

**Union, never forget**: every entry of a snapshot is applied (``RevocationView.apply``) to what
the view holds; nothing a validator has seen is dropped, whatever Redis now holds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from sessionsvc.encoding import as_text
from sessionsvc.revocation.log import RevKeys, parse_number
from sessionsvc.revocation.replies import mapping, raise_errors, scored_ids, stream_id
from sessionsvc.revocation.view import Revocation, RevocationView

__all__ = ["RANGES", "Snapshots"]

RANGES = 64


class Snapshots:
    """``FeedCore``'s snapshot commands and loading (what the core holds is declared here)."""

    view: RevocationView
    keys: RevKeys
    horizon: float
    listeners: list[Callable[[Revocation], None]]
    epoch: str | None
    last_id: str
    bootstraps: int
    from_replica: bool

    def _notify(self, revs: list[Revocation]) -> None:
        raise NotImplementedError

    def snapshot_bounds(self, now: float) -> list[float]:
        """Upper score bounds of the ranges session and token ids are read in: geometric from
        one minute to ``horizon`` ahead, so an id is kept at most ~16% longer than it needs."""
        ratio = (max(self.horizon, 120.0) / 60.0) ** (1 / (RANGES - 1))
        return [now + 60.0 * ratio**j for j in range(RANGES)]

    def snapshot_commands(self, now: float, epoch: str) -> list[tuple[Any, ...]]:
        """The commands of one MULTI/EXEC that reads the whole state and the log position
        atomically. Ids come without scores, by range (``snapshot_bounds``): a million of them
        cost a fraction of what member+score pairs or a Lua copy would."""
        k = self.keys
        cmds: list[tuple[Any, ...]] = [  # (a replica refuses writes: the worker's ticks set it)
            ("EXISTS", k.epoch) if self.from_replica else ("SET", k.epoch, epoch, "NX"),
            ("GET", k.epoch),
            ("GET", k.trimmed),
            ("XREVRANGE", k.log, "+", "-", "COUNT", 1),
        ]
        for key in (k.key("sid"), k.key("jti")):
            low = "-inf"
            for bound in self.snapshot_bounds(now):
                cmds.append(("ZRANGE", key, low, repr(bound), "BYSCORE"))
                low = f"({bound!r}"
            cmds.append(("ZRANGE", key, low, "+inf", "BYSCORE", "WITHSCORES"))
        cmds += [
            ("HGETALL", k.key("user")),
            ("ZRANGE", k.key("user:until"), 0, -1, "WITHSCORES"),
            ("HGETALL", k.key("all")),
            ("SMEMBERS", k.key("kid")),
        ]
        return cmds

    def load_snapshot(self, replies: Sequence[Any], now: float) -> int:
        """Union the replies of ``snapshot_commands(now, …)`` into the view; return how many
        entries were new (listeners hear each of them)."""
        raise_errors(replies)
        epoch, trimmed, newest = replies[1], replies[2], replies[3]
        bounds = self.snapshot_bounds(now)
        new: list[tuple[str, str]] = []  # only collected when someone listens
        count = 0
        at = 4
        for kind in ("session", "token"):
            for bound, members in zip(bounds, replies[at : at + RANGES], strict=True):
                added = self.view.add_ids(kind, [as_text(m) for m in members], bound)
                count += len(added)
                if self.listeners:
                    new += [(kind, value) for value in added]
            for value, until in scored_ids(replies[at + RANGES]):  # beyond the horizon: exact
                if self.view.apply(Revocation(kind, value, until=until)):
                    count += 1
                    new.append((kind, value))
            at += RANGES + 1
        users, user_until, glob, kids = replies[at : at + 4]
        untils = dict(scored_ids(user_until))
        entries = [
            Revocation(
                "user",
                as_text(sub),
                before=parse_number(as_text(before)),
                until=untils.get(as_text(sub), math.inf),
            )
            for sub, before in mapping(users)
        ]
        g = {as_text(name): as_text(value) for name, value in mapping(glob)}
        if "before" in g:
            entries.append(
                Revocation(
                    "all",
                    before=parse_number(g["before"]),
                    until=parse_number(g.get("until", "inf")),
                )
            )
        entries += [Revocation("key", as_text(kid)) for kid in kids]
        changed = [rev for rev in entries if self.view.apply(rev)]
        last = as_text(newest[0][0]) if newest else "0-0"
        if trimmed is not None and stream_id(trimmed) > stream_id(last):
            last = as_text(trimmed)  # the log was trimmed empty: resume after what was cut
        self.epoch, self.last_id = as_text(epoch), last
        self.bootstraps += 1
        if self.listeners:
            self._notify([Revocation(kind, value) for kind, value in new] + changed)  # type: ignore[arg-type]
        return count + len(changed)
