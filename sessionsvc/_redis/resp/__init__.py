"""A sans-I/O RESP2/RESP3 reply parser that keeps a bounded amount of each reply.

``ReplyParser`` turns bytes into replies shaped like ``hiredis.Reader``'s with decoding off: bulk
and simple strings as ``bytes``, integers, doubles as ``float``, booleans, big numbers as
``bytes``, verbatim strings as their text (the ``txt:`` format dropped), nulls (``$-1``, ``*-1``,
``_``) as ``None``, arrays, sets and pushes as lists (a push is a ``Push``), maps as ``dict``, an
error reply as its exception object (``error_factory``, by default redis-py's
``BaseParser.parse_error``: ``NoScriptError`` for ``NOSCRIPT``…). Attributes (``|``) are skipped.
Unlike hiredis it bounds what it keeps:

- a bulk string longer than ``max_bulk`` becomes an ``Oversized``: its first ``max_bulk`` bytes,
  its full length and the SHA-256 of the full value (streamed through as it arrives);
- an aggregate keeps bulk-string children only while its kept bulk bytes (an ``Oversized``
  counts ``max_bulk``) stay ≤ ``max_array_bytes`` and its kept bulk children ≤
  ``max_array_items``; from the first bulk child that does not fit, every later bulk child is
  counted and hashed, not kept. Other children (integers, nulls, nested aggregates…) are always
  kept. An aggregate that dropped a child or holds an ``Oversized`` comes back as ``Truncated``
  (a list) or ``TruncatedMap`` (a dict; a pair is kept only if both key and value were).

The digest of a truncated aggregate is described in ``sessionsvc._redis.resp.digest``.

Invariants:

- Pure: no I/O, no clock, no threads. ``feed(data)`` appends bytes; ``next_reply()`` returns one
  reply or ``NEED_DATA``; nothing else moves data. One user at a time.
- Exact boundaries: ``next_reply()`` consumes exactly one reply's bytes (plus any attributes
  before it); what follows stays buffered, and between replies ``unconsumed()`` gives it back.
  The result does not depend on how the bytes were split into ``feed`` calls.
- Bounded memory: consumed bytes are released; a bulk body is hashed and dropped as it arrives,
  so the parser holds the kept values, one incomplete line (≤ ``max_line``, else a protocol
  error), at most ``max_bulk`` bytes of the bulk being read, 64 KiB of pending digest input and
  whatever was fed but not parsed yet.
- A protocol error raises ``InvalidResponse`` and poisons the parser: every later call raises
  again (the stream position is lost; the connection must go).

Modules: ``replies`` (the reply types and markers), ``parser`` (the state machine of lines,
scalars and aggregates), ``bulk`` (streaming bulk strings within the bounds), ``digest`` (the
SHA-256 of what a truncated aggregate held).
"""

from sessionsvc._redis.resp.digest import resp_digest
from sessionsvc._redis.resp.parser import ReplyParser
from sessionsvc._redis.resp.replies import NEED_DATA, Oversized, Push, Truncated, TruncatedMap

__all__ = [
    "NEED_DATA",
    "Oversized",
    "Push",
    "ReplyParser",
    "Truncated",
    "TruncatedMap",
    "resp_digest",
]
