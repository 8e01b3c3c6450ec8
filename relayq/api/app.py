"""The Flask app factory: `create_app(config)` registers every blueprint of `BLUEPRINTS`, the
authentication hook, request logging and the two error handlers that render every error as
``{"error": {"code": "...", "message": "..."}}``, with the status of its code (relayq.api.statuses).

To add a resource, write a blueprint whose views carry `@public` or `@requires(scope)`
(relayq.api.security) and add it to `BLUEPRINTS`: one line.
Views reach the Redis client, the key store and queues through `relayq.api.services.services()`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Blueprint, Flask, g, jsonify, request
from flask.wrappers import Response
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from ..errors import RelayqError
from ..logs import log_event
from . import (
    api_keys,
    dashboard,
    dead,
    events,
    flows,
    groups,
    health,
    jobs,
    openapi,
    queues,
    schedules,
    session,
    work,
    workers,
)
from .headers import security_headers
from .native import add_rules
from .security import authenticate, current_key
from .services import ServerConfig, Services
from .statuses import headers_of, status_of

log = logging.getLogger("relayq.server")

BLUEPRINTS: list[Blueprint] = [
    health.bp,
    jobs.bp,
    flows.bp,
    work.bp,
    queues.bp,
    groups.bp,
    schedules.bp,
    dead.bp,
    workers.bp,
    api_keys.bp,
    events.bp,
    session.bp,
    openapi.bp,
    dashboard.bp,
]

# Werkzeug's HTTP errors (routing, body size, ...) -> our stable codes.
HTTP_CODES = {400: "invalid_argument", 404: "not_found", 405: "method_not_allowed",
              413: "payload_too_large"}


def create_app(config: ServerConfig | None = None) -> Flask:
    config = config or ServerConfig()
    app = Flask("relayq.api", static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = config.max_request_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["relayq"] = Services(config)
    if config.behind_proxy:
        # The client's address (auth throttling, logs) and scheme (the session cookie's Secure)
        # as the last `behind_proxy` proxies report them; never from a header nobody vouches for.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=config.behind_proxy, x_proto=config.behind_proxy)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    add_rules(app)  # the routes the bridge serves on its event loop (relayq.api.native)
    app.before_request(_start_timer)
    app.before_request(authenticate)
    app.after_request(_log_request)
    app.after_request(security_headers)
    app.register_error_handler(RelayqError, _relayq_error)
    app.register_error_handler(Exception, _other_error)
    return app


def error_response(code: str, message: str, status: int,
                   headers: dict[str, str] | None = None) -> tuple[Response, int, dict[str, str]]:
    return jsonify({"error": {"code": code, "message": message}}), status, headers or {}


def _relayq_error(e: RelayqError) -> Any:
    status = status_of(e)
    if status >= 500:  # one line, no traceback: Redis away or busy is a state, not a bug
        log_event(log, logging.WARNING, "http.unavailable", path=request.path, code=e.code,
                  error=e.message)
    return error_response(e.code, e.message, status, headers_of(e))


def _other_error(e: Exception) -> Any:
    if isinstance(e, HTTPException):
        status = e.code or 500
        code = HTTP_CODES.get(status, (e.name or "error").lower().replace(" ", "_"))
        headers = {k: v for k, v in e.get_headers() if k == "Allow"}
        messages = {
            404: f"no route {request.path}",
            405: f"{request.method} is not allowed on {request.path}",
            413: f"request body is over the limit of {request.max_content_length} bytes",
        }
        return error_response(code, messages.get(status, e.description or code), status,
                              headers)
    log.exception("unexpected error on %s %s", request.method, request.path)
    return error_response("internal_error", "internal server error", 500)


def _start_timer() -> None:
    g.started = time.perf_counter()


def _log_request(response: Response) -> Response:
    """One line per request: method, path, status, time, and the key's id (never the key)."""
    key = current_key()
    log_event(log, logging.INFO, "http.request", method=request.method, path=request.path,
              status=response.status_code,
              ms=round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 1),
              key=key.id if key else "-")
    return response
