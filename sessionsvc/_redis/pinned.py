"""Commands on one connection to the primary serving one key's slot of a Redis Cluster.

redis-py's cluster pipeline routes each command by its own keys, and a keyless one (``WAIT``,
``INFO``) to its default node: an arbitrary primary. The ``replica`` durability level needs the
opposite (``sessionsvc._redis.durability``): a revocation's write, the barrier and ``WAIT`` on
*one* connection to the primary that took the write, since ``WAIT`` confirms that connection's
own writes; the ``aof`` check needs ``INFO persistence`` of that primary. ``pinned`` and
``apinned`` send ``commands`` in one write on a connection of the pool of the node serving
``key``'s slot (``SlotPool`` / ``AsyncSlotPool``: the client's slot map) and read a reply each.

Invariants:

- Replies are the connection's (no response callbacks); an error reply stands in place as its
  ``ResponseError`` (the connection stays in step: it was read in full). A connection failure,
  a timeout or any interruption between the write and the last read raises and disconnects the
  connection, so no unread reply is left for its next user.
- Neither a ``MOVED`` nor an ``ASK`` reply is followed: a command sent elsewhere would leave the
  ``WAIT`` counting another write (or none). Both stand in place; the caller raises it and
  re-reads the slot map (``slotpool.must_resolve``), and the operation fails as a Redis outage
  would (``StoreUnavailable``; the worker retries). A slot is in migration only while an
  operator moves it.
- The connection goes back to the pool it came from, whatever happened.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.exceptions import ResponseError

from sessionsvc._redis.clients import AsyncClient, SyncClient
from sessionsvc._redis.slotpool import AsyncSlotPool, SlotPool

__all__ = ["apinned", "pinned"]


def pinned(client: SyncClient, key: str, commands: Sequence[Sequence[Any]]) -> list[Any]:
    """``commands`` on one connection to the node serving ``key``'s slot: a reply each."""
    pool = SlotPool(client, key)
    conn = pool.get()
    try:
        conn.send_packed_command(conn.pack_commands(commands))
        replies: list[Any] = []
        for _ in commands:
            try:
                replies.append(conn.read_response())
            except ResponseError as exc:
                replies.append(exc)
    except BaseException:
        conn.disconnect()
        raise
    finally:
        pool.put(conn)
    return replies


async def apinned(client: AsyncClient, key: str, commands: Sequence[Sequence[Any]]) -> list[Any]:
    """``pinned`` for ``redis.asyncio`` cluster clients."""
    pool = AsyncSlotPool(client, key)
    conn = await pool.get()
    try:
        await conn.send_packed_command(conn.pack_commands(commands))
        replies: list[Any] = []
        for _ in commands:
            try:
                replies.append(await conn.read_response())
            except ResponseError as exc:
                replies.append(exc)
    except BaseException:
        await conn.disconnect(nowait=True)
        raise
    finally:
        await pool.put(conn)
    return replies
