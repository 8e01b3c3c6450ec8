"""Listing the jobs of one state of a queue, page by page, with an optional search.

Each state is read from the index that keeps it (docs/data-model.md), in that index's order:

| state     | index                          | order                                      |
|-----------|--------------------------------|--------------------------------------------|
| ready     | relayq:{q}:ready:<p> (+ prios) | claim order: priority high to low, FIFO;   |
|           | then gready:<p>:<g> (+ groups) | then the jobs of each group (fair queues), |
|           |                                | groups by name, each in its claim order    |
| scheduled | relayq:{q}:scheduled           | due time, soonest first                    |
| running   | relayq:{q}:running             | lease deadline, soonest first              |
| succeeded | relayq:{q}:succeeded           | finish time, newest first                  |
| dead      | relayq:{q}:dead                | time of death, newest first                |
| waiting   | relayq:{q}:waiting             | creation time, oldest first                |
| cancelled | -                              | no index (cancelled hashes only expire):   |
|           |                                | always an empty page                       |

A page is a few plain pipelined reads (`Reads` steps of an operation, relayq/protocol.py: the
sync and the asyncio Queue run the same code), not a script: nothing is locked, so a job that
changes state while someone pages may be missed or shown twice, as in any live listing. The
cursor is the position in the index where the next page starts (digits). An index entry whose
job is gone (expired) or in another state (it moved between the reads) is skipped.

A search (`search`: the text to look for, case insensitive, in the job's id, type or last error)
reads at most SEARCH_SCAN_LIMIT entries of the index per page, whatever it finds, so that no
request reads a whole queue: a page may hold fewer matches than `limit`, even none, and still
have a next cursor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import InvalidArgument
from .job import LISTED_STATES, Attempt, Job, make_job_id
from .keys import QueueKeys
from .limits import MAX_CURSOR_DIGITS, MAX_PAGE, MAX_SEARCH_BYTES, SEARCH_SCAN_LIMIT
from .options import check_int, check_str, is_digits
from .protocol import Op, Reads

# Sorted-set indexes: (key attribute of QueueKeys, newest first?)
ZSET_INDEXES = {"scheduled": ("scheduled", False), "running": ("running", False),
                "succeeded": ("succeeded", True), "dead": ("dead", True),
                "waiting": ("waiting", False)}


def _index_slice(keys: QueueKeys, state: str, start: int, count: int
                 ) -> Op[tuple[list[str], bool]]:
    """Local ids at positions [start, start + count) of the state's index, and whether the
    index goes on after them."""
    if state in ZSET_INDEXES:
        attribute, newest_first = ZSET_INDEXES[state]
        read = "ZREVRANGE" if newest_first else "ZRANGE"
        ids = (yield Reads([(read, getattr(keys, attribute), start, start + count)]))[0]
        return ids[:count], len(ids) > count
    if state != "ready":
        return [], False  # cancelled: no index
    priorities = (yield Reads([("ZREVRANGE", keys.prios, 0, -1)]))[0]
    lengths = (yield Reads([("LLEN", keys.ready(p)) for p in priorities])) if priorities else []
    reads = []
    position, end = 0, start + count
    for priority, length in zip(priorities, lengths):
        lo, hi = max(start, position), min(end, position + length)
        if lo < hi:
            reads.append(("LRANGE", keys.ready(priority), lo - position, hi - position - 1))
        position += length
    chunks = (yield Reads(reads)) if reads else []
    ids = [local for chunk in chunks for local in chunk]
    if position > end:
        return ids, True
    more = yield from _group_slice(keys, max(0, start - position), end - position, ids)
    return ids, more


GROUPS_PER_READ = 100


def _group_slice(keys: QueueKeys, start: int, end: int, ids: list[str]) -> Op[bool]:
    """Appends to `ids` the ready jobs of groups at positions [start, end) of the groups'
    part of the ready listing (fair queues: groups by name, each highest priority first, FIFO);
    whether more follow. Reads the groups a hundred at a time, up to the page's end."""
    position = 0
    names = sorted((yield Reads([("ZRANGE", keys.groups, 1, "+inf", "BYSCORE")]))[0])
    for first in range(0, len(names), GROUPS_PER_READ):
        batch = names[first:first + GROUPS_PER_READ]
        prios = yield Reads([("ZREVRANGE", keys.group_prios(g), 0, -1) for g in batch])
        lists = [keys.group_ready(p, g) for g, ps in zip(batch, prios, strict=True) for p in ps]
        lengths = (yield Reads([("LLEN", k) for k in lists])) if lists else []
        reads = []
        for key, length in zip(lists, lengths, strict=True):
            lo, hi = max(start, position), min(end, position + length)
            if lo < hi:
                reads.append(("LRANGE", key, lo - position, hi - position - 1))
            position += length
        for chunk in (yield Reads(reads)) if reads else []:
            ids.extend(chunk)
        if position > end:
            return True
    return False


