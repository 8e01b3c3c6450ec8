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

The reads are operations without I/O (generators yielding `Reads` steps, relayq/steps.py) and
`Follow` holds the rules of following the log, so that `relayq.Queue` (redis-py) and
`relayq.aio.Queue` (redis.asyncio) share every command and every rule; only the I/O differs.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from redis.exceptions import ResponseError

from .errors import InvalidEventId
from .keys import QueueKeys
from .limits import EVENTS_PAGE
from .options import check_int
from .protocol import Op, Reads
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
    succeeded, dead, cancelled, deleted, waiting), or `progress`, `cancel_requested`, or `reset`
    (events were lost before this one: reload). `job_ids` are public job ids. `at_ms`: when (Redis
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


def last_position(keys: QueueKeys) -> Op[str]:
    """The position of the newest entry (START when the log is empty or absent): reading after
    it gives what comes next."""
    newest = (yield Reads([("XREVRANGE", keys.log, "+", "-", "COUNT", 1)]))[0]
    return newest[0][0] if newest else START


def read_after(keys: QueueKeys, queue: str, after: str, limit: int = EVENTS_PAGE
               ) -> Op[list[Event]]:
    """Up to `limit` events after position `after`, oldest first. When the log no longer holds
    `after`, the first is a `reset` event whose id is the position just before the oldest entry
    held, followed by the oldest entries."""
    try:
        # XINFO after the range: a trim in between makes a needless reset, never a gap
        entries, info = yield Reads([("XRANGE", keys.log, "(" + after, "+", "COUNT", limit),
                                     ("XINFO STREAM", keys.log)])
    except ResponseError as e:
        if "no such key" not in str(e):
            raise
        return []  # a log never written (or deleted since the range): nothing to read
    if info["entries-added"] > info["length"] and info["first-entry"]:
        first = info["first-entry"][0]
        ms, seq = _order(first)
        before = f"{ms}-{seq - 1}" if seq else f"{ms - 1}-{2**64 - 1}"
        # Trimmed past `after` (no id fits between `before` and the oldest entry, so from
        # `before` on nothing is lost): say so, and go on from the oldest entry held.
        if _order(after) < _order(before):
            entries = (yield Reads([("XRANGE", keys.log, first, "+", "COUNT",
                                     max(1, limit - 1))]))[0]
            return [_reset(queue, before)] + [Event.from_entry(queue, entry_id, fields)
                                              for entry_id, fields in entries]
    return [Event.from_entry(queue, entry_id, fields) for entry_id, fields in entries]


def read_page(keys: QueueKeys, queue: str, after: object, limit: object) -> Op[list[Event]]:
    """`read_after` of a reader's input (`Queue.read_events`): `after` and `limit` checked."""
    count = check_int(limit, "limit", 1, EVENTS_PAGE)
    return (yield from read_after(keys, queue, check_event_id(after), count))


def wait_after(keys: QueueKeys, position: str, wait_ms: int) -> Op[None]:
    """Returns once an entry after `position` is in the log, or after `wait_ms`."""
    yield Reads([("XREAD", "COUNT", 1, "BLOCK", wait_ms, "STREAMS", keys.log, position)])


class Follow:
    """The rules of following a log, without I/O (`follow`, and relayq.aio.Queue.events):
    where to read from next, and how long to wait for more before giving up."""

    def __init__(self, position: str, wait_s: float | None, block_ms: int = 1000) -> None:
        self.position = position
        self.wait_s = wait_s
        self.block_ms = block_ms
        self.idle_since = time.monotonic()

    def saw(self, events: list[Event]) -> None:
        if events:
            self.position = events[-1].id
            self.idle_since = time.monotonic()

    def wait_ms(self) -> int | None:
        """How long to block for the next entry; None: nothing came for `wait_s`, stop."""
        if self.wait_s is None:
            return self.block_ms
        left = self.wait_s - (time.monotonic() - self.idle_since)
        if left <= 0:
            return None
        return max(1, min(self.block_ms, int(left * 1000)))


def follow(drive: Callable[[Op[Any]], Any], keys: QueueKeys, queue: str,
           since: str | None = None, wait_s: float | None = None, block_ms: int = 1000
           ) -> Iterator[Event]:
    """Events after `since` (None: from now), as they come, with a `reset` first when the log
    no longer holds `since`; each operation run by `drive` (relayq.Queue's). Ends once no
    event came for `wait_s` seconds (None: never)."""
    position = drive(last_position(keys)) if since is None else check_event_id(since)
    state = Follow(position, wait_s, block_ms)
    while True:
        events = drive(read_after(keys, queue, state.position))
        state.saw(events)
        yield from events
        if events:
            continue
        wait_ms = state.wait_ms()
        if wait_ms is None:
            return
        drive(wait_after(keys, state.position, wait_ms))
