"""workers: the revocation worker process.

It consumes revoke/logout events other systems publish (the ``<ns>:events`` stream with consumer
group ``workers``, and the ``<ns>:events`` pub/sub channel), applies them through the one apply
path, dead-letters bad input to ``<ns>:dlq``, prunes and trims, and serves health and metrics.
Run it with ``sessionsvc worker`` or ``python -m workers``.
"""
