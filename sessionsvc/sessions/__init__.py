"""Sessions in Redis: key layout, the session record, the pure ``SessionCore`` (rotation, reuse
detection, cutoffs) and the sync and asyncio services that run it.

May import: ``tokens``, ``revocation`` (pure parts), ``_redis``, ``sessionsvc.errors``,
``sessionsvc.config``.
"""
