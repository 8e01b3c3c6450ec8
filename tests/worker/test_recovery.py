"""Recovery: the server and the workers ride out a Redis crash (kill -9, AOF `always`):
/readyz answers 503 while Redis is away and 200 once it is back, nothing confirmed is lost and
nothing is left stuck; the reaper and promoter keep working through restarts; and a worker
killed mid-job delays its job by about one lease period, measured."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3

import relayq
from relayq import App, Queue, Worker
from relayq.tools.redis_process import RedisProcess
from relayq.tools.server_process import ServerProcess
from tests.support.apps.recording import runs_key
from tests.support.helpers import wait_until
from tests.worker.test_consumers import ROOT, start_worker


@pytest.fixture
def crashable() -> Iterator[RedisProcess]:
    """A private Redis with AOF fsynced on every write, to kill -9 and start again."""
    server = RedisProcess(appendonly=True).start()
    yield server
    server.stop()


def readyz(url: str) -> int:
    return urllib3.request("GET", url + "/readyz", retries=False, timeout=5).status


def test_server_and_worker_ride_out_a_redis_crash(crashable: RedisProcess,
                                                  queue_name: str) -> None:
    ran: list[int] = []
    app = App()

    @app.task(default=True)
    def work(payload: dict[str, Any]) -> None:
        time.sleep(payload.get("sleep_ms", 0) / 1000)
        ran.append(payload["n"])

    server = ServerProcess(crashable.url, cwd=ROOT).start()
    redis = relayq.connect(crashable.url)
    worker = Worker([queue_name], app, crashable.url, visibility_ms=5000,
                    maintenance_interval_s=0.2, grace_s=2)
    try:
        client = relayq.Client(server.url, server.printed_key(), retries=0)
        assert readyz(server.url) == 200
        worker.start()
        before = [client.enqueue(queue_name, {"n": n, "sleep_ms": 300}).id for n in range(8)]
        wait_until(lambda: ran, message="the first job to start")

        crashable.kill()  # jobs are running and waiting: nothing may be lost
        wait_until(lambda: readyz(server.url) == 503, message="/readyz to answer 503")
        with pytest.raises(relayq.RedisUnavailable):
            client.enqueue(queue_name, {"n": 99})
        time.sleep(0.5)  # every loop of the worker meets the dead Redis for a while
        crashable.start()
        wait_until(lambda: readyz(server.url) == 200, timeout=15,
                   message="/readyz to answer 200 again")

        after = [client.enqueue(queue_name, {"n": n}).id for n in range(8, 16)]
        q = Queue(queue_name, redis)
        wait_until(lambda: q.stats().succeeded == 16, timeout=30,
                   message="every job confirmed before and after the crash to succeed")
        assert {q.get(job_id).state for job_id in before + after} == {"succeeded"}
        assert sorted(set(ran)) == list(range(16))
        stats = q.stats()
        assert (stats.ready, stats.running, stats.scheduled, stats.dead) == (0, 0, 0, 0)
    finally:
        worker.stop(grace_s=2)
        server.stop()
        redis.close()


def test_reaper_and_promoter_keep_going_through_redis_restarts(
        crashable: RedisProcess, queue_name: str) -> None:
    ran: list[str] = []
    app = App()

    @app.task(default=True)
    def work(payload: str) -> None:
        ran.append(payload)

    redis = relayq.connect(crashable.url)
    q = Queue(queue_name, redis)
    # A job whose holder vanished (claimed, never to be finished) and one due later: only the
    # reaper and the due time can hand them to the worker, and both come after the crashes.
    orphan = q.enqueue("orphan").id
    (claimed,) = q.claim(1, visibility_ms=1500, worker_id="vanished")
    assert claimed.id == orphan
    q.enqueue("scheduled", delay_ms=1500)
    worker = Worker([queue_name], app, crashable.url, maintenance_interval_s=0.1, grace_s=2)
    worker.start()
    try:
        for _ in range(3):
            crashable.kill()
            time.sleep(0.3)
            crashable.start()
        wait_until(lambda: sorted(ran) == ["orphan", "scheduled"], timeout=15,
                   message="the reaped and the scheduled job to run")
        stats = q.stats()
        assert stats.totals["reaped"] == 1 and stats.succeeded == 2
        q.enqueue("after")  # and the worker still claims
        wait_until(lambda: "after" in ran, message="a job after the crashes")
    finally:
        worker.stop(grace_s=2)
        redis.close()


@pytest.fixture
def workers() -> Iterator[list[Any]]:
    procs: list[Any] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)


VISIBILITY_S = 1.0


def test_a_worker_killed_mid_job_delays_it_by_about_one_lease(
        r, q: Queue, redis_url: str, workers: list[Any]) -> None:
    options = ("--visibility", str(VISIBILITY_S), "--concurrency", "1", "--prefetch", "0")
    workers += [start_worker(redis_url, q.name, *options) for _ in range(2)]
    job_id = q.enqueue({"n": 1}, type="slow_first").id
    running = wait_until(lambda: (j := q.get(job_id)).state == "running" and j, timeout=30,
                         message="a worker to start the job")
    holder_pid = int(running.worker_id.split(":")[1])
    (victim,) = [p for p in workers if p.pid == holder_pid]
    time.sleep(VISIBILITY_S)  # it has been heartbeating: the lease runs from its last beat
    killed_ms = time.time() * 1000
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(10)
    done = wait_until(lambda: (j := q.get(job_id)).state == "succeeded" and j, timeout=30,
                      message="the other worker to recover the job")
    delay_s = (done.started_at - killed_ms) / 1000
    print(f"\nkilled mid-job: run again {delay_s:.2f} s after the kill "
          f"(lease {VISIBILITY_S:g} s)")
    assert int(r.hget(runs_key(q.name), job_id)) == 2
    assert done.attempts == 2 and q.stats().totals["reaped"] == 1
    # The lease ran out at most one lease after the kill; the reaper runs every quarter lease
    # at most; the idle worker is woken by the reap. Slack for a loaded machine on top.
    assert delay_s <= VISIBILITY_S * 1.25 + 0.5


@pytest.mark.parametrize(("visibility_ms", "most_s"), [(1000, 0.25), (2000, 0.5), (30_000, 1.0)])
def test_the_reaper_looks_at_least_four_times_a_lease(visibility_ms: int, most_s: float) -> None:
    """A dead worker's job waits for its lease to run out, then for the next reaper pass: with
    a pass every quarter lease (at most every second) that is about one lease in all."""
    worker = Worker(["q"], App(), "redis://127.0.0.1:1/0", visibility_ms=visibility_ms)
    assert worker.maintenance.interval_s == most_s
