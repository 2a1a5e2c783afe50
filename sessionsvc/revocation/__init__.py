"""Revocation: the model and the in-memory view, inbound events and intakes, the log codec (pure);
the publisher and the validator feed (I/O shells over the pure parts).

May import: ``sessionsvc.errors``, ``sessionsvc.config``, ``sessionsvc.encoding``,
``sessionsvc._redis`` (shells only) and its own modules. Never ``sessions`` or ``tokens``.
"""
