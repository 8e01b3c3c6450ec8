"""The lease keeper alone, on jobs claimed from the real redis-server: it extends the lease of
every job the worker holds (and of no other job) before the lease runs out, times out a job
over its `timeout_ms` by posting `TimedOut` once, and marks a job whose lease was taken from it
abandoned, unless the job has already left the worker (its ack overtook the heartbeat)."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from relayq import Queue
from relayq.errors import RedisUnavailable
from relayq.limits import CANCEL_CHECK_MS
from relayq.worker.inflight import InFlight, Running
from relayq.worker.lease_keeper import LeaseKeeper, TimedOut
from tests.support.helpers import wait_until
from tests.worker.conftest import Claim


def deadline(q: Queue, running: Running) -> int | None:
    return q.get(running.job.id).lease_deadline


def lost_leases(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.fields["id"] for record in caplog.records  # type: ignore[attr-defined]
            if record.getMessage() == "job.lease_lost"]


def holding(*jobs: Running) -> InFlight:
    inflight = InFlight()
    for running in jobs:
        inflight.add(running)
    return inflight


def test_a_round_extends_the_lease_of_each_held_job_and_no_other(
        q: Queue, r: Any, claim: Claim) -> None:
    other = Queue(q.name + "-other", r)
    running, prefetched, not_ours = claim(q, 1, 2, 3, visibility_ms=30_000)
    (elsewhere,) = claim(other, 4, visibility_ms=30_000, started=True)
    running.started = time.monotonic()
    before = {x.job.id: deadline(x.queue, x) for x in (running, prefetched, not_ours, elsewhere)}
    posted: list[Any] = []
    LeaseKeeper(holding(running, prefetched, elsewhere), 600_000, posted.append).tick()
    for x in (running, prefetched, elsewhere):  # one heartbeat call per queue
        assert deadline(x.queue, x) >= before[x.job.id] + 500_000
        assert not x.abandoned
    assert deadline(q, not_ours) == before[not_ours.job.id]
    assert posted == []


def test_while_running_it_keeps_a_job_past_its_first_lease(q: Queue, claim: Claim) -> None:
    """Started, it beats every third of the lease: the reaper, running after the job's first
    lease has long run out, still finds the job held; the job nobody holds is reaped."""
    held, dropped = claim(q, "held", "dropped", visibility_ms=500, started=True)
    first = deadline(q, held)
    keeper = LeaseKeeper(holding(held), 500, lambda message: None)
    keeper.start()
    try:
        wait_until(lambda: deadline(q, held) > first + 600, message="the lease extended twice")
        assert q.reap() == (1, 0)  # requeued, dead: the dropped job only
        assert q.get(held.job.id).state == "running"
        assert q.get(dropped.job.id).state == "ready"
    finally:
        keeper.stop()
    assert not keeper._thread.is_alive()


def test_a_job_over_its_timeout_is_posted_once_and_no_longer_extended(
        q: Queue, claim: Claim) -> None:
    late, in_time, prefetched = claim(q, 1, 2, 3, timeout_ms=1000, started=True)
    late.started = time.monotonic() - 1.5
    prefetched.started = None  # not running yet: its time has not begun
    before = deadline(q, late)
    posted: list[Any] = []
    keeper = LeaseKeeper(holding(late, in_time, prefetched), 600_000, posted.append)
    keeper.tick()
    assert [type(m) for m in posted] == [TimedOut] and posted[0].running is late
    assert late.abandoned and not in_time.abandoned and not prefetched.abandoned
    assert deadline(q, late) == before
    assert deadline(q, in_time) > before + 500_000 and deadline(q, prefetched) > before + 500_000
    keeper.tick()
    assert len(posted) == 1, "a timed-out job was posted twice"


def test_left_to_a_supervisor_a_job_over_its_timeout_keeps_its_lease(
        q: Queue, claim: Claim) -> None:
    """Under relayq-worker --processes the supervisor stops the process (relayq/worker/
    supervisor.py): the keeper posts nothing and goes on extending the lease until then."""
    (late,) = claim(q, 1, timeout_ms=1000, started=True)
    late.started = time.monotonic() - 1.5
    before = deadline(q, late)
    posted: list[Any] = []
    LeaseKeeper(holding(late), 600_000, posted.append, enforce_timeouts=False).tick()
    assert posted == [] and not late.abandoned
    assert deadline(q, late) > before + 500_000


def test_a_held_job_whose_lease_was_reaped_is_abandoned_and_left_alone(
        q: Queue, r: Any, claim: Claim, caplog: pytest.LogCaptureFixture) -> None:
    stalled, fine = claim(q, 1, 2, started=True)
    r.zadd(q.keys.running, {q.local_id(stalled.job.id): 0})  # its lease ran out
    assert q.reap() == (1, 0)
    (again,) = q.claim(worker_id="another-worker")  # the job runs elsewhere now
    posted: list[Any] = []
    with caplog.at_level(logging.WARNING, logger="relayq.worker"):
        LeaseKeeper(holding(stalled, fine), 30_000, posted.append).tick()
    assert stalled.abandoned and not fine.abandoned and posted == []
    assert lost_leases(caplog) == [stalled.job.id]
    job = q.get(stalled.job.id)
    assert job.state == "running" and job.lease_deadline is not None
    assert again.lease != stalled.job.lease  # the new holder's lease, untouched by ours


def test_a_heartbeat_overtaken_by_the_ack_is_not_a_lost_lease(
        q: Queue, r: Any, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """The lease keeper takes its snapshot of running jobs, then heartbeats them. A job that
    finishes in between is removed and acked by the dispatcher first: its heartbeat then finds
    no lease. That job was recorded, not lost. A job still held whose lease is gone was."""
    inflight = InFlight()
    keeper = LeaseKeeper(inflight, 30_000, post=lambda message: None)
    q.enqueue_many([{"n": 1}, {"n": 2}])
    finished, reaped = (Running(job, q, started=time.monotonic())
                        for job in q.claim(2, visibility_ms=30_000))
    inflight.add(finished)
    inflight.add(reaped)
    # The reaper takes `reaped` back (its holder looked dead).
    r.zadd(q.keys.running, {q.local_id(reaped.job.id): 0})
    assert q.reap() == (1, 0)  # requeued, dead
    heartbeat_many = q.heartbeat_many

    def finish_first(*args: Any, **kwargs: Any) -> Any:
        inflight.remove(finished.job.id)  # what the dispatcher does with a Done, then it acks
        q.ack(finished.job.id, finished.job.lease or "")
        return heartbeat_many(*args, **kwargs)

    monkeypatch.setattr(q, "heartbeat_many", finish_first)
    with caplog.at_level(logging.WARNING, logger="relayq.worker"):
        keeper.tick()
    assert q.get(finished.job.id).state == "succeeded"
    assert not finished.abandoned
    assert reaped.abandoned and lost_leases(caplog) == [reaped.job.id]


def test_abandoned_jobs_are_neither_extended_nor_reported(
        q: Queue, claim: Claim, caplog: pytest.LogCaptureFixture) -> None:
    released, timed_out = claim(q, 1, 2, timeout_ms=1000, started=True)
    timed_out.started = time.monotonic() - 5
    for x in (released, timed_out):
        x.abandoned = True
    before = {x.job.id: deadline(q, x) for x in (released, timed_out)}
    posted: list[Any] = []
    with caplog.at_level(logging.WARNING, logger="relayq.worker"):
        LeaseKeeper(holding(released, timed_out), 600_000, posted.append).tick()
    assert {x.job.id: deadline(q, x) for x in (released, timed_out)} == before
    assert posted == [] and lost_leases(caplog) == []


def test_an_outage_fails_the_round_and_abandons_nothing(
        q: Queue, claim: Claim, unreachable: Queue) -> None:
    """Redis away is not a lost lease: the round fails (Periodic logs it and beats again at the
    next interval) and the job stays as it was, to be extended once Redis answers."""
    (running,) = claim(q, 1, started=True)
    running.queue = Queue(q.name, unreachable.redis)  # the same job, its Redis gone
    with pytest.raises(RedisUnavailable):
        LeaseKeeper(holding(running), 30_000, lambda message: None).tick()
    assert not running.abandoned


def test_it_beats_every_third_of_the_lease() -> None:
    assert LeaseKeeper(InFlight(), 30_000, lambda m: None).interval_s == CANCEL_CHECK_MS / 1000
    assert LeaseKeeper(InFlight(), 600, lambda m: None).interval_s == 0.2  # a third of the lease
    assert LeaseKeeper(InFlight(), 60, lambda m: None).interval_s == 0.05  # at most 20 a second
