"""Cancelling running jobs through real workers: a sync handler (the demo's sleep_ms, in a
`relayq-worker` process) and an async one (in-process `Worker`) stop within seconds and their
jobs end `cancelled`, never retried; a job whose worker is killed after the request ends
cancelled when it is reaped, not requeued. Progress reported by a handler is on the job."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from typing import Any

from relayq import App, Queue, Worker, current_job
from tests.support.helpers import wait_until
from tests.worker import test_consumers
from tests.worker.test_consumers import ROOT

workers = test_consumers.workers  # the fixture: relayq-worker processes, SIGKILLed at the end


def demo_worker(redis_url: str, queue: str, *extra: str) -> subprocess.Popen[bytes]:
    """`relayq-worker` with its built-in demo handler (no --app)."""
    cmd = [sys.executable, "-m", "relayq.worker.cli", "--queue", queue, "--redis", redis_url,
           "--log-level", "warning", "--demo-fail-rate", "0", *extra]
    return subprocess.Popen(cmd, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                            start_new_session=True, stdin=subprocess.DEVNULL)


def test_a_running_demo_job_stops_and_ends_cancelled_within_seconds(
        q: Queue, redis_url: str, workers: list[subprocess.Popen[bytes]]) -> None:
    workers.append(demo_worker(redis_url, q.name))
    jid = q.enqueue({"sleep_ms": 60_000}, max_attempts=5).id
    wait_until(lambda: (q.get(jid).progress or 0) > 0, timeout=20,
               message="the demo job to run and report progress")
    start = time.monotonic()
    assert q.cancel(jid) == "running"
    wait_until(lambda: q.get(jid).state == "cancelled", timeout=10,
               message="the job to end cancelled")
    assert time.monotonic() - start < 3
    job = q.get(jid)
    assert job.attempts == 1 and [a.outcome for a in job.history or []] == ["cancelled"]
    assert "Cancelled" in (job.last_error or "")
    states = [e.type for e in q.read_events("0-0") if jid in e.job_ids]
    # progress may come on until the worker hears of the request
    assert states[:2] == ["ready", "running"] and states[-1] == "cancelled"
    assert states.count("cancel_requested") == 1
    assert set(states[2:-1]) == {"progress", "cancel_requested"}
    stats = q.stats()
    assert (stats.ready, stats.scheduled, stats.running, stats.totals["cancelled"]) == (0, 0, 0, 1)


def test_a_job_whose_worker_died_after_the_request_ends_cancelled_when_reaped(
        q: Queue, redis_url: str, workers: list[subprocess.Popen[bytes]]) -> None:
    worker = demo_worker(redis_url, q.name, "--visibility", "1")
    workers.append(worker)
    jid = q.enqueue({"sleep_ms": 60_000}, max_attempts=5).id
    wait_until(lambda: q.get(jid).state == "running", timeout=20, message="the job to run")
    os.killpg(worker.pid, signal.SIGSTOP)  # frozen: it cannot learn of the cancel
    assert q.cancel(jid) == "running"
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(10)
    wait_until(lambda: (q.reap(), q.get(jid).state)[1] != "running", timeout=10,
               message="the lease to expire and the job to be reaped")
    job = q.get(jid)
    assert job.state == "cancelled" and job.attempts == 1
    assert [a.outcome for a in job.history or []] == ["cancelled"]
    stats = q.stats()
    assert (stats.ready, stats.running, stats.totals["cancelled"]) == (0, 0, 1)
    assert stats.totals["reaped"] == 1 and stats.totals["claimed"] == 1  # never ran again


def test_an_async_handler_is_cancelled_and_a_sync_one_sees_cancelled(
        q: Queue, redis_url: str) -> None:
    app = App()
    seen: dict[str, Any] = {}

    @app.task(name="slow_async")
    async def slow_async(payload: Any) -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            seen["async"] = "cancelled"
            raise

    @app.task(name="slow_sync")
    def slow_sync(payload: Any) -> str:
        job = current_job()
        job.progress(0.5, {"step": "waiting"})
        while not job.cancelled:
            time.sleep(0.02)
        seen["sync"] = "saw it"
        return "finished anyway"  # acked: the cancel still wins

    worker = Worker([q.name], app, redis_url, concurrency=2, grace_s=1)
    worker.start()
    try:
        a = q.enqueue({}, type="slow_async").id
        s = q.enqueue({}, type="slow_sync").id
        wait_until(lambda: q.get(s).progress == 0.5 and q.get(a).state == "running",
                   message="both jobs to run")
        assert q.get(s).progress_info == {"step": "waiting"}
        start = time.monotonic()
        q.cancel(a)
        q.cancel(s)
        wait_until(lambda: {q.get(a).state, q.get(s).state} == {"cancelled"}, timeout=10,
                   message="both jobs to end cancelled")
        assert time.monotonic() - start < 3
    finally:
        worker.stop()
    assert seen == {"async": "cancelled", "sync": "saw it"}
    assert q.get(s).result == "finished anyway"
    assert q.stats().totals["cancelled"] == 2 and q.stats().totals["failed"] == 0


def test_a_prefetched_job_cancelled_before_it_starts_never_runs(
        q: Queue, redis_url: str) -> None:
    app = App()
    ran: list[int] = []

    @app.task(name="work", default=True)
    def work(payload: Any) -> None:
        ran.append(payload["n"])
        time.sleep(payload["sleep_s"])

    worker = Worker([q.name], app, redis_url, concurrency=1, prefetch=1, grace_s=1)
    busy = q.enqueue({"n": 0, "sleep_s": 1.5}).id
    waiting = q.enqueue({"n": 1, "sleep_s": 0}).id
    worker.start()
    try:
        wait_until(lambda: q.get(waiting).state == "running",
                   message="the second job to be prefetched")
        # (both are claimed at once: the first handler may not have started yet)
        wait_until(lambda: ran == [0], message="the first job to start")
        assert q.cancel(waiting) == "running"
        wait_until(lambda: q.get(waiting).state == "cancelled", timeout=10,
                   message="the prefetched job to end cancelled")
        wait_until(lambda: q.get(busy).state == "succeeded", message="the first job to finish")
    finally:
        worker.stop()
    assert ran == [0]  # the cancelled one never ran
