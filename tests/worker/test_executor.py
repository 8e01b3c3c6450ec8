"""The executor alone: it runs the handler of each job it is given on its threads and posts
exactly one `Done` per job, whose outcome says how the handler ended. The outcomes are then
recorded with `Queue.settle` (what the dispatcher does with them) against the real redis-server,
so each mapping is checked by the state it leaves the job in."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from relayq import App, Fail, Queue, Retry, current_job
from relayq.errors import InvalidPayload
from relayq.worker.events import WorkerEvents
from relayq.worker.executor import Done, Executor, outcome_of
from tests.support.helpers import wait_until
from tests.worker.conftest import Claim


class Posted(list):  # type: ignore[type-arg]
    """The executor's `post`: what it posted, in order."""

    def wait_for(self, count: int) -> list[Done]:
        wait_until(lambda: len(self) >= count, message=f"{count} outcomes posted")
        return list(self)


@pytest.fixture
def app() -> App:
    return App("executor-test")


@pytest.fixture
def posted() -> Posted:
    return Posted()


@pytest.fixture
def start(app: App, posted: Posted) -> Iterator[Any]:
    executors: list[Executor] = []

    def start(concurrency: int = 2) -> Executor:
        executor = Executor(app, concurrency, posted.append)
        executor.start()
        executors.append(executor)
        return executor

    yield start
    for executor in executors:
        executor.stop(timeout=5)


def settle(q: Queue[Any], done: Done) -> Any:
    """Records the posted outcome the way the dispatcher does, and returns the job after it."""
    statuses, _ = q.settle([done.outcome])
    assert statuses == ["ok"]
    return q.get(done.running.job.id)


def run_one(q: Queue[Any], claim: Claim, start: Any, posted: Posted, job_type: str,
            payload: Any = None, **options: Any) -> tuple[Done, Any]:
    (running,) = claim(q, payload, type=job_type, **options)
    executor = start()
    executor.submit(running)
    (done,) = posted.wait_for(1)
    executor.stop(timeout=5)
    assert len(posted) == 1 and done.running is running
    return done, settle(q, done)


def test_a_returned_value_is_an_ack_carrying_the_result(q: Queue, app: App, claim: Claim,
                                                         start: Any, posted: Posted) -> None:
    @app.task
    def double(payload):
        return {"twice": payload * 2, "job": current_job().id}

    done, job = run_one(q, claim, start, posted, "double", 21)
    assert done.outcome.kind == "ack" and done.outcome.job_id == job.id
    assert done.duration_s >= 0
    assert job.state == "succeeded" and job.result == {"twice": 42, "job": job.id}


def test_returning_none_is_an_ack_without_a_result(q: Queue, app: App, claim: Claim, start: Any,
                                                   posted: Posted) -> None:
    @app.task
    def quiet(payload):
        return None

    done, job = run_one(q, claim, start, posted, "quiet")
    assert done.outcome.kind == "ack" and done.outcome.result_json == ""
    assert job.state == "succeeded" and job.result is None


def test_retry_is_a_nack_after_the_delay_it_names(q: Queue, app: App, claim: Claim, start: Any,
                                                  posted: Posted) -> None:
    @app.task
    def later(payload):
        raise Retry("not yet", delay_ms=60_000)

    done, job = run_one(q, claim, start, posted, "later")
    assert done.outcome.kind == "nack" and done.outcome.retry
    assert done.outcome.delay_ms == 60_000 and done.outcome.error == "Retry: not yet"
    assert job.state == "scheduled" and job.last_error == "Retry: not yet"
    assert 55_000 <= job.run_at - job.started_at <= 60_100


def test_retry_without_a_delay_leaves_it_to_the_queues_backoff(
        q: Queue, app: App, claim: Claim, start: Any, posted: Posted) -> None:
    @app.task
    def again(payload):
        raise Retry()

    q.configure(backoff_base_ms=600_000, backoff_cap_ms=600_000)
    done, job = run_one(q, claim, start, posted, "again")
    assert done.outcome.kind == "nack" and done.outcome.delay_ms is None
    assert done.outcome.error == "Retry: retry requested"
    # the backoff's full-jitter window: anywhere up to its cap
    assert job.state == "scheduled" and 0 <= job.run_at - job.started_at <= 600_100


def test_fail_is_a_nack_that_does_not_retry(q: Queue, app: App, claim: Claim, start: Any,
                                            posted: Posted) -> None:
    @app.task
    def bad(payload):
        raise Fail("invalid order")

    done, job = run_one(q, claim, start, posted, "bad", max_attempts=5)
    assert done.outcome.kind == "nack" and not done.outcome.retry
    assert job.state == "dead" and job.attempts == 1 and job.last_error == "Fail: invalid order"


