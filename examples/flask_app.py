"""The smallest Flask app protected by sessionsvc: ``flask --app examples.flask_app run``
(settings from ``SESSIONSVC_*`` / ``SESSIONSVC_WEB_*``; see docs/web.md, "Quick start (Flask)")."""

from flask import Flask, g

from sessionsvc.integrations.flask import Auth

USERS = {"alice": "alice-demo-password"}  # a demo: your user store checks password hashes
auth = Auth(authenticate_user=lambda user, password: user if USERS.get(user) == password else None)
app = Flask(__name__)
auth.init_app(app)  # /auth/login, /auth/refresh, /auth/logout, ...; the feed starts on use


@app.get("/api/me")
@auth.required()
def me() -> dict[str, str]:
    return {"sub": g.principal.sub, "session": g.principal.sid}
