"""Web integrations: the framework-free web core (``web``) and the framework adapters.

``web`` holds every decision a web adapter needs (token extraction, the cookie policy, CSRF,
CORS, the endpoints' logic, the mapping of errors onto HTTP statuses), pure; an adapter only
converts its framework's request into a ``web.WebRequest``, runs the core's operations and
converts the ``web.WebResponse`` back. Adapters: ``sessionsvc.integrations.fastapi`` (FastAPI,
on ``sessionsvc.integrations.starlette``; extra ``sessionsvc[fastapi]``).

May import: everything in ``sessionsvc`` except ``cli``; a framework only in its own adapter.
"""
