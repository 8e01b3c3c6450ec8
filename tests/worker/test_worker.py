"""The worker runtime, in-process against a real redis-server."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import relayq
from relayq import App, Fail, Queue, Retry, Worker, current_job
from relayq.limits import DEFAULT_MAX_PAYLOAD_BYTES, MAX_JSON_DEPTH
from relayq.tools.redis_process import RedisProcess
from tests.support.helpers import wait_until


@pytest.fixture
def app() -> App:
    return App("test")


@pytest.fixture
def start_worker(r, queue_name: str) -> Iterator[Any]:
    workers: list[Worker] = []

    def start(app: App, queues: list[str] | None = None, **options: Any) -> Worker:
        options.setdefault("maintenance_interval_s", 0.1)
        options.setdefault("grace_s", 5)
        worker = Worker(queues or [queue_name], app, r, **options)
        worker.start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        if not worker._stopped.is_set():
            worker.stop(grace_s=1)


def state_of(q: Queue, job_id: str, state: str) -> Any:
    return lambda: q.get(job_id).state == state


def test_runs_jobs_and_records_results(q: Queue, app: App, start_worker) -> None:
    @app.task
    def double(payload):
        return {"twice": payload["n"] * 2, "job": current_job().id}

    ids = [q.enqueue({"n": i}, type="double").id for i in range(50)]
    start_worker(app, concurrency=4)
    for i, jid in enumerate(ids):
        wait_until(state_of(q, jid, "succeeded"), message=f"{jid} succeeded")
        assert q.get(jid).result == {"twice": i * 2, "job": jid}
    assert q.stats().totals["succeeded"] == 50


def test_a_result_the_queue_cannot_keep_fails_the_job_saying_why(
        r, queue_name: str, app: App, start_worker) -> None:
    @app.task
    def oversized(payload):
        return "x" * DEFAULT_MAX_PAYLOAD_BYTES

    @app.task
    def nested(payload):
        value: Any = 1
        for _ in range(MAX_JSON_DEPTH + 1):
            value = [value]
        return value

    @app.task
    def lone_surrogate(payload):
        return {"text": "half of a pair: \ud83d"}  # Python encodes it; Redis's cjson refuses it

    @app.task
    def fine(payload):
        return "ok"

    q = Queue(queue_name, r)
    bad = [q.enqueue({}, type=t).id for t in ("oversized", "nested", "lone_surrogate")]
    start_worker(app)
    for jid, why in zip(bad, [f"over the limit of {DEFAULT_MAX_PAYLOAD_BYTES}",
                              f"nested more than {MAX_JSON_DEPTH}", "lone surrogate"]):
        wait_until(state_of(q, jid, "dead"), message=f"{jid} to fail for good")
        assert why in q.get(jid).last_error
    # and the worker goes on: one bad result refused a whole batch of acks, and that killed
    # the worker's claiming thread (every later job stayed ready)
    good = q.enqueue({}, type="fine").id
    wait_until(state_of(q, good, "succeeded"), message="a job after the bad results")
    wait_until(lambda: q.stats().running == 0, message="nothing left running")


def test_failures_retry_then_succeed(q: Queue, app: App, start_worker) -> None:
    calls: list[int] = []

    @app.task
    def flaky(payload):
        calls.append(current_job().attempts)
        if len(calls) < 3:
            raise RuntimeError("transient")
        return "ok"

    q.configure(backoff_base_ms=10, backoff_cap_ms=50)
    jid = q.enqueue({}, type="flaky").id
    start_worker(app)
    wait_until(state_of(q, jid, "succeeded"), message="retried job to succeed")
    assert calls == [1, 2, 3]
    job = q.get(jid)
    assert job.attempts == 3 and "RuntimeError: transient" in job.last_error
    assert q.stats().totals["retried"] == 2


def test_fail_goes_dead_and_retry_names_its_delay(q: Queue, app: App, start_worker) -> None:
    @app.task
    def bad(payload):
        raise Fail("invalid order")

    @app.task
    def later(payload):
        if current_job().attempts == 1:
            raise Retry("not yet", delay_ms=60_000)
        return "done"

    dead = q.enqueue({}, type="bad").id
    postponed = q.enqueue({}, type="later").id
    start_worker(app)
    wait_until(state_of(q, dead, "dead"), message="Fail to kill the job")
    assert q.get(dead).last_error == "Fail: invalid order" and q.get(dead).attempts == 1
    wait_until(state_of(q, postponed, "scheduled"), message="Retry to schedule the job")
    job = q.get(postponed)
    assert 55_000 <= job.run_at - job.started_at <= 60_100


def test_unknown_type_goes_dead_with_a_reason(q: Queue, app: App, start_worker) -> None:
    jid = q.enqueue({}, type="nobody-handles-this").id
    start_worker(app)
    wait_until(state_of(q, jid, "dead"), message="unhandled job to die")
    assert "no task handles job type 'nobody-handles-this'" in q.get(jid).last_error


def test_spent_attempts_go_dead(q: Queue, app: App, start_worker) -> None:
    @app.task
    def always(payload):
        raise ValueError("broken")

    q.configure(backoff_base_ms=1, backoff_cap_ms=5)
    jid = q.enqueue({}, type="always", max_attempts=3).id
    start_worker(app)
    wait_until(state_of(q, jid, "dead"), message="job to run out of attempts")
    assert q.get(jid).attempts == 3


def test_lease_is_extended_while_a_long_handler_runs(q: Queue, app: App, start_worker) -> None:
    @app.task
    def slow(payload):
        time.sleep(1.2)  # four lease lengths: only the lease keeper keeps the job ours
        return "finished"

    jid = q.enqueue({}, type="slow").id
    start_worker(app, visibility_ms=300)
    wait_until(state_of(q, jid, "succeeded"), message="slow job to succeed")
    job = q.get(jid)
    assert job.attempts == 1 and job.result == "finished"
    assert q.stats().totals["reaped"] == 0


def test_timeout_fails_the_job(q: Queue, app: App, start_worker) -> None:
    release = threading.Event()

    @app.task
    def stuck(payload):
        release.wait(10)

    jid = q.enqueue({}, type="stuck", timeout_ms=200, max_attempts=1).id
    start_worker(app, visibility_ms=300)
    wait_until(state_of(q, jid, "dead"), message="timed-out job to fail")
    assert q.get(jid).last_error == "timed out after 200 ms"
    release.set()


def test_async_handlers(q: Queue, app: App, start_worker) -> None:
    @app.task
    async def fetch(payload):
        await asyncio.sleep(0.01)
        return {"id": current_job().id, "n": payload["n"]}

    ids = [q.enqueue({"n": i}, type="fetch").id for i in range(10)]
    start_worker(app, concurrency=4)
    for i, jid in enumerate(ids):
        wait_until(state_of(q, jid, "succeeded"), message="async job")
        assert q.get(jid).result == {"id": jid, "n": i}


def test_an_idle_worker_wakes_on_enqueue(q: Queue, app: App, start_worker) -> None:
    seen = threading.Event()

    @app.task
    def ping(payload):
        seen.set()

    start_worker(app)
    time.sleep(0.3)  # let the worker go idle: its wakers block in BLPOP (for up to 5 s)
    t0 = time.monotonic()
    q.enqueue({}, type="ping")
    assert seen.wait(4), "an idle worker did not wake for a new job"
    # Well inside the 5 s idle block: it was woken by the enqueue, not by a timeout.
    assert time.monotonic() - t0 < 2.5


def test_delayed_job_runs_when_due(q: Queue, app: App, start_worker) -> None:
    ran = threading.Event()

    @app.task
    def later(payload):
        ran.set()

    start_worker(app)
    t0 = time.monotonic()
    q.enqueue({}, type="later", delay_ms=400)
    assert ran.wait(5)
    assert time.monotonic() - t0 >= 0.39


def test_strict_queue_order(r, app: App, start_worker, queue_name: str) -> None:
    order: list[str] = []

    @app.task(default=True)
    def record(payload):
        order.append(payload)

    high, low = Queue(queue_name + "-hi", r), Queue(queue_name + "-lo", r)
    low.enqueue_many(["low"] * 5)
    high.enqueue_many(["high"] * 5)
    start_worker(app, [high.name, low.name], concurrency=1, prefetch=0)
    wait_until(lambda: len(order) == 10, message="all jobs")
    assert order == ["high"] * 5 + ["low"] * 5


def test_weighted_queues_serve_both(r, app: App, start_worker, queue_name: str) -> None:
    seen: list[str] = []

    @app.task(default=True)
    def record(payload):
        seen.append(payload)

    a, b = Queue(queue_name + "-a", r), Queue(queue_name + "-b", r)
    a.enqueue_many(["a"] * 200)
    b.enqueue_many(["b"] * 200)
    start_worker(app, [a.name, b.name], concurrency=1, prefetch=0, weights=[3, 1])
    wait_until(lambda: len(seen) >= 100, message="100 jobs")
    first = seen[:100]
    assert 0 < first.count("b") < first.count("a")  # both served, a about 3 times as often


def test_drain_finishes_running_jobs_and_returns_prefetched(q: Queue, app: App,
                                                            start_worker) -> None:
    started = threading.Event()
    go = threading.Event()

    @app.task(default=True)
    def hold(payload):
        started.set()
        go.wait(10)
        return payload

    ids = [r.id for r in q.enqueue_many(list(range(5)))]
    worker = start_worker(app, concurrency=1, prefetch=4)
    assert started.wait(5)
    wait_until(lambda: q.stats().running == 5, message="one running and four prefetched")
    stopper = threading.Thread(target=worker.stop, kwargs={"grace_s": 10})
    stopper.start()
    wait_until(lambda: q.stats().ready == 4, message="prefetched jobs back in the queue")
    go.set()
    stopper.join(10)
    assert q.get(ids[0]).state == "succeeded"
    for jid in ids[1:]:
        job = q.get(jid)
        assert job.state == "ready" and job.attempts == 0


def test_grace_expiry_releases_without_spending_an_attempt(q: Queue, app: App,
                                                           start_worker) -> None:
    started = threading.Event()
    go = threading.Event()

    @app.task(default=True)
    def hold(payload):
        started.set()
        go.wait(10)

    jid = q.enqueue({}).id
    worker = start_worker(app, concurrency=1, prefetch=0)
    assert started.wait(5)
    worker.stop(grace_s=0.3)
    job = q.get(jid)
    assert job.state == "ready" and job.attempts == 0 and job.lease is None
    go.set()  # the handler returns after the release: its ack must not be recorded
    time.sleep(0.1)
    assert q.get(jid).state == "ready"


def test_reaper_recovers_a_job_whose_holder_vanished(q: Queue, app: App, start_worker) -> None:
    ran = threading.Event()

    @app.task(default=True)
    def work(payload):
        ran.set()
        return "recovered"

    jid = q.enqueue({}).id
    (lost,) = q.claim(visibility_ms=300, worker_id="crashed-worker")  # never acked
    start_worker(app)
    assert ran.wait(5), "the reaper did not hand the job out again"
    wait_until(state_of(q, jid, "succeeded"), message="recovered job to succeed")
    job = q.get(jid)
    assert job.attempts == 2 and q.stats().totals["reaped"] == 1
    with pytest.raises(relayq.LeaseLost):
        q.ack(jid, lost.lease)


def test_a_worker_that_lost_its_lease_does_not_record(q: Queue, app: App, start_worker,
                                                      r) -> None:
    started = threading.Event()
    go = threading.Event()
    runs: list[int] = []

    @app.task(default=True)
    def work(payload):
        runs.append(current_job().attempts)
        started.set()
        if len(runs) == 1:
            go.wait(10)
        return len(runs)

    jid = q.enqueue({}).id
    start_worker(app, concurrency=2, visibility_ms=600)
    assert started.wait(5)
    # Simulate a stall: the job's lease runs out, and the reaper hands the job back.
    r.zadd(q.keys.running, {q.local_id(jid): 0})
    q.reap()
    wait_until(lambda: len(runs) == 2, message="the job to run again")
    wait_until(state_of(q, jid, "succeeded"), message="second run to succeed")
    assert q.get(jid).result == 2
    go.set()  # the first, stale run returns now: its result must not overwrite anything
    time.sleep(0.2)
    assert q.get(jid).result == 2


def test_worker_rides_out_a_redis_restart(queue_name: str, app: App) -> None:
    done: list[int] = []

    @app.task(default=True)
    def work(payload):
        done.append(payload)

    with RedisProcess(appendonly=True) as server:
        client = relayq.connect(server.url)
        q = Queue(queue_name, client)
        worker = Worker([queue_name], app, client, maintenance_interval_s=0.1, grace_s=2)
        worker.start()
        try:
            q.enqueue(1)
            wait_until(lambda: done == [1], message="first job")
            server.kill()
            time.sleep(0.5)  # the worker's loops meet a dead Redis for a while
            server.start()
            q.enqueue(2)
            wait_until(lambda: done == [1, 2], timeout=15, message="job after restart")
        finally:
            worker.stop(grace_s=2)
            client.close()


def test_the_worker_threads_survive_unexpected_errors(
        r, q: Queue, app: App, start_worker, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug (here: injected) in a round of the dispatcher, the lease keeper or the reaper is
    logged and that round skipped; none of the threads dies (a dead dispatcher never claimed
    again; a dead reaper never recovered a job)."""
    failures = {"settle": 2, "heartbeat_many": 1, "reap": 1}  # fail the n-th call, once

    def failing(name: str) -> Any:
        real, calls = getattr(Queue, name), [0]

        def wrapper(self: Queue, *args: Any, **kwargs: Any) -> Any:
            calls[0] += 1
            if calls[0] == failures[name]:
                raise RuntimeError(f"injected failure in {name}")
            return real(self, *args, **kwargs)

        return wrapper

    for name in failures:
        monkeypatch.setattr(Queue, name, failing(name))

    @app.task(default=True)
    def work(payload):
        time.sleep(payload)
        return payload

    orphan = q.enqueue(0).id
    (claimed,) = q.claim(1, visibility_ms=300, worker_id="vanished")
    assert claimed.id == orphan
    ids = [q.enqueue(0.5).id] + [q.enqueue(0).id for _ in range(5)]
    worker = start_worker(app, visibility_ms=300)
    wait_until(lambda: all(q.get(j).state == "succeeded" for j in [orphan, *ids]), timeout=20,
               message="every job to succeed despite the failures")
    assert q.get(ids[0]).attempts == 1, "the long job kept its lease through a failed beat"
    threads = [worker.dispatcher._thread, worker.lease_keeper._thread,
               worker.maintenance._thread]
    assert all(t.is_alive() for t in threads)
    later = q.enqueue(0).id
    wait_until(state_of(q, later, "succeeded"), message="a job after the failures")


def test_a_chain_across_queues_moves_on_when_each_parent_ends_not_at_the_next_round(
    r, q: Queue, app: App, start_worker
) -> None:
    """A parent's fact for a child in another queue waits in the parent queue's outbox for a
    fact mover. The worker nudges its mover when it settles a job that has children, so with
    rounds an hour apart (they would move nothing in this test) the chain still runs through:
    a -> b -> a -> b."""
    other = Queue(f"{q.name}-b", r)

    @app.task
    def step(payload):
        return payload["n"]

    first = q.enqueue({"n": 0}, type="step")
    second = other.enqueue({"n": 1}, type="step", depends_on=[first.id])
    third = q.enqueue({"n": 2}, type="step", depends_on=[second.id])
    fourth = other.enqueue({"n": 3}, type="step", depends_on=[third.id])
    start_worker(app, [q.name, other.name], maintenance_interval_s=3600,
                 visibility_ms=4 * 3600 * 1000)
    wait_until(state_of(other, fourth.id, "succeeded"), message="the last of the chain ran")
    assert other.get(fourth.id).parent_results == {third.id: 2}
