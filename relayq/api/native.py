"""Routes served on the event loop: the hot routes (enqueue, an HTTP worker's settle and ack)
run in the RSGI bridge itself, as coroutines on relayq.aio's queue operations
(`QueueOps` through redis.asyncio) with an asyncio group commit (relayq.api.async_commit),
without a thread hop and without Flask. Measured (docs/benchmarks.md): at 8 connections
py-spy put 38% of a request's GIL time in the bridge's hand-off to a thread and 24% in Flask;
served here, a single enqueue costs the server ~200 us of CPU instead of ~900 us. Batches stay
with Flask (jobs.enqueue_batch says why).

A route is written once, in its resource module, with `@post(rule, scope)`:

    @post("/queues/<queue>/jobs", "jobs:write")
    async def enqueue(req: Request, queue: str) -> Reply: ...

and behaves as a Flask view of the app would: the same authentication and scopes
(relayq.api.security: 401, 403, 429), body rules (relayq.api.body: 413 from the length alone,
--max-json-values, unknown fields), error JSON and statuses (relayq.api.statuses), security
headers (relayq.api.headers), metrics and one log line per request. Its rule is also added to
the Flask app's URL map (`add_rules`), so that the app knows every route (405 with Allow for
another method of the same path, the OpenAPI check); the bridge answers the rule's method
before Flask sees it, so the Flask view of the rule (`_served_by_bridge`) is never reached in
relayq-server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Collection
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from flask import Flask

from ..auth import ApiKey, parse_key
from ..errors import PayloadTooLarge, RelayqError, Unauthorized
from ..logs import log_event
from .async_commit import AsyncGroupCommit, GroupedAsyncQueue
from .body import check_fields, parse_json
from .bridge import JSON_HEADERS, Reply, error_reply
from .security import allowed, bearer_of, refused
from .services import QUEUE_CACHE_SIZE, Services
from .statuses import headers_of, status_of

log = logging.getLogger("relayq.server")
_ENCODER = json.JSONEncoder(separators=(",", ":"))
INLINE_JSON_BYTES = 64 * 1024  # larger bodies are parsed off the event loop (Request.json)
Handler = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class Route:
    method: str
    rule: str  # Flask's form, under /api
    scope: str
    handler: Handler
    pattern: re.Pattern[str]


ROUTES: list[Route] = []


def post(rule: str, scope: str) -> Callable[[Handler], Handler]:
    """Serves `handler` for POST /api`rule` (Flask's `<name>` parts: one path segment each,
    passed by name), for keys holding `scope`."""
    def mark(handler: Handler) -> Handler:
        pattern = re.compile("/api" + re.sub(r"<(\w+)>", r"(?P<\1>[^/]+)", rule))
        ROUTES.append(Route("POST", "/api" + rule, scope, handler, pattern))
        return handler

    return mark


def add_rules(app: Flask) -> None:
    """The native routes in the Flask app's URL map (see the module's docstring)."""
    for route in ROUTES:
        view = _view_of(route)
        app.add_url_rule(route.rule, endpoint=f"{route.handler.__module__.rsplit('.', 1)[-1]}."
                         f"{route.handler.__name__}", view_func=view, methods=[route.method])


def _view_of(route: Route) -> Callable[..., Any]:
    def _served_by_bridge(**_: Any) -> Any:
        raise RuntimeError(f"{route.method} {route.rule} is served by relayq.api.bridge")

    _served_by_bridge.required_scope = route.scope  # type: ignore[attr-defined]
    return _served_by_bridge


class Request:
    """What a native route sees of its request."""

    __slots__ = ("api", "headers", "body", "length", "address", "key")

    def __init__(self, api: NativeApi, headers: Any, body: bytes, length: int | None,
                 address: str) -> None:
        self.api = api
        self.headers = headers  # granian's: lower-case names, .get and .get_all
        self.body = body
        self.length = length
        self.address = address
        self.key: ApiKey | None = None

    async def json(self, allowed_fields: Collection[str], required: Collection[str] = ()
                   ) -> dict[str, Any]:
        """The body as a JSON object with only `allowed_fields` (relayq.api.body.json_body). A
        body over INLINE_JSON_BYTES is parsed on a thread of the ordinary lane, so that the
        event loop goes on serving the process's other requests meanwhile."""
        config = self.api.services.config
        if self.length is not None and self.length > config.max_request_bytes:
            raise PayloadTooLarge(f"request body is over the limit of {config.max_request_bytes}"
                                  " bytes")
        if len(self.body) > INLINE_JSON_BYTES and self.api.offload is not None:
            body = await asyncio.get_running_loop().run_in_executor(
                self.api.offload, parse_json, self.body, config.max_json_values)
        else:
            body = parse_json(self.body, config.max_json_values)
        return check_fields(body, allowed_fields, required)

    def queue(self, name: str) -> GroupedAsyncQueue:
        return self.api.queue(name)


