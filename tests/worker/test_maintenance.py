"""Maintenance alone, against the real redis-server: each round reaps the expired leases (back to
ready, or dead on the last attempt, reported through `WorkerEvents.reaped`) and promotes the due
scheduled jobs, on every queue the worker serves, and leaves alone what is not due yet."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from relayq import Queue
from relayq.worker.events import WorkerEvents
from relayq.worker.maintenance import Maintenance
from tests.support.helpers import wait_until
from tests.worker.conftest import Claim


class Reaped(WorkerEvents):
    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int]] = []

    def reaped(self, queue: str, requeued: int, dead: int) -> None:
        self.calls.append((queue, requeued, dead))


@pytest.fixture
def events() -> Reaped:
    return Reaped()


@pytest.fixture
def run(events: Reaped) -> Iterator[Callable[..., Maintenance]]:
    started: list[Maintenance] = []

    def run(*queues: Queue[Any]) -> Maintenance:
        maintenance = Maintenance(list(queues), events, interval_s=0.02)
        maintenance.start()
        started.append(maintenance)
        return maintenance

    yield run
    for maintenance in started:
        maintenance.stop()


def state(q: Queue[Any], job_id: str) -> str:
    return q.get(job_id).state


def test_an_expired_lease_goes_back_to_ready(q: Queue, claim: Claim, run: Any,
                                             events: Reaped) -> None:
    (expiring,) = claim(q, "a", visibility_ms=50, max_attempts=3)
    (kept,) = claim(q, "b", visibility_ms=600_000)
    run(q)
    wait_until(lambda: state(q, expiring.job.id) == "ready", message="the expired job requeued")
    job = q.get(expiring.job.id)
    assert job.attempts == 1 and job.lease_deadline is None
    assert state(q, kept.job.id) == "running"  # its lease has not run out
    wait_until(lambda: events.calls, message="the reaping reported")  # after the script
    assert events.calls == [(q.name, 1, 0)]
    assert q.stats().totals["reaped"] == 1


def test_an_expired_lease_on_the_last_attempt_goes_dead(q: Queue, claim: Claim, run: Any,
                                                        events: Reaped) -> None:
    (expiring,) = claim(q, "a", visibility_ms=50, max_attempts=1)
    run(q)
    wait_until(lambda: state(q, expiring.job.id) == "dead", message="the expired job dead")
    wait_until(lambda: events.calls, message="the reaping reported")
    assert events.calls == [(q.name, 0, 1)]


def test_a_due_job_is_promoted_and_a_later_one_waits(q: Queue, run: Any,
                                                     events: Reaped) -> None:
    due = q.enqueue("soon", delay_ms=50).id
    later = q.enqueue("later", delay_ms=600_000).id
    assert state(q, due) == "scheduled"
    run(q)
    wait_until(lambda: state(q, due) == "ready", message="the due job promoted")
    assert state(q, later) == "scheduled"
    assert events.calls == []  # nothing was reaped: nothing reported


def test_every_queue_is_served(q: Queue, r: Any, claim: Claim, run: Any,
                               events: Reaped) -> None:
    other = Queue(q.name + "-other", r)
    (expiring,) = claim(q, "a", visibility_ms=50)
    due = other.enqueue("soon", delay_ms=50).id
    run(q, other)
    wait_until(lambda: state(q, expiring.job.id) == "ready" and state(other, due) == "ready",
               message="both queues maintained")
    wait_until(lambda: events.calls, message="the reaping reported")
    assert events.calls == [(q.name, 1, 0)]


def test_a_queue_that_fails_does_not_hold_up_the_others(q: Queue, r: Any, run: Any) -> None:
    """A round that fails on one queue (here a key of the wrong type; on Redis Cluster, the
    node of that queue failing over) still maintains the queues after it."""
    broken = Queue(q.name + "-broken", r)
    broken.enqueue("x")
    r.delete(broken.keys.running)
    r.set(broken.keys.running, "not a sorted set")
    due = q.enqueue("soon", delay_ms=50).id
    maintenance = run(broken, q)
    wait_until(lambda: state(q, due) == "ready", message="the healthy queue's job promoted")
    assert maintenance._thread.is_alive()
    r.delete(broken.keys.running)
