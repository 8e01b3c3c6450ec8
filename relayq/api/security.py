"""Who may call what: every view names the scope it needs with `@requires(scope)`, or is
marked `@public`. The app's `authenticate` hook (run before every view) reads
``Authorization: Bearer <key>``, checks the key in the key store and its scope, and keeps the
key in `g.api_key` (None when auth is off). A view with neither mark needs `admin`: forgetting
the mark fails closed, never open. Failed authentications are throttled per client address
(relayq.throttle): 429 with Retry-After.

A view also marked `@session_cookie` (only the event stream: EventSource cannot send a header)
accepts, when no Authorization header is sent, the session cookie of `POST /api/session`
(relayq.api.session) in its place: it stands for the key that opened it, scopes and all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app, g, request

from ..auth import ADMIN, ApiKey
from ..errors import Forbidden, Unauthorized
from ..logs import log_event
from ..throttle import AuthThrottle
from .services import services

log = logging.getLogger("relayq.server")
View = TypeVar("View", bound=Callable[..., Any])
PUBLIC = "public"
SESSION_COOKIE = "relayq_session"


def requires(scope: str) -> Callable[[View], View]:
    def mark(view: View) -> View:
        view.required_scope = scope  # type: ignore[attr-defined]
        return view

    return mark


def public(view: View) -> View:
    view.required_scope = PUBLIC  # type: ignore[attr-defined]
    return view


def session_cookie(view: View) -> View:
    view.accepts_session = True  # type: ignore[attr-defined]
    return view


def bearer_key() -> str:
    """The key of the request's one `Authorization: Bearer` header; Unauthorized otherwise."""
    return bearer_of(request.headers.getlist("Authorization"))


def bearer_of(values: list[str]) -> str:
    """The key of one `Authorization: Bearer` header, given the values of every such header."""
    if not values:
        raise Unauthorized("missing Authorization header: send 'Authorization: Bearer <key>'")
    if len(values) > 1:
        raise Unauthorized("more than one Authorization header")
    scheme, _, key = values[0].strip().partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized("the Authorization header must read 'Bearer <key>'")
    return key.strip()


def authenticate() -> None:
    """before_request hook: 401 without a valid key, 403 without the view's scope, 429 while
    the client's address is throttled for failing too often."""
    g.api_key = None
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    if view is None:  # no such route: the routing error answers (404 or 405)
        return
    scope = getattr(view, "required_scope", ADMIN)
    if scope == PUBLIC or not services().config.auth:
        return
    s = services()
    address = request.remote_addr or "-"
    s.auth_throttle.check(address)  # 429 before the key is even looked at
    try:
        if getattr(view, "accepts_session", False) and "Authorization" not in request.headers \
                and SESSION_COOKIE in request.cookies:
            key = s.api_keys.authenticate_session(request.cookies[SESSION_COOKIE])
        else:
            key = s.api_keys.authenticate(bearer_key())
    except Unauthorized:
        refused(s.auth_throttle, address)
        raise
    g.api_key = allowed(key, scope)


def refused(throttle: AuthThrottle, address: str) -> None:
    """Counts a failed authentication from `address` (logged when it starts the throttle)."""
    if throttle.failed(address):
        log_event(log, logging.WARNING, "auth.throttled", address=address)


def allowed(key: ApiKey, scope: str) -> ApiKey:
    """`key` if it holds `scope`; Forbidden otherwise."""
    if not key.allows(scope):
        raise Forbidden(f"this API key lacks the scope {scope!r}")
    return key


def current_key() -> ApiKey | None:
    """The key of the current request (None when auth is off or the view is public)."""
    return g.get("api_key")
