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


def test_a_late_small_tenant_is_served_at_once_under_a_limit_of_2(
    r: Any,
    queue_name: str,
    redis_url: str,
    workers: list[Any],  # noqa: F811 (the fixture imported above)
) -> None:
    """The issue's scenario, small (scripts/fair_queues.py runs it with 100,000 jobs): 2,000
    jobs of tenant A, then 10 of tenant B; B's all succeed while A has done a small part of
    its jobs, and neither tenant ever runs more than 2 at once with 2 workers of 8 threads."""
    q = relayq.Queue(queue_name, r)
    q.configure(group_max_running=2)
    a = [NewJob({"sleep_ms": 20}, JobOptions(group="A")) for _ in range(2000)]
    group_of = {res.id: "A" for res in q.enqueue_many(a)}
    b_ids = [q.enqueue({"sleep_ms": 20}, group="B").id for _ in range(10)]
    group_of.update((i, "B") for i in b_ids)
    workers += [start_worker(redis_url, q.name, "--concurrency", "8") for _ in range(2)]
    wait_until(
        lambda: all(q.get(i).state == "succeeded" for i in b_ids),
        timeout=30,
        message="tenant B's jobs to succeed",
    )
    done_a = q.stats().succeeded - 10
    assert done_a < 200, done_a  # FIFO would have run all 2,000 of A first
    peak, _ = peak_running(q, group_of)
    assert peak["A"] == 2 and peak["B"] == 2, peak