def test_any_other_exception_retries_with_its_traceback(q: Queue, app: App, claim: Claim,
                                                        start: Any, posted: Posted) -> None:
    @app.task
    def broken(payload):
        raise ValueError("boom")

    q.configure(backoff_base_ms=600_000, backoff_cap_ms=600_000)
    done, job = run_one(q, claim, start, posted, "broken")
    assert done.outcome.kind == "nack" and done.outcome.retry and done.outcome.delay_ms is None
    assert done.outcome.error.startswith("Traceback")
    assert "in broken" in done.outcome.error
    assert done.outcome.error.rstrip().endswith("ValueError: boom")
    assert job.state == "scheduled" and job.last_error == done.outcome.error


def test_a_handler_raising_invalid_payload_is_reported_as_its_own_failure(
        q: Queue, app: App, claim: Claim, start: Any, posted: Posted) -> None:
    """A handler's own InvalidPayload (say, from an enqueue it makes) is the handler's failure,
    with its traceback; it is not a result that failed to encode."""

    @app.task
    def forwards(payload):
        Queue(q.name, q.redis).enqueue({"not json": object()})

    done, _ = run_one(q, claim, start, posted, "forwards")
    assert done.outcome.kind == "nack" and done.outcome.retry
    assert "handler result is not JSON" not in done.outcome.error
    assert "in forwards" in done.outcome.error and "InvalidPayload" in done.outcome.error


def test_a_result_that_is_not_json_fails_saying_so(q: Queue, app: App, claim: Claim, start: Any,
                                                   posted: Posted) -> None:
    @app.task
    def odd(payload):
        return {"when": object()}

    done, job = run_one(q, claim, start, posted, "odd")
    assert done.outcome.kind == "nack"
    assert done.outcome.error.startswith("handler result is not JSON: not JSON-serialisable")
    assert job.last_error == done.outcome.error


def test_a_job_type_without_a_task_fails_for_good(q: Queue, claim: Claim, start: Any,
                                                  posted: Posted) -> None:
    done, job = run_one(q, claim, start, posted, "nobody-handles-this", max_attempts=5)
    assert done.outcome.kind == "nack" and not done.outcome.retry
    assert job.state == "dead"
    assert job.last_error == "Fail: no task handles job type 'nobody-handles-this'"


def test_the_default_task_takes_types_without_a_task(q: Queue, app: App, claim: Claim,
                                                     start: Any, posted: Posted) -> None:
    @app.task(default=True)
    def anything(payload):
        return current_job().type

    done, job = run_one(q, claim, start, posted, "unregistered")
    assert job.state == "succeeded" and job.result == "unregistered"


def test_async_handlers_run_on_the_loop_with_their_job(q: Queue, app: App, claim: Claim,
                                                       start: Any, posted: Posted) -> None:
    @app.task
    async def fetch(payload):
        await asyncio.sleep(0.01)
        return {"job": current_job().id, "n": payload, "loop": threading.current_thread().name}

    done, job = run_one(q, claim, start, posted, "fetch", 7)
    assert done.outcome.kind == "ack"
    assert job.result == {"job": job.id, "n": 7, "loop": "relayq-async"}


def test_an_async_handler_over_its_timeout_is_failed_and_cancelled(
        q: Queue, app: App, claim: Claim, start: Any, posted: Posted) -> None:
    cancelled = threading.Event()

    @app.task
    async def hangs(payload):
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    q.configure(backoff_base_ms=600_000, backoff_cap_ms=600_000)
    done, job = run_one(q, claim, start, posted, "hangs", timeout_ms=100)
    assert done.outcome.kind == "nack" and done.outcome.retry
    assert "TimeoutError" in done.outcome.error and job.state == "scheduled"
    assert cancelled.wait(5), "the timed-out coroutine was left running"


def test_exactly_one_outcome_per_job_over_all_threads(q: Queue, app: App, claim: Claim,
                                                      start: Any, posted: Posted) -> None:
    @app.task
    def work(payload):
        if payload % 3 == 0:
            raise RuntimeError(f"failure {payload}")
        return payload

    held = claim(q, *range(30))
    executor = start(concurrency=4)
    for running in held:
        executor.submit(running)
    posted.wait_for(len(held))
    executor.stop(timeout=5)  # every thread gone: nothing more can be posted
    assert sorted(d.running.job.id for d in posted) == sorted(r.job.id for r in held)
    kinds = {d.running.job.payload: d.outcome.kind for d in posted}
    assert kinds == {n: "nack" if n % 3 == 0 else "ack" for n in range(30)}
    assert all(r.started is not None for r in held)


def test_handlers_run_concurrently_on_each_thread(q: Queue, app: App, claim: Claim, start: Any,
                                                  posted: Posted) -> None:
    together = threading.Barrier(3, timeout=5)

    @app.task
    def meet(payload):
        together.wait()  # breaks (and fails the job) unless three handlers run at once
        return threading.current_thread().name

    held = claim(q, 1, 2, 3, type="meet")
    executor = start(concurrency=3)
    for running in held:
        executor.submit(running)
    done = posted.wait_for(3)
    assert [d.outcome.kind for d in done] == ["ack"] * 3
    assert len({d.outcome.result_json for d in done}) == 3


