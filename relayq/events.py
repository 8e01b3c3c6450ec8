"""The event log of a queue, as readers see it: `Event`, positions, and paged reads.

Every transition script appends to its queue's log, relayq:{q}:log (a Redis Stream, written by
lua/lib/events.lua in the same atomic call as the change): one entry per call and new state,
``s`` (the state, or `progress`, `cancel_requested`), ``ids`` (local job ids, comma-separated)
and, for progress, ``p`` (fraction) and ``i`` (info JSON). An entry's stream id
(``<ms>-<seq>``) is its position: a reader resumes after the last position it saw.

The log is trimmed from its oldest end (near the queue's `event_log_max`). A read from a position
the log no longer holds (entries after it may have been trimmed) starts with a `reset` event
whose id is the position to go on from: the reader missed events and should reload what it
shows. "No longer holds" is decided conservatively: a position older than the oldest entry of a
log that has been trimmed is a reset, even if nothing after it was lost.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

from .connection import RedisClient, redis_errors
from .errors import InvalidEventId
from .keys import QueueKeys
from .limits import EVENTS_PAGE
from .rfc3339 import format_ms

EVENT_ID = re.compile(r"([0-9]{1,20})-([0-9]{1,20})")
START = "0-0"  # the position before every entry
RESET = "reset"  # the type of the event that says events were lost


def check_event_id(value: object) -> str:
    """`value` if it is a log position (`<ms>-<seq>`, or a bare `<ms>`, meaning `<ms>-0`),
    normalised to `<ms>-<seq>`; InvalidEventId otherwise."""
    if isinstance(value, str):
        if value.isdigit() and len(value) <= 20:
            return f"{int(value)}-0"
        m = EVENT_ID.fullmatch(value)
        if m and int(m[1]) < 2**64 and int(m[2]) < 2**64:
            return f"{int(m[1])}-{int(m[2])}"
    raise InvalidEventId(f"invalid event id {value!r}: expected <ms>-<seq>, as events carry")


def _order(event_id: str) -> tuple[int, int]:
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq or 0)


class Event(NamedTuple):
    """One entry of a queue's log. `type` is the jobs' new state (ready, scheduled, running,
    succeeded, dead, cancelled, deleted), or `progress`, `cancel_requested`, or `reset` (events
    were lost before this one: reload). `job_ids` are public job ids. `at_ms`: when (Redis
    clock)."""

    id: str
    queue: str
    type: str
    job_ids: list[str]
    at_ms: int
    progress: float | None = None
    progress_info: Any = None

    def to_dict(self) -> dict[str, Any]:
        view: dict[str, Any] = {"id": self.id, "queue": self.queue, "state": self.type,
                                "ids": self.job_ids, "at": format_ms(self.at_ms)}
        if self.type == "progress":
            view["progress"] = self.progress
            view["progress_info"] = self.progress_info
        return view

    @classmethod
    def from_entry(cls, queue: str, entry_id: str, fields: dict[str, str]) -> Event:
        ids = fields.get("ids", "")
        info = fields.get("i")
        progress = fields.get("p")
        return cls(entry_id, queue, fields.get("s", ""),
                   [f"{queue}.{local}" for local in ids.split(",") if local],
                   _order(entry_id)[0], float(progress) if progress else None,
                   json.loads(info) if info else None)


def _reset(queue: str, position: str) -> Event:
    return Event(position, queue, RESET, [], _order(position)[0])


def last_position(redis: RedisClient, keys: QueueKeys) -> str:
    """The position of the newest entry (START when the log is empty or absent): reading after
    it gives what comes next."""
    with redis_errors():
        newest = redis.xrevrange(keys.log, count=1)
    return newest[0][0] if newest else START


def read_after(redis: RedisClient, keys: QueueKeys, queue: str, after: str,
               limit: int = EVENTS_PAGE) -> list[Event]:
    """Up to `limit` events after position `after`, oldest first. When the log no longer holds
    `after`, the first is a `reset` event whose id is the position just before the oldest entry
    held, followed by the oldest entries."""
    with redis_errors():
        pipe = redis.pipeline(transaction=False)
        pipe.xrange(keys.log, min="(" + after, count=limit)
        # read after the range: a trim in between makes a needless reset, never a gap
        pipe.xinfo_stream(keys.log)
        entries, info = pipe.execute(raise_on_error=False)
        if isinstance(entries, Exception):
            raise entries
    # An error here is XINFO's "no such key": a log never written, nothing lost.
    if isinstance(info, dict) and info["entries-added"] > info["length"] and info["first-entry"]:
        first = info["first-entry"][0]
        ms, seq = _order(first)
        before = f"{ms}-{seq - 1}" if seq else f"{ms - 1}-{2**64 - 1}"
        # Trimmed past `after` (no id fits between `before` and the oldest entry, so from
        # `before` on nothing is lost): say so, and go on from the oldest entry held.
        if _order(after) < _order(before):
            with redis_errors():
                entries = redis.xrange(keys.log, min=first, count=max(1, limit - 1))
            return [_reset(queue, before)] + [Event.from_entry(queue, entry_id, fields)
                                              for entry_id, fields in entries]
    return [Event.from_entry(queue, entry_id, fields) for entry_id, fields in entries]


def follow(redis: RedisClient, keys: QueueKeys, queue: str, since: str | None = None,
           wait_s: float | None = None, block_ms: int = 1000) -> Iterator[Event]:
    """Events after `since` (None: from now), as they come, with a `reset` first when the log
    no longer holds `since`. Ends once no event came for `wait_s` seconds (None: never)."""
    position = last_position(redis, keys) if since is None else check_event_id(since)
    idle_since = time.monotonic()
    while True:
        events = read_after(redis, keys, queue, position)
        for event in events:
            position = event.id
            yield event
        if events:
            idle_since = time.monotonic()
            continue
        wait_ms = block_ms
        if wait_s is not None:
            left = wait_s - (time.monotonic() - idle_since)
            if left <= 0:
                return
            wait_ms = max(1, min(block_ms, int(left * 1000)))
        with redis_errors():
            redis.xread({keys.log: position}, count=1, block=wait_ms)
