"""The dispatcher, by its public behaviour only (start, the messages of its inbox, join), so
these tests hold while its script replies are reworked. With a real executor and the real
redis-server: it claims jobs into its free slots, never holding more than its capacity, and
records their outcomes; `Stop` hands prefetched jobs back at once and ends the thread once the
running ones are recorded; `Stop(release=True)` hands running jobs back too."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from relayq import App, Queue
from relayq.job import Job
from relayq.worker.dispatcher import Dispatcher, Stop
from relayq.worker.events import WorkerEvents
from relayq.worker.executor import Executor
from relayq.worker.inflight import InFlight
from tests.support.helpers import wait_until


class Seen(WorkerEvents):
    """How many jobs were held at most (at each claim), and what was recorded."""

    def __init__(self, inflight: InFlight) -> None:
        self.inflight = inflight
        self.most_held = 0
        self.recorded: list[tuple[str, str, str]] = []

    def claimed(self, queue: str, jobs: list[Job[Any]], now_ms: float) -> None:
        self.most_held = max(self.most_held, len(self.inflight) + len(jobs))

    def settled(self, job: Job[Any], kind: str, status: str) -> None:
        self.recorded.append((job.id, kind, status))


class Parts:
    def __init__(self, dispatcher: Dispatcher, executor: Executor, inflight: InFlight,
                 inbox: queue.SimpleQueue[Any], seen: Seen) -> None:
        self.dispatcher, self.executor, self.inflight = dispatcher, executor, inflight
        self.inbox, self.seen = inbox, seen

    def stop(self, release: bool = False) -> None:
        self.inbox.put(Stop(release))
        self.dispatcher.join(10)
        assert not self.dispatcher._thread.is_alive(), "the dispatcher did not finish"


@pytest.fixture
def app() -> App:
    return App("dispatcher-test")


@pytest.fixture
def start(app: App) -> Iterator[Callable[..., Parts]]:
    started: list[Parts] = []

    def start(queues: list[Queue[Any]], *, concurrency: int = 2, capacity: int = 4) -> Parts:
        inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        inflight = InFlight()
        seen = Seen(inflight)
        executor = Executor(app, concurrency, inbox.put)
        dispatcher = Dispatcher(queues, None, executor, inflight, seen, capacity=capacity,
                                visibility_ms=30_000, worker_id="dispatcher-test", inbox=inbox)
        executor.start()
        dispatcher.start()
        parts = Parts(dispatcher, executor, inflight, inbox, seen)
        started.append(parts)
        return parts

    yield start
    for parts in started:
        parts.inbox.put(Stop(release=True))
        parts.dispatcher.join(10)
        parts.dispatcher.stop_wakers()
        parts.executor.stop(timeout=5)


def test_claims_what_is_ready_and_records_each_outcome(q: Queue, app: App, start: Any) -> None:
    @app.task(default=True)
    def work(payload):
        if payload % 4 == 0:
            raise RuntimeError("fails")
        return payload * 10

    q.configure(backoff_base_ms=600_000, backoff_cap_ms=600_000)
    ids = [q.enqueue(n).id for n in range(1, 21)]
    parts = start([q], concurrency=2, capacity=4)
    wait_until(lambda: q.stats().running == 0 and q.stats().ready == 0, message="all recorded")
    for n, jid in enumerate(ids, 1):
        job = q.get(jid)
        assert (job.state, job.result) == (("scheduled", None) if n % 4 == 0 else
                                           ("succeeded", n * 10))
    wait_until(lambda: len(parts.seen.recorded) == 20, message="every outcome reported")
    assert {j: (kind, status) for j, kind, status in parts.seen.recorded} == {
        jid: ("nack" if n % 4 == 0 else "ack", "ok") for n, jid in enumerate(ids, 1)}
    assert parts.seen.most_held <= 4
    parts.stop()
    assert len(parts.inflight) == 0


def test_never_holds_more_than_its_capacity(q: Queue, app: App, start: Any) -> None:
    turn = threading.Semaphore(0)

    @app.task(default=True)
    def slow(payload):
        assert turn.acquire(timeout=10)
        return payload

    q.enqueue_many(list(range(8)))
    parts = start([q], concurrency=1, capacity=3)
    wait_until(lambda: q.stats().running == 3, message="its capacity claimed")
    for _ in range(8):
        turn.release()
    wait_until(lambda: q.stats().succeeded == 8, message="all eight")
    assert parts.seen.most_held == 3
    parts.stop()


def test_stop_returns_prefetched_jobs_then_finishes_the_running_one(
        q: Queue, app: App, start: Any) -> None:
    started, go = threading.Event(), threading.Event()

    @app.task(default=True)
    def hold(payload):
        started.set()
        go.wait(10)
        return "done"

    first, *prefetched = [q.enqueue(n).id for n in range(3)]
    parts = start([q], concurrency=1, capacity=3)
    assert started.wait(5)
    wait_until(lambda: q.stats().running == 3, message="one running, two prefetched")
    parts.inbox.put(Stop(release=False))
    wait_until(lambda: q.stats().ready == 2, message="the prefetched jobs handed back")
    assert all((q.get(j).state, q.get(j).attempts) == ("ready", 0) for j in prefetched)
    assert parts.dispatcher._thread.is_alive()  # still waiting for the running job
    go.set()
    parts.stop()
    assert q.get(first).state == "succeeded" and q.get(first).result == "done"


def test_stop_with_release_hands_running_jobs_back(q: Queue, app: App, start: Any) -> None:
    started, go = threading.Event(), threading.Event()

    @app.task(default=True)
    def hold(payload):
        started.set()
        go.wait(10)
        return "too late"

    jid = q.enqueue("x").id
    parts = start([q], concurrency=1, capacity=1)
    assert started.wait(5)
    parts.stop(release=True)  # ends without waiting for the handler
    job = q.get(jid)
    assert (job.state, job.attempts, job.lease) == ("ready", 0, None)
    go.set()