def _hashes(keys: QueueKeys, ids: list[str], *fields: str) -> Op[list[Any]]:
    if not ids:
        return []
    return (yield Reads([("HMGET", keys.job(local), *fields) if fields
                         else ("HGETALL", keys.job(local)) for local in ids]))


def list_jobs(keys: QueueKeys, queue: str, make_job: Callable[..., Job[Any]], state: str,
              limit: int, cursor: str | None, search: str | None
              ) -> Op[tuple[list[Job[Any]], str | None]]:
    """A page of the jobs of `state` (see the module's docstring) and the next page's cursor
    (None at the end). `make_job(local_id, hash)` builds a Job."""
    if state not in LISTED_STATES:
        raise InvalidArgument(f"state must be one of {', '.join(LISTED_STATES)}, got {state!r}")
    check_int(limit, "limit", 1, MAX_PAGE)
    offset = 0
    if cursor is not None:
        if not is_digits(cursor, MAX_CURSOR_DIGITS):
            raise InvalidArgument(f"invalid cursor {cursor!r}")
        offset = int(cursor)
    if search is not None:
        check_str(search, "q", MAX_SEARCH_BYTES)
    if search is None:
        ids, more = yield from _index_slice(keys, state, offset, limit)
        next_offset = offset + len(ids)
    else:
        ids, more, next_offset = yield from _search(keys, queue, state, offset, limit, search)
    hashes = yield from _hashes(keys, ids)
    jobs = [make_job(local, h) for local, h in zip(ids, hashes) if h.get("s") == state]
    return jobs, str(next_offset) if more else None


def _search(keys: QueueKeys, queue: str, state: str, offset: int, limit: int, search: str
            ) -> Op[tuple[list[str], bool, int]]:
    """Up to `limit` matching local ids among the next SEARCH_SCAN_LIMIT entries from
    `offset`; whether the index goes on after the last entry looked at; where the next page
    starts."""
    window, more = yield from _index_slice(keys, state, offset, SEARCH_SCAN_LIMIT)
    needle = search.casefold()
    found: list[str] = []
    fields = yield from _hashes(keys, window, "s", "t", "err")
    for position, (local, (job_state, job_type, error)) in enumerate(zip(window, fields)):
        if job_state == state and any(needle in text.casefold() for text in (
                make_job_id(queue, local), job_type or "", error or "")):
            found.append(local)
            if len(found) == limit:
                return found, more or position + 1 < len(window), offset + position + 1
    return found, more, offset + len(window)


def read_history(keys: QueueKeys, local_id: str
                 ) -> Op[tuple[dict[str, str], list[Attempt]]]:
    """A job's hash and its history (newest first), in one round trip."""
    h, entries = yield Reads([("HGETALL", keys.job(local_id)),
                              ("LRANGE", keys.history(local_id), 0, -1)])
    return h, [Attempt.from_entry(entry) for entry in entries]
