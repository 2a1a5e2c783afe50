"""workers: the revocation worker process (consumes revoke events, applies them, feeds the log).

The worker itself is built in issue 4; this package is its home.
"""
