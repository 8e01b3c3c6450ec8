"""`GET /api/events`: a Server-Sent Events stream of `stats` snapshots (about every second) and
`job` state changes (``{"queue", "state", "ids"}``), optionally for one queue (`?queue=`).
The stream is fed by the process-wide event hub (relayq.api.event_hub): one Redis subscription
per server, however many clients."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, request

from ..keys import check_queue_name
from .body import check_query
from .event_hub import END
from .security import requires
from .services import services

bp = Blueprint("events", __name__, url_prefix="/api")
KEEPALIVE_S = 15.0


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


@bp.get("/events")
@requires("jobs:read")
def stream() -> Response:
    check_query(("queue",))
    queue = request.args.get("queue")
    if queue is not None:
        check_queue_name(queue)
    hub = services().event_hub
    first = hub.stats_event(queue)
    sub = hub.subscribe(queue)  # ServerBusy here answers 503 before the stream starts

    def events() -> Iterator[str]:
        yield "retry: 2000\n\n" + sse("stats", first)
        while True:
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