def test_jobs_waiting_for_a_thread_can_be_taken_back(q: Queue, app: App, claim: Claim,
                                                     start: Any, posted: Posted) -> None:
    """Prefetched jobs wait for a thread; a drain takes them back (to hand them to the queue),
    and they never run."""
    go = threading.Event()
    ran: list[int] = []

    @app.task
    def hold(payload):
        ran.append(payload)
        go.wait(10)
        return payload

    first, *waiting = claim(q, 1, 2, 3, type="hold")
    executor = start(concurrency=1)
    executor.submit(first)
    wait_until(lambda: ran == [1], message="the first job to start")
    for running in waiting:
        executor.submit(running)
    assert executor.backlog() == 2
    assert executor.take_unstarted() == waiting
    assert executor.backlog() == 0 and executor.take_unstarted() == []
    go.set()
    posted.wait_for(1)
    executor.stop(timeout=5)
    assert ran == [1] and [d.running for d in posted] == [first]
    assert all(r.started is None for r in waiting)


def test_an_abandoned_job_a_thread_takes_is_skipped(q: Queue, app: App, claim: Claim, start: Any,
                                                    posted: Posted) -> None:
    ran: list[int] = []

    @app.task
    def work(payload):
        ran.append(payload)
        return payload

    gone, kept = claim(q, 1, 2)
    gone.abandoned = True
    executor = start(concurrency=1)
    executor.submit(gone)
    executor.submit(kept)
    (done,) = posted.wait_for(1)
    executor.stop(timeout=5)
    assert ran == [2] and done.running is kept and len(posted) == 1


def test_stop_lets_a_running_job_finish_and_post(q: Queue, app: App, claim: Claim, start: Any,
                                                 posted: Posted) -> None:
    started, go = threading.Event(), threading.Event()

    @app.task
    def hold(payload):
        started.set()
        go.wait(10)
        return "finished"

    (running,) = claim(q, None, type="hold")
    executor = start(concurrency=2)
    executor.submit(running)
    assert started.wait(5)
    stopper = threading.Thread(target=executor.stop, kwargs={"timeout": 10})
    stopper.start()
    go.set()
    stopper.join(10)
    assert not stopper.is_alive()
    (done,) = posted
    assert done.outcome.kind == "ack" and done.outcome.result_json == '"finished"'


def test_stop_is_prompt_when_idle(app: App, start: Any) -> None:
    @app.task
    async def coro(payload):
        return payload

    executor = start(concurrency=4)  # four threads and the async loop
    t0 = time.monotonic()
    executor.stop(timeout=5)
    assert time.monotonic() - t0 < 1
    assert not any(t.name.startswith(("relayq-exec-", "relayq-async"))
                   for t in threading.enumerate())


def test_each_handler_run_is_told_to_the_events_as_it_starts_and_ends(
        q: Queue, app: App, claim: Claim, posted: Posted) -> None:
    """`started` and `finished` (what a process of --processes reports to its supervisor) come
    from the thread that runs the handler, around it, for a handler that raises too."""
    seen: list[tuple[str, str, bool]] = []
    running_now = threading.Event()

    class Events(WorkerEvents):
        def started(self, job: Any) -> None:
            seen.append(("started", job.id, running_now.is_set()))

        def finished(self, job: Any) -> None:
            seen.append(("finished", job.id, running_now.is_set()))

    @app.task
    def work(payload):
        running_now.set()
        try:
            if payload == "boom":
                raise ValueError("boom")
        finally:
            running_now.clear()

    ok, boom = claim(q, "fine", "boom", type="work")
    executor = Executor(app, 1, posted.append, Events())
    executor.start()
    try:
        executor.submit(ok)
        executor.submit(boom)
        posted.wait_for(2)
    finally:
        executor.stop(timeout=5)
    assert seen == [("started", ok.job.id, False), ("finished", ok.job.id, False),
                    ("started", boom.job.id, False), ("finished", boom.job.id, False)]


def test_outcome_of_sets_current_job_only_while_running(q: Queue, claim: Claim) -> None:
    (running,) = claim(q, None)
    seen = outcome_of(running, lambda: current_job().id)
    assert seen.outcome.result_json == f'"{running.job.id}"'
    with pytest.raises(RuntimeError, match="outside a relayq task handler"):
        current_job()
    outcome_of(running, lambda: 1 / 0)
    with pytest.raises(RuntimeError, match="outside a relayq task handler"):
        current_job()


def test_outcome_of_lets_interrupts_through(q: Queue, claim: Claim) -> None:
    (running,) = claim(q, None)

    def interrupted() -> Any:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        outcome_of(running, interrupted)
    with pytest.raises(RuntimeError, match="outside a relayq task handler"):
        current_job()


def test_outcome_of_carries_the_jobs_lease(q: Queue, claim: Claim) -> None:
    (running,) = claim(q, None)

    def invalid() -> Any:
        raise InvalidPayload("bad input")

    for run in (lambda: "ok", invalid):
        outcome = outcome_of(running, run).outcome
        assert (outcome.job_id, outcome.lease) == (running.job.id, running.job.lease)