class NativeApi:
    """The native routes of one worker process, beside its Flask app (`services` is the
    app's: settings, key store, throttle)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.commit = AsyncGroupCommit(services.config.redis_url)
        self.queue = lru_cache(maxsize=QUEUE_CACHE_SIZE)(self._make_queue)
        self.proxies = services.config.behind_proxy
        self.offload: Executor | None = None  # the bridge's threads for large bodies

    def _make_queue(self, name: str) -> GroupedAsyncQueue:
        return GroupedAsyncQueue(name, self.commit,
                                 max_payload_bytes=self.services.config.max_payload_bytes)

    async def aclose(self) -> None:
        await self.commit.aclose()

    @staticmethod
    def match(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        if method != "POST":
            return None
        for route in ROUTES:
            found = route.pattern.fullmatch(path)
            if found is not None:
                return route, found.groupdict()
        return None

    async def serve(self, route: Route, params: dict[str, str], scope: Any, body: bytes,
                    length: int | None) -> Reply:
        started = time.perf_counter()
        req = Request(self, scope.headers, body, length, self._address(scope))
        try:
            await self._authenticate(req, route.scope)
            view = await route.handler(req, **params)
            content, status = view if isinstance(view, tuple) else (view, 200)
            reply = status, JSON_HEADERS, _ENCODER.encode(content).encode()
        except RelayqError as e:
            status = status_of(e)
            if status >= 500:
                log_event(log, logging.WARNING, "http.unavailable", path=scope.path,
                          code=e.code, error=e.message)
            reply = error_reply(status, e.code, e.message, headers_of(e).items())
        except Exception:
            log.exception("unexpected error on %s %s", scope.method, scope.path)
            reply = error_reply(500, "internal_error", "internal server error")
        if log.isEnabledFor(logging.INFO):
            log_event(log, logging.INFO, "http.request", method=scope.method, path=scope.path,
                      status=reply[0], ms=round((time.perf_counter() - started) * 1000, 1),
                      key=req.key.id if req.key else "-")
        return reply

    def _address(self, scope: Any) -> str:
        """The client's address: the peer's, or as the last `behind_proxy` proxies report it
        in X-Forwarded-For (as werkzeug's ProxyFix does for the Flask routes)."""
        if self.proxies:
            forwarded = scope.headers.get_all("x-forwarded-for")
            values = [v.strip() for v in ",".join(forwarded).split(",")] if forwarded else []
            if len(values) >= self.proxies:
                return values[-self.proxies]
        return scope.client.rpartition(":")[0].strip("[]") or "-"

    async def _authenticate(self, req: Request, scope: str) -> None:
        """relayq.api.security.authenticate for a native route (no session cookie: those are
        for the event stream only)."""
        s = self.services
        if not s.config.auth:
            return
        s.auth_throttle.check(req.address)
        try:
            key_id, secret = parse_key(bearer_of(req.headers.get_all("authorization")))
            key = s.api_keys.verify(key_id, secret, await self.commit.lookup_key(key_id))
        except Unauthorized:
            refused(s.auth_throttle, req.address)
            raise
        req.key = allowed(key, scope)


