"""The operator routes (issue 19 #5) against a real server, real Redis and real worker processes:
jobs of one state (order, paging, search), the workers registry (a SIGKILLed worker expires),
queue latency and a job's attempt history. Every reply is checked against /api/openapi.json by
the `api` helper."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from relayq import Queue
from tests.support.helpers import wait_until, worker_process
from tests.support.http import Api


def page(api: Api, queue: str, query: str) -> dict[str, Any]:
    reply = api.call("GET", f"/api/queues/{queue}/jobs?{query}")
    assert reply.status == 200, reply
    return reply.body


def ids(body: dict[str, Any]) -> list[str]:
    return [job["id"] for job in body["jobs"]]


def test_ready_jobs_list_in_claim_order_and_page(api: Api, q: Queue) -> None:
    low = [q.enqueue({"n": i}).id for i in range(3)]
    high = [q.enqueue({"n": i}, priority=7).id for i in range(2)]
    expected = high + low
    first = page(api, q.name, "state=ready&limit=3")
    assert ids(first) == expected[:3] and first["next_cursor"] is not None
    second = page(api, q.name, f"state=ready&limit=3&cursor={first['next_cursor']}")
    assert ids(second) == expected[3:] and second["next_cursor"] is None
    # the order is the claim order
    assert [job.id for job in q.claim(5)] == expected


def test_scheduled_by_due_time_running_by_deadline_with_worker(api: Api, q: Queue) -> None:
    later = q.enqueue(1, delay_ms=60_000).id
    sooner = q.enqueue(2, delay_ms=30_000).id
    assert ids(page(api, q.name, "state=scheduled")) == [sooner, later]
    q.enqueue(3)
    q.enqueue(4)
    long_lease = q.claim(1, visibility_ms=60_000, worker_id="w-long")[0]
    short_lease = q.claim(1, visibility_ms=20_000, worker_id="w-short")[0]
    running = page(api, q.name, "state=running")["jobs"]
    assert [j["id"] for j in running] == [short_lease.id, long_lease.id]
    assert [j["worker_id"] for j in running] == ["w-short", "w-long"]
    assert all(j["lease_deadline"] for j in running)


def test_finished_jobs_list_newest_first(api: Api, q: Queue) -> None:
    for n in range(3):
        q.enqueue(n, max_attempts=1)
    done = []
    for _ in range(3):
        job = q.claim()[0]
        q.ack(job.id, job.lease, {"ok": True})
        done.append(job.id)
        time.sleep(0.002)  # distinct finish times (ms), so newest first is one order
    assert ids(page(api, q.name, "state=succeeded")) == done[::-1]
    q.enqueue("x", max_attempts=1)
    job = q.claim()[0]
    q.nack(job.id, job.lease, "boom")
    assert ids(page(api, q.name, "state=dead")) == [job.id]


def test_search_by_id_type_and_error_text(api: Api, q: Queue) -> None:
    mail = q.enqueue(1, type="send_email").id
    q.enqueue(2, type="resize_image")
    failing = q.enqueue(3, type="other", max_attempts=1).id
    job = q.claim(3)
    by_id = {j.id: j for j in job}
    q.nack(failing, by_id[failing].lease, "ConnectionRefusedError: smtp.example.com")
    q.release_many([(j.id, j.lease) for j in job if j.id != failing])
    assert ids(page(api, q.name, "state=ready&q=EMAIL")) == [mail]
    assert ids(page(api, q.name, f"state=ready&q={mail.rpartition('.')[2]}")) == [mail]
    assert ids(page(api, q.name, "state=dead&q=smtp.example")) == [failing]
    assert ids(page(api, q.name, "state=dead&q=nothing-like-it")) == []


def test_a_search_page_stops_at_limit_and_goes_on_from_its_cursor(api: Api, q: Queue) -> None:
    jobs = [q.enqueue(n, type="match" if n % 2 else "other").id for n in range(10)]
    first = page(api, q.name, "state=ready&q=match&limit=2")
    assert ids(first) == [jobs[1], jobs[3]]
    rest = page(api, q.name, f"state=ready&q=match&limit=10&cursor={first['next_cursor']}")
    assert ids(rest) == [jobs[5], jobs[7], jobs[9]] and rest["next_cursor"] is None


def test_waiting_and_cancelled_answer_an_empty_page(api: Api, q: Queue) -> None:
    job = q.enqueue(1).id
    q.cancel(job)
    for state in ("waiting", "cancelled"):
        assert page(api, q.name, f"state={state}") == {
            "jobs": [], "next_cursor": None}


@pytest.mark.parametrize("query", ["", "state=sleeping", "state=ready&limit=0",
                                   "state=ready&cursor=x", "state=ready&extra=1",
                                   "state=ready&limit=1001"])
def test_bad_listing_queries_are_400(api: Api, q: Queue, query: str) -> None:
    reply = api.call("GET", f"/api/queues/{q.name}/jobs?{query}")
    assert reply.status == 400 and reply.code == "invalid_argument", reply


def test_listing_needs_jobs_read(api: Api, q: Queue, scoped_keys: dict[str, str]) -> None:
    assert api.with_key(scoped_keys["jobs:work"]).call(
        "GET", f"/api/queues/{q.name}/jobs?state=ready").status == 403
    assert api.with_key(scoped_keys["jobs:read"]).call(
        "GET", f"/api/queues/{q.name}/jobs?state=ready").status == 200
    assert api.with_key(scoped_keys["jobs:work"]).call("GET", "/api/workers").status == 403


def test_latency_is_the_age_of_the_oldest_ready_job(api: Api, q: Queue) -> None:
    assert api.call("GET", f"/api/queues/{q.name}").body["latency_ms"] == 0
    q.enqueue(1)
    q.enqueue(2, priority=5)
    time.sleep(0.05)
    latency = api.call("GET", f"/api/queues/{q.name}").body["latency_ms"]
    assert 50 <= latency < 10_000
    q.claim(2)
    assert api.call("GET", f"/api/queues/{q.name}").body["latency_ms"] == 0


def test_a_jobs_history_lists_its_failed_and_lost_attempts(api: Api, q: Queue) -> None:
    job_id = q.enqueue(1, max_attempts=3).id
    first = q.claim(worker_id="w1")[0]
    q.nack(job_id, first.lease, "Traceback ...\nValueError: first", delay_ms=0)
    second = q.claim(worker_id="w2", visibility_ms=1)[0]
    wait_until(lambda: q.reap() == (1, 0), message="the lease to expire")
    view = api.call("GET", f"/api/jobs/{job_id}").body
    assert [(a["worker_id"], a["outcome"]) for a in view["history"]] == [
        ("w2", "reaped"), ("w1", "retried")]
    lost, failed = view["history"]
    assert failed["error"] == "Traceback ...\nValueError: first"
    assert lost["error"] == "lease expired: worker lost"
    assert lost["started_at"] and lost["finished_at"] >= lost["started_at"]
    assert second.id == job_id
    third = q.claim(worker_id="w3")[0]
    q.nack(job_id, third.lease, "last")
    view = api.call("GET", f"/api/jobs/{job_id}").body
    assert view["state"] == "dead" and [a["outcome"] for a in view["history"]] == [
        "dead", "reaped", "retried"]
    # listings and claims do not read it
    assert page(api, q.name, "state=dead")["jobs"][0]["history"] is None


def test_a_first_attempt_success_has_an_empty_history(api: Api, q: Queue) -> None:
    job_id = q.enqueue(1).id
    claimed = api.call("POST", f"/api/queues/{q.name}/claim", {}).body["jobs"][0]
    assert claimed["history"] is None
    api.call("POST", f"/api/jobs/{job_id}/ack", {"lease": claimed["lease"]})
    assert api.call("GET", f"/api/jobs/{job_id}").body["history"] == []


def _mine(api: Api, pids: set[int]) -> list[dict[str, Any]]:
    return [w for w in api.call("GET", "/api/workers").body["workers"] if w["pid"] in pids]


def test_workers_register_show_their_jobs_and_leave_on_stop(api: Api, q: Queue, redis_url: str,
                                                            tmp_path: Path) -> None:
    slow = [q.enqueue({"sleep_ms": 30_000}).id for _ in range(2)]
    with worker_process(redis_url, q.name, "--concurrency", "3", "--prefetch", "0",
                        "--registry-refresh-ms", "200", "--grace", "0",
                        log=tmp_path / "worker.log") as worker:
        # a refresh may see the jobs held but not yet started (busy counts started ones)
        entry = wait_until(lambda: [w for w in _mine(api, {worker.pid}) if
                                    sorted(w["jobs"]) == sorted(slow) and w["busy"] == 2],
                           message="the worker's entry with its two jobs, both running")[0]
        assert entry["queues"] == [q.name] and entry["concurrency"] == 3
        assert entry["host"]
        assert entry["last_seen_at"] >= entry["started_at"]
        seen = entry["last_seen_at"]
        wait_until(lambda: _mine(api, {worker.pid})[0]["last_seen_at"] > seen,
                   message="a refresh")
    assert _mine(api, {worker.pid}) == []  # a graceful stop removes it at once


def test_a_killed_worker_disappears_once_its_ttl_ends(api: Api, q: Queue, redis_url: str) -> None:
    worker = subprocess.Popen(
        [sys.executable, "-m", "relayq.worker.cli", "--queue", q.name, "--redis", redis_url,
         "--registry-refresh-ms", "200"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_until(lambda: _mine(api, {worker.pid}), message="the worker's entry")
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
        killed_at = time.monotonic()
        wait_until(lambda: not _mine(api, {worker.pid}), timeout=10,
                   message="the killed worker's entry to expire")
        # gone within its TTL (three refreshes: 600 ms) plus the polling, not at some later sweep
        assert time.monotonic() - killed_at < 5
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(5)
