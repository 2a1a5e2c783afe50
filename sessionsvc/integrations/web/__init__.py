"""The framework-free web core (pure): what every web adapter shares.

``http`` (the core's request, response and ``Problem``), ``body`` (a body as fields),
``config`` (``WebSettings``, ``SESSIONSVC_WEB_*``), ``transport`` (bearer or cookie; no token
in a URL), ``cookies`` (the cookie policy), ``csrf`` (Fetch Metadata, Origin, the signed
double-submit token), ``cors`` (the allow-list), ``principal`` (who, and what a route
requires), ``statuses`` (errors → statuses), ``auth`` (``AuthCore``: the policies together,
authenticating a request), ``login`` and ``endpoints`` (the auth endpoints as ops the adapters
run), ``throttle`` (login attempts), ``live`` (which open connections a revocation ends),
``logfilter`` (no token in access logs), ``assembly`` (the parts an adapter wires).

May import: everything in ``sessionsvc`` except ``cli`` and ``integrations``' adapters; no web
framework.
"""
