"""The jobs a worker holds (`InFlight`): what the dispatcher adds and removes is what the lease
keeper and the runtime see, one record per job id, and `holds` tells a job still held from a
record that was removed (or replaced) meanwhile."""

from __future__ import annotations

from relayq import Queue
from relayq.worker.inflight import InFlight, Running
from tests.worker.conftest import Claim


def test_holds_what_was_added_until_it_is_removed(q: Queue, claim: Claim) -> None:
    inflight = InFlight()
    a, b = claim(q, "a", "b")
    assert len(inflight) == 0 and inflight.snapshot() == []
    inflight.add(a)
    inflight.add(b)
    assert len(inflight) == 2 and inflight.snapshot() == [a, b]
    assert inflight.holds(a) and inflight.holds(b)
    assert inflight.remove(a.job.id) is a
    assert not inflight.holds(a) and inflight.holds(b)
    assert inflight.snapshot() == [b] and len(inflight) == 1
    assert inflight.remove(a.job.id) is None  # a second remove finds nothing


def test_holds_is_about_this_record_not_the_job_id(q: Queue, claim: Claim) -> None:
    """A job reaped and claimed again by this same worker is a new record with the same id: the
    old record (whose lease is gone) is no longer held."""
    inflight = InFlight()
    (old,) = claim(q, "x")
    again = Running(old.job, q)
    inflight.add(old)
    inflight.add(again)
    assert len(inflight) == 1
    assert inflight.holds(again) and not inflight.holds(old)


def test_a_snapshot_is_a_copy(q: Queue, claim: Claim) -> None:
    inflight = InFlight()
    (a,) = claim(q, "a")
    inflight.add(a)
    snapshot = inflight.snapshot()
    inflight.remove(a.job.id)
    assert snapshot == [a] and inflight.snapshot() == []

