"""Competing consumers: several `relayq-worker` processes on one queue. With nothing failing,
every job runs exactly once; with workers SIGKILLed mid-job, nothing is lost (jobs of a dead
worker run again once their lease expires: at-least-once)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import relayq
from tests.support.apps.recording import runs_key
from tests.support.helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]


def start_worker(redis_url: str, queue: str, *extra: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "relayq.worker.cli", "--app", "tests.support.apps.recording:app",
           "--queue", queue, "--redis", redis_url, "--log-level", "warning", *extra]
    env = dict(os.environ, RELAYQ_TEST_REDIS=redis_url, PYTHONPATH=str(ROOT))
    return subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True,
                            stdin=subprocess.DEVNULL)


@pytest.fixture
def workers():
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)


def test_each_job_runs_exactly_once_when_nothing_fails(r, q: relayq.Queue, redis_url: str,
                                                       workers) -> None:
    n = 3000
    ids = [res.id for res in q.enqueue_many([{"i": i} for i in range(n)])]
    workers += [start_worker(redis_url, q.name, "--concurrency", "4") for _ in range(4)]
    wait_until(lambda: q.stats().succeeded == n, timeout=120, message=f"{n} jobs to succeed")
    runs = r.hgetall(runs_key(q.name))
    assert set(runs) == set(ids)
    assert all(count == "1" for count in runs.values())
    stats = q.stats()
    assert (stats.ready, stats.running, stats.dead, stats.totals["claimed"]) == (0, 0, 0, n)
    for p in workers:
        p.send_signal(signal.SIGTERM)
    assert [p.wait(30) for p in workers] == [0] * len(workers)


def test_nothing_is_lost_when_workers_are_killed(r, q: relayq.Queue, redis_url: str,
                                                 workers) -> None:
    n = 1500
    capacity = 4 + 4  # concurrency + prefetch per worker
    ids = [res.id for res in q.enqueue_many(
        [{"i": i, "sleep_ms": random.randint(2, 12)} for i in range(n)])]
    options = ("--concurrency", "4", "--visibility", "1")
    workers += [start_worker(redis_url, q.name, *options) for _ in range(3)]
    kills = 0
    while kills < 4 and q.stats().succeeded < n * 0.8:
        time.sleep(0.4)
        victim = random.choice([p for p in workers if p.poll() is None])
        os.killpg(victim.pid, signal.SIGKILL)  # mid-job: no drain, no release
        victim.wait(10)
        kills += 1
        workers.append(start_worker(redis_url, q.name, *options))
    assert kills >= 2, "the queue drained before workers could be killed: make jobs longer"
    wait_until(lambda: q.stats().succeeded == n, timeout=120, message=f"{n} jobs to succeed")
    runs = {job_id: int(count) for job_id, count in r.hgetall(runs_key(q.name)).items()}
    assert set(runs) == set(ids)  # nothing lost
    duplicates = sum(count - 1 for count in runs.values())
    # Only jobs held by a killed worker can run twice.
    assert duplicates <= kills * capacity
    stats = q.stats()
    assert (stats.ready, stats.running, stats.scheduled, stats.dead) == (0, 0, 0, 0)
    assert stats.totals["reaped"] >= duplicates
