"""`POST /api/session` and `DELETE /api/session`: the dashboard's way to authenticate its event
stream, since EventSource cannot send an Authorization header (web/README.md).

POST, with a Bearer key holding `jobs:read`, opens a session (relayq.auth: Redis keeps only the
token's SHA-256, for `SESSION_TTL_S`) and sets its token as an HttpOnly, SameSite=Strict cookie
scoped to `/api/events`, the one route that accepts it (`@session_cookie`), and once more scoped
to `/api/session`, so that the browser sends it to DELETE, which ends the session in Redis at once
and drops both cookies. No other route ever receives the token. The stream checks the session
and its key when it opens and the key while it runs, so a revoked key stops the stream. The key
itself never goes into a cookie or a URL. The cookies are `Secure` when the request came over
HTTPS (behind a TLS-terminating proxy, as its X-Forwarded-Proto says once the server is told to
trust it: `relayq-server --behind-proxy`).
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from .security import SESSION_COOKIE, current_key, public, requires
from .services import services

bp = Blueprint("session", __name__, url_prefix="/api")
SESSION_TTL_S = 600
# The routes the cookie goes to: the stream that accepts it, and this one, to end it.
COOKIE_PATHS = ("/api/events", "/api/session")


@bp.post("/session")
@requires("jobs:read")
def open_session() -> Response:
    response = Response(status=204)
    key = current_key()
    if key is not None:  # None with --auth off: there is nothing to stand in for
        token = services().api_keys.open_session(key, SESSION_TTL_S)
        for path in COOKIE_PATHS:
            response.set_cookie(SESSION_COOKIE, token, max_age=SESSION_TTL_S, path=path,
                                secure=request.is_secure, httponly=True, samesite="Strict")
    return response


@bp.delete("/session")
@public  # knowing the token is the proof: it only ends that session
def close_session() -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token is not None:
        services().api_keys.close_session(token)
    response = Response(status=204)
    for path in COOKIE_PATHS:
        response.delete_cookie(SESSION_COOKIE, path=path, secure=request.is_secure,
                               httponly=True, samesite="Strict")
    return response
