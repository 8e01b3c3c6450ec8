"""Fair queues under real workers: 8 competing `relayq-worker` processes, three of them
SIGKILLed mid-job and replaced, never run more jobs of a group (or of the queue) at once than
its limit allows, counted at every instant through the queue's event log; the killed workers'
slots come back through the reaper and every job succeeds."""

from __future__ import annotations

import os
import signal
from typing import Any

import relayq
from relayq import JobOptions, NewJob
from tests.support.fairness import peak_running
from tests.support.helpers import wait_until
from tests.worker.test_consumers import start_worker, workers  # noqa: F401 (fixture)

LIMITS = {"big": 4, "a": 2, "b": 2, "c": 2}
QUEUE_LIMIT = 9


def test_limits_hold_under_8_competing_workers_with_kills(
    r: Any,
    queue_name: str,
    redis_url: str,
    workers: list[Any],  # noqa: F811 (the fixture imported above)
) -> None:
    q = relayq.Queue(queue_name, r)
    q.configure(max_running=QUEUE_LIMIT, group_max_running=2)
    q.set_group_limits("big", max_running=4)
    jobs = [
        NewJob({"sleep_ms": 150}, JobOptions(group=g))
        for g in LIMITS
        for _ in range(40 if g == "big" else 15)
    ]
    jobs += [NewJob({"sleep_ms": 150}) for _ in range(10)]
    group_of = {
        res.id: job.options.group for res, job in zip(q.enqueue_many(jobs), jobs, strict=True)
    }
    options = ("--concurrency", "3", "--visibility", "1")
    workers += [start_worker(redis_url, q.name, *options) for _ in range(8)]
    wait_until(
        lambda: q.stats().running >= QUEUE_LIMIT - 2,
        timeout=30,
        message="the workers to fill the queue's slots",
    )
    holders = {int(j.worker_id.split(":")[1]) for j in q.jobs("running", 100)[0]}
    victims = [p for p in workers if p.pid in holders][:3]
    assert victims, holders
    for victim in victims:  # mid-job: they hold slots that only the reaper gives back
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(10)
    workers += [start_worker(redis_url, q.name, *options) for _ in victims]
    wait_until(lambda: q.stats().succeeded == len(jobs), timeout=90, message="every job to succeed")
    peak, total_peak = peak_running(q, group_of)
    print(
        f"\npeak running per group {dict(peak)}, queue {total_peak}; "
        f"reaped {q.stats().totals['reaped']}"
    )
    for group, limit in LIMITS.items():
        assert peak[group] == limit, (group, peak)  # reached (it binds) and never exceeded
    assert total_peak <= QUEUE_LIMIT
    assert q.stats().totals["reaped"] >= 1  # the kills took running jobs with them
    running = {g.group: g.running for g in q.groups(100).groups}
    assert set(running.values()) <= {0}  # every slot given back
