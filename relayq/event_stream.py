"""A queue's event stream as the HTTP clients read it (GET /api/events?queue=, Server-Sent
Events), without I/O, so that `relayq.Client` (urllib3) and `relayq.aio.Client` (httpx) share
every rule and differ only in how bytes arrive:

- `EventStreamParser` turns the stream's bytes into log `Event`s and remembers the last event
  id seen, which a reconnect sends as `Last-Event-ID` (the stream resumes with no gap and no
  repeat while the log holds it, else with a `reset` event).
- `until_finished_on_events` is `Client.wait`: an operation (relayq/steps.py) that reads the
  job, then waits for an event that names it (the step `NextEvent`), reading it again on each
  such event and, as a backstop for a queue whose log is off, every WAIT_RECHECK_S.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Generator
from typing import Any, NamedTuple
from urllib.parse import quote

from .events import RESET, Event
from .job import Job
from .rfc3339 import parse_ms
from .waiting import FINAL_STATES, time_left

# `wait` reads the job again at least this often even when no event names it: a backstop for a
# queue whose event log is off (event_log_max=0)
WAIT_RECHECK_S = 5.0
STREAM_READ_S = 20.0  # a stream sends at least a keepalive every 15 s: reconnect after this
MAX_RECONNECT_S = 5.0  # the longest pause before an event stream's reconnect
READ_CHUNK = 1 << 16  # bytes read from an event stream at most at once


def stream_path(queue: str) -> str:
    return f"/api/events?queue={quote(queue)}"


def stream_headers(last_id: str | None) -> dict[str, str]:
    """The headers of a (re)connect: resume after `last_id` when one was seen."""
    headers = {"Accept": "text/event-stream"}
    if last_id is not None:
        headers["Last-Event-ID"] = last_id
    return headers


class EventStreamParser:
    """Bytes of an event stream in, log events out. `last_id`: the id of the last message
    that carried one (None until then; `since` to start with)."""

    def __init__(self, since: str | None) -> None:
        self.last_id = since
        self._buffer = b""

    def restart(self) -> None:
        """A new connection: a message cut off by the old one is dropped (it comes again)."""
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[Event]:
        self._buffer += chunk.replace(b"\r\n", b"\n")
        events = []
        while (end := self._buffer.find(b"\n\n")) >= 0:
            raw, self._buffer = self._buffer[:end], self._buffer[end + 2:]
            event = self._parse(raw.decode())
            if event is not None:
                events.append(event)
        return events

    def _parse(self, raw: str) -> Event | None:
        name, data, event_id = "message", "", None
        for line in raw.split("\n"):
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                data += value
            elif field == "id":
                event_id = value
        if event_id is not None:  # the stream's first message is only its start position
            self.last_id = event_id
        if name not in ("job", RESET) or not data or event_id is None:
            return None  # stats, keepalives, retry hints
        view = json.loads(data)
        return Event(event_id, view["queue"], view["state"], view["ids"],
                     parse_ms(view["at"], "an event's time"), view.get("progress"),
                     view.get("progress_info"))


class NextEvent(NamedTuple):
    """A step: the next event of the stream the caller opened (sent back None when none came
    within `seconds`)."""

    seconds: float


def until_finished_on_events(get: Callable[[], Generator[Any, Any, Job[Any]]], job_id: str,
                             timeout: float,
                             on_change: Callable[[Job[Any]], None] | None
                             ) -> Generator[Any, Any, Job[Any]]:
    """The job once it is finished; TimeoutError when it is not within `timeout` seconds.
    The caller opens the job's queue's stream before running this (whatever happens after the
    first read is then in it) and does each `NextEvent` step from it. `on_change(job)` hears of
    each state and progress seen."""
    deadline = time.monotonic() + timeout
    seen: tuple[str, float | None] | None = None
    recheck_at = 0.0
    while True:
        if time.monotonic() >= recheck_at:
            job = yield from get()
            recheck_at = time.monotonic() + WAIT_RECHECK_S
            if on_change is not None and (job.state, job.progress) != seen:
                seen = (job.state, job.progress)
                on_change(job)
            if job.state in FINAL_STATES:
                return job
        left = time_left(deadline, job, timeout)
        event = yield NextEvent(max(0.0, min(left, recheck_at - time.monotonic())))
        if event is not None and (job_id in event.job_ids or event.type == RESET):
            recheck_at = 0.0
