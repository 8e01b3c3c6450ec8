"""Waiting for a job to finish, written once for every client: `Queue.wait` and `Client.wait`,
sync and asyncio. `until_finished` is an operation without I/O (see relayq/protocol.py, `Op`):
it reads the job through the caller's own `get` operation and yields `Sleep` steps between
reads, which a sync driver sleeps with time.sleep and an asyncio one with asyncio.sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from typing import Any

from .backoff import Backoff
from .job import Job
from .steps import Sleep

FINAL_STATES = ("succeeded", "dead", "cancelled")
MAX_POLL_S = 1.0  # the longest interval between two reads of a job


def until_finished(get: Callable[[], Generator[Any, Any, Job[Any]]],
                   timeout: float, poll_s: float,
                   on_change: Callable[[Job[Any]], None] | None) -> Generator[Any, Any, Job[Any]]:
    """The job once it is finished (succeeded, dead or cancelled); TimeoutError when it is not
    within `timeout` seconds. Reads it with `get()` at a growing interval (from `poll_s` to
    MAX_POLL_S); `on_change(job)` hears of each state seen (e.g. to show progress)."""
    deadline = time.monotonic() + timeout
    polls = Backoff(poll_s, MAX_POLL_S, jitter=False)
    seen = None
    while True:
        job = yield from get()
        if on_change is not None and job.state != seen:
            seen = job.state
            on_change(job)
        if job.state in FINAL_STATES:
            return job
        yield Sleep(min(polls.next_delay(), time_left(deadline, job, timeout)))


def time_left(deadline: float, job: Job[Any], timeout: float) -> float:
    """Seconds until `deadline` (time.monotonic); TimeoutError once it has passed."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError(f"job {job.id} is still {job.state} after {timeout:g}s")
    return left
