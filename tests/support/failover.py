"""The crash scenario shared by the cluster and Sentinel failover tests.

Jobs are enqueued up front (with WAIT, so they are on a replica), worker processes start
draining them, and a producer thread keeps enqueueing one job at a time, each with an
idempotency key, in the mode under test (`replicas=0`: default, `replicas=1`: replicated-write).
Then `crash()` runs: kill -9 of a primary or a forced failover, waiting for the failover and
bringing the killed node back as a replica; it may return timings of its own. The producer writes
to `produce_to` (default: every queue). The scenario waits until every queue is drained and
counts:

- confirmed: enqueues that returned without an exception;
- lost: confirmed jobs that never ran (a primary confirmed them, then died before a replica
  had them);
- duplicates: extra runs of a job (at-least-once around a failover: a lost ack or claim);
- recovered_s: from the crash to the producer's first confirmed enqueue after its first
  refused one (0 when the crash refused none);
- drained_s: from the crash until every queue is empty.

Measurements are appended to test-artifacts/scale-measurements.jsonl as well as returned.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import relayq
from relayq import Queue, RelayqError
from tests.support.helpers import wait_until
from tests.support.workers import REPO, WorkerProcesses


class Producer(threading.Thread):
    def __init__(self, url: str, queues: list[str], replicas: int) -> None:
        super().__init__(name="test-producer", daemon=True)
        self.client = relayq.connect(url, socket_timeout=5)
        self.queues = [Queue(q, self.client, replicas=replicas, replica_timeout_ms=300)
                       for q in queues]
        self.confirmed: dict[str, float] = {}  # job id -> when confirmed (monotonic)
        self.refused: dict[str, int] = {}  # error code -> count
        self.refused_at: list[float] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stop_event.is_set():
            q = self.queues[n % len(self.queues)]
            try:
                res = q.enqueue({"n": n}, idempotency_key=f"p{n}")
                self.confirmed[res.id] = time.monotonic()
            except RelayqError as e:
                self.refused[e.code] = self.refused.get(e.code, 0) + 1
                self.refused_at.append(time.monotonic())
                self.stop_event.wait(0.02)  # back off a little while Redis is away
            n += 1
        self.client.close()

    def recovered_after(self, t: float) -> float | None:
        """When the first enqueue after the first refusal after `t` was confirmed."""
        refused = [r for r in list(self.refused_at) if r > t]
        since = min(refused) if refused else t
        later = [c for c in list(self.confirmed.values()) if c > since]
        return min(later) if later else None


def crash_scenario(url: str, queues: list[str], tmp_path: Path, *,
                   crash: Callable[[], dict[str, Any] | None], replicas: int = 0,
                   produce_to: list[str] | None = None, upfront: int = 300, workers: int = 2,
                   label: str = "") -> dict[str, Any]:
    client = relayq.connect(url)
    upfront_ids = {r.id for q in queues for r in Queue(q, client).enqueue_many(
        [{"upfront": i} for i in range(upfront)], replicas=1, replica_timeout_ms=5000)}
    extra = ["--replicas", str(replicas), "--replica-timeout-ms", "300"] if replicas else []
    procs = WorkerProcesses(workers, url, queues, tmp_path, concurrency=4, visibility_s=2,
                            extra=extra)
    producer = Producer(url, produce_to or queues, replicas)
    try:
        producer.start()
        wait_until(lambda: sum(procs.executions().values()) >= len(upfront_ids) // 5,
                   timeout=60, interval=0.05, message="the workers to get going")
        crashed = time.monotonic()
        timings = crash() or {}
        wait_until(lambda: producer.recovered_after(crashed), timeout=60, interval=0.05,
                   message="the producer to get through after the crash")
        recovered = producer.recovered_after(crashed)
        assert recovered is not None
        # a snapshot of the values (list() copies them under the GIL): the producer thread
        # adds to the dict meanwhile, and a comprehension over the live view can fail with
        # "dictionary changed size during iteration"
        wait_until(lambda: len(producer.confirmed) > 200 + len(
            [c for c in list(producer.confirmed.values()) if c <= recovered]),
            timeout=60, message="200 more enqueues after recovery")
        producer.stop_event.set()
        producer.join(10)

        def drained() -> bool:
            stats = [Queue(q, client).stats() for q in queues]
            return all(s.ready == s.running == s.scheduled == 0 for s in stats)
        wait_until(lambda: _quietly(drained), timeout=90, interval=0.2,
                   message="every queue to drain after the crash")
        drained_s = time.monotonic() - crashed
        assert procs.alive(), procs.logs()
        runs = procs.executions()
    finally:
        producer.stop_event.set()
        procs.stop()
        client.close()
    confirmed = set(producer.confirmed)
    result = {
        "scenario": label, "replicas": replicas,
        "upfront": len(upfront_ids), "upfront_lost": len(upfront_ids - set(runs)),
        "confirmed": len(confirmed), "lost": len(confirmed - set(runs)),
        "refused": producer.refused,
        "duplicates": sum(n - 1 for n in runs.values() if n > 1),
        "recovered_s": round(recovered - crashed, 2), "drained_s": round(drained_s, 2),
        **timings,
    }
    record(result)
    return result


def _quietly(check: Callable[[], bool]) -> bool:
    try:
        return check()
    except RelayqError:
        return False


def record(measurement: dict[str, Any]) -> None:
    """Appends one measurement to test-artifacts/scale-measurements.jsonl (and prints it)."""
    out = REPO / "test-artifacts"
    out.mkdir(exist_ok=True)
    with open(out / "scale-measurements.jsonl", "a") as f:
        f.write(json.dumps({"at": time.strftime("%Y-%m-%dT%H:%M:%S"), **measurement}) + "\n")
    print(measurement)
