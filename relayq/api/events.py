"""`GET /api/events`: a Server-Sent Events stream of `stats` snapshots (about every second) and
`job` state changes (``{"queue", "state", "ids"}``), optionally for one queue (`?queue=`).
The stream is fed by the process-wide event hub (relayq.api.event_hub): one Redis subscription
per server, however many clients.

Besides the Bearer header, the stream accepts the dashboard's session cookie (relayq.api.session).
It checks its key again every `KEY_CHECK_S` while it runs and ends once the key is revoked."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, request

from ..auth import ApiKey, KeyStore
from ..errors import RelayqError, Unauthorized
from ..keys import check_queue_name
from .body import check_query
from .event_hub import END
from .security import current_key, requires, session_cookie
from .services import services

bp = Blueprint("events", __name__, url_prefix="/api")
KEEPALIVE_S = 15.0
KEY_CHECK_S = 5.0


def _revoked(key_store: KeyStore, key: ApiKey) -> bool:
    """Whether `key` has been revoked (when Redis cannot say, the hub's own reconnects deal
    with that: the stream goes on)."""
    try:
        key_store.get(key.id)
    except Unauthorized:
        return True
    except RelayqError:
        pass
    return False


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


@bp.get("/events")
@requires("jobs:read")
@session_cookie
def stream() -> Response:
    check_query(("queue",))
    queue = request.args.get("queue")
    if queue is not None:
        check_queue_name(queue)
    hub = services().event_hub
    key, key_store = current_key(), services().api_keys
    first = hub.stats_event(queue)
    sub = hub.subscribe(queue)  # ServerBusy here answers 503 before the stream starts

    def events() -> Iterator[str]:
        yield "retry: 2000\n\n" + sse("stats", first)
        next_check = time.monotonic() + KEY_CHECK_S
        while True:
            if key is not None and time.monotonic() >= next_check:
                next_check = time.monotonic() + KEY_CHECK_S
                if _revoked(key_store, key):
                    return
            item = sub.next(KEEPALIVE_S)
            if item is None:
                yield ": keepalive\n\n"
            elif item is END:  # too slow to keep up, or the server stops: the client reconnects
                return
            else:
                yield sse(*item)

    response = Response(events(), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    response.call_on_close(lambda: hub.unsubscribe(sub))  # runs however the stream ends
    return response
