"""Listing the jobs of one state of a queue, page by page, with an optional search.

Each state is read from the index that keeps it (docs/data-model.md), in that index's order:

| state     | index                          | order                                      |
|-----------|--------------------------------|--------------------------------------------|
| ready     | relayq:{q}:ready:<p> (+ prios) | claim order: priority high to low, FIFO    |
| scheduled | relayq:{q}:scheduled           | due time, soonest first                    |
| running   | relayq:{q}:running             | lease deadline, soonest first              |
| succeeded | relayq:{q}:succeeded           | finish time, newest first                  |
| dead      | relayq:{q}:dead                | time of death, newest first                |
| waiting   | -                              | no index: always an empty page             |
| cancelled | -                              | no index (cancelled hashes only expire):   |
|           |                                | always an empty page                       |

A page is a few plain pipelined reads, not a script: nothing is locked, so a job that changes
state while someone pages may be missed or shown twice, as in any live listing. The cursor is
the position in the index where the next page starts (digits). An index entry whose job is gone
(expired) or in another state (it moved between the reads) is skipped.

A search (`search`: the text to look for, case insensitive, in the job's id, type or last error)
reads at most SEARCH_SCAN_LIMIT entries of the index per page, whatever it finds, so that no
request reads a whole queue: a page may hold fewer matches than `limit`, even none, and still
have a next cursor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .connection import RedisClient, redis_errors
from .errors import InvalidArgument
from .job import LISTED_STATES, Attempt, Job, make_job_id
from .keys import QueueKeys
from .limits import MAX_CURSOR_DIGITS, MAX_PAGE, MAX_SEARCH_BYTES, SEARCH_SCAN_LIMIT
from .options import check_int, check_str, is_digits

# Sorted-set indexes: (key attribute of QueueKeys, newest first?)
ZSET_INDEXES = {"scheduled": ("scheduled", False), "running": ("running", False),
                "succeeded": ("succeeded", True), "dead": ("dead", True)}


def _index_slice(redis: RedisClient, keys: QueueKeys, state: str, start: int, count: int
                 ) -> tuple[list[str], bool]:
    """Local ids at positions [start, start + count) of the state's index, and whether the
    index goes on after them."""
    if state in ZSET_INDEXES:
        attribute, newest_first = ZSET_INDEXES[state]
        read = redis.zrevrange if newest_first else redis.zrange
        ids = read(getattr(keys, attribute), start, start + count)
        return ids[:count], len(ids) > count
    if state != "ready":
        return [], False  # waiting, cancelled: no index
    priorities = redis.zrevrange(keys.prios, 0, -1)
    pipe = redis.pipeline(transaction=False)
    for priority in priorities:
        pipe.llen(keys.ready(priority))
    lengths = pipe.execute()
    pipe = redis.pipeline(transaction=False)
    position, end = 0, start + count
    for priority, length in zip(priorities, lengths):
        lo, hi = max(start, position), min(end, position + length)
        if lo < hi:
            pipe.lrange(keys.ready(priority), lo - position, hi - position - 1)
        position += length
    ids = [local for chunk in pipe.execute() for local in chunk]
    return ids, position > end


def _hashes(redis: RedisClient, keys: QueueKeys, ids: list[str], *fields: str
            ) -> list[Any]:
    pipe = redis.pipeline(transaction=False)
    for local in ids:
        if fields:
            pipe.hmget(keys.job(local), fields)
        else:
            pipe.hgetall(keys.job(local))
    return pipe.execute() if ids else []


def list_jobs(redis: RedisClient, keys: QueueKeys, queue: str, make_job: Callable[..., Job[Any]],
              state: str, limit: int, cursor: str | None, search: str | None
              ) -> tuple[list[Job[Any]], str | None]:
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
    with redis_errors():
        if search is None:
            ids, more = _index_slice(redis, keys, state, offset, limit)
            next_offset = offset + len(ids)
        else:
            ids, more, next_offset = _search(redis, keys, queue, state, offset, limit, search)
        hashes = _hashes(redis, keys, ids)
    jobs = [make_job(local, h) for local, h in zip(ids, hashes) if h.get("s") == state]
    return jobs, str(next_offset) if more else None


def _search(redis: RedisClient, keys: QueueKeys, queue: str, state: str, offset: int,
            limit: int, search: str) -> tuple[list[str], bool, int]:
    """Up to `limit` matching local ids among the next SEARCH_SCAN_LIMIT entries from
    `offset`; whether the index goes on after the last entry looked at; where the next page
    starts."""
    window, more = _index_slice(redis, keys, state, offset, SEARCH_SCAN_LIMIT)
    needle = search.casefold()
    found: list[str] = []
    for position, (local, (job_state, job_type, error)) in enumerate(
            zip(window, _hashes(redis, keys, window, "s", "t", "err"))):
        if job_state == state and any(needle in text.casefold() for text in (
                make_job_id(queue, local), job_type or "", error or "")):
            found.append(local)
            if len(found) == limit:
                return found, more or position + 1 < len(window), offset + position + 1
    return found, more, offset + len(window)


def read_history(redis: RedisClient, keys: QueueKeys, local_id: str
                 ) -> tuple[dict[str, str], list[Attempt]]:
    """A job's hash and its history (newest first), in one round trip."""
    with redis_errors():
        pipe = redis.pipeline(transaction=False)
        pipe.hgetall(keys.job(local_id))
        pipe.lrange(keys.history(local_id), 0, -1)
        h, entries = pipe.execute()
    return h, [Attempt.from_entry(entry) for entry in entries]
