"""Checking fair queues from the outside: the running jobs of each group at every instant,
replayed from a queue's event log (each entry is written by the script that changed the jobs'
states, in the same atomic call, so the replay sees every state the queue went through)."""

from __future__ import annotations

from collections import Counter
from typing import Any


def peak_running(queue: Any, group_of: dict[str, str | None]) -> tuple[Counter[str], int]:
    """The most running jobs each group had at once (jobs without a group under '-'), and the
    most running jobs of the queue, over the whole event log of `queue` (a relayq.Queue)."""
    running: set[str] = set()
    per_group: Counter[str] = Counter()
    peak: Counter[str] = Counter()
    total_peak, after = 0, "0-0"
    while events := queue.read_events(after, 200):
        for event in events:
            assert event.type != "reset", "the log lost entries: raise event_log_max"
            for job_id in event.job_ids:
                group = group_of.get(job_id) or "-"
                if event.type == "running" and job_id not in running:
                    running.add(job_id)
                    per_group[group] += 1
                    peak[group] = max(peak[group], per_group[group])
                elif (
                    event.type in ("ready", "scheduled", "succeeded", "dead", "cancelled")
                    and job_id in running
                ):
                    running.discard(job_id)
                    per_group[group] -= 1
            total_peak = max(total_peak, len(running))
        after = events[-1].id
    return peak, total_peak
