"""`POST /api/session` and `DELETE /api/session`: the dashboard's way to authenticate its event
stream, since EventSource cannot send an Authorization header (web/README.md).

POST, with a Bearer key holding `jobs:read`, opens a session (relayq.auth: Redis keeps only the
token's SHA-256, for `SESSION_TTL_S`) and sets its token as an HttpOnly, SameSite=Strict cookie
scoped to `/api/events`, the one route that accepts it (`@session_cookie`). The stream checks the
session and its key when it opens and the key while it runs, so a revoked key stops the stream.
The key itself never goes into a cookie or a URL. DELETE drops the cookie (the browser does not
send it here, so the server's record simply expires); the dashboard opens a new session before
each connection anyway.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from .security import SESSION_COOKIE, current_key, public, requires
from .services import services

bp = Blueprint("session", __name__, url_prefix="/api")
SESSION_TTL_S = 600
COOKIE_PATH = "/api/events"


@bp.post("/session")
@requires("jobs:read")
def open_session() -> Response:
    response = Response(status=204)
    key = current_key()
    if key is not None:  # None with --auth off: there is nothing to stand in for
        token = services().keys.open_session(key, SESSION_TTL_S)
        response.set_cookie(SESSION_COOKIE, token, max_age=SESSION_TTL_S, path=COOKIE_PATH,
                            secure=request.is_secure, httponly=True, samesite="Strict")
    return response


@bp.delete("/session")
@public
def close_session() -> Response:
    response = Response(status=204)
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, secure=request.is_secure,
                           httponly=True, samesite="Strict")
    return response
