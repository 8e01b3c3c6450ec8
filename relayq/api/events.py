"""`GET /api/events`: a Server-Sent Events stream of `stats` snapshots (about every second) and
`job` state changes (``{"queue", "state", "ids"}``), optionally for one queue (`?queue=`).

Without `queue`, job events come live from the process-wide event hub (relayq.api.event_hub: one
Redis subscription per server, however many clients), fire-and-forget.

With `queue`, job events come from the queue's durable event log (relayq/events.py), each with
its SSE `id` (the log position): the stream starts after `Last-Event-ID` (sent by EventSource on
its own when it reconnects; it wins over `since`) or `?since=`, else at the newest entry, and
goes on with no gap and no repeat while the log holds that position; when it does not, a `reset`
event (whose id is where the stream goes on from) says that events were lost. The hub's messages
only wake the stream (and so does each `stats` tick): what is sent is read from the log.
`progress` and `cancel_requested` come as `job` events too (state `progress` carries `progress`
and `progress_info`). A malformed position answers 400 invalid_event_id.

Besides the Bearer header, the stream accepts the dashboard's session cookie (relayq.api.session).
It checks its key again every `KEY_CHECK_S` while it runs and ends once the key is revoked."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, request

from ..auth import ApiKey, KeyStore
from ..errors import InvalidArgument, RelayqError, Unauthorized
from ..events import RESET, Event, check_event_id
from ..keys import check_queue_name
from ..limits import EVENTS_PAGE
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


def sse(event: str, data: Any, event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _logged(event: Event) -> str:
    return sse(RESET if event.type == RESET else "job", event.to_dict(), event.id)


def _start_position(queue: str | None) -> str | None:
    """Where a queue's stream starts: Last-Event-ID, else `since`, else None (the newest). The
    header wins: a browser resuming by itself sends its newest id, while the address it was
    opened with keeps the `since` of its first connection."""
    given = request.headers.get("Last-Event-ID") or None
    if given is None:
        given = request.args.get("since")
    if given is None:
        return None
    position = check_event_id(given)
    if queue is None:
        raise InvalidArgument("resuming (since, Last-Event-ID) needs ?queue=: only one queue's "
                              "events have positions")
    return position


@bp.get("/events")
@requires("jobs:read")
@session_cookie
def stream() -> Response:
    check_query(("queue", "since"))
    queue = request.args.get("queue")
    if queue is not None:
        check_queue_name(queue)
    position = _start_position(queue)
    hub = services().event_hub
    key, key_store = current_key(), services().api_keys
    log = services().queue(queue) if queue is not None else None
    if log is not None and position is None:
        position = log.last_event_id()  # fixed before the answer: nothing after it is missed
    first = hub.stats_event(queue)
    sub = hub.subscribe(queue)  # ServerBusy here answers 503 before the stream starts

    def events() -> Iterator[str]:
        nonlocal position
        # A queue's stream first says where it starts (an id alone dispatches no event, but
        # EventSource and Client.events resume from it should they reconnect before any job
        # event came).
        start = f"id: {position}\n\n" if log is not None else ""
        yield "retry: 2000\n\n" + start + sse("stats", first)
        next_check = time.monotonic() + KEY_CHECK_S
        while True:
            if key is not None and time.monotonic() >= next_check:
                next_check = time.monotonic() + KEY_CHECK_S
                if _revoked(key_store, key):
                    return
            if log is not None and position is not None:
                try:
                    logged = log.read_events(position, EVENTS_PAGE)
                except RelayqError:  # Redis is away: end, the client resumes where it was
                    return
                for event in logged:
                    position = event.id
                    yield _logged(event)
                if len(logged) == EVENTS_PAGE:
                    continue  # more to catch up on
            item = sub.next(KEEPALIVE_S)
            if item is None:
                yield ": keepalive\n\n"
            elif item is END:  # too slow to keep up, or the server stops: the client reconnects
                return
            elif log is None or item[0] != "job":  # a queue's job events come from its log
                yield sse(*item)
            else:  # the next read covers every wake-up already waiting: skip them
                while (more := sub.next(0)) is not None:
                    if more is END:
                        return
                    if more[0] != "job":
                        yield sse(*more)

    response = Response(events(), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    response.call_on_close(lambda: hub.unsubscribe(sub))  # runs however the stream ends
    return response
