"""The registry component alone, on the real redis-server: it lists the worker at start with
what it holds (busy: handlers running; jobs: every held id, prefetched ones too), refreshes the
entry with a TTL of three intervals, takes it out on stop, and rides out a Redis outage."""

from __future__ import annotations

import json
from typing import Any

from relayq import Queue
from relayq.keys import WORKERS, worker
from relayq.worker.inflight import InFlight
from relayq.worker.registry import Registry
from relayq.worker_registry import list_workers
from tests.support.helpers import wait_until
from tests.worker.conftest import Claim


def test_listed_at_start_with_its_jobs_refreshed_and_removed_on_stop(
        q: Queue, r: Any, claim: Claim) -> None:
    running, prefetched = claim(q, 1, started=True) + claim(q, 2)
    inflight = InFlight()
    inflight.add(running)
    inflight.add(prefetched)
    registry = Registry(r, "w-registry-test", [q.name], 4, inflight, interval_s=0.1)
    registry.start()
    try:
        (entry,) = [w for w in list_workers(r) if w["id"] == "w-registry-test"]  # at once
        assert (entry["queues"], entry["concurrency"], entry["busy"]) == ([q.name], 4, 1)
        assert sorted(entry["jobs"]) == sorted([running.job.id, prefetched.job.id])
        assert 0 < r.pttl(worker("w-registry-test")) <= 300  # three intervals
        inflight.remove(running.job.id)
        wait_until(lambda: json.loads(r.get(worker("w-registry-test")))["jobs"] == [
            prefetched.job.id], message="a refresh without the finished job")
    finally:
        registry.stop()
    assert r.get(worker("w-registry-test")) is None
    assert r.zscore(WORKERS, "w-registry-test") is None


def test_an_outage_at_start_is_logged_and_the_refreshes_go_on(unreachable: Queue) -> None:
    registry = Registry(unreachable.redis, "w-unreachable", ["x"], 1, InFlight(),
                        interval_s=0.05)
    registry.start()  # does not raise
    registry.stop()
