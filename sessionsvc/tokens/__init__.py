"""Tokens (pure, no I/O): key rings and their policy, issuing, verification, the claims layer.

May import: ``sessionsvc.errors``, ``sessionsvc.config``, ``sessionsvc.encoding`` and its own
modules. Never Redis, never the revocation feeds.
"""
