"""The executor: runs handlers on `concurrency` threads (and async handlers on one event loop)
and turns each finished job into an `Outcome` posted to the dispatcher's inbox. (With
`concurrency=0` it starts no thread: relayq.testing calls `run` itself.)

Only the executor's threads call user code. They touch nothing shared but the inbox.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import tracing
from ..codec import dumps
from ..errors import Cancelled, InvalidPayload
from ..logs import log_event
from ..results import Outcome
from .app import App, Fail, Retry, RunningJob, _current_job
from .events import WorkerEvents
from .inflight import Running

log = logging.getLogger("relayq.worker")
ASYNC_CANCEL_POLL_S = 0.05  # how often a thread waiting on an async handler looks for a cancel


@dataclass(slots=True)
class Done:
    running: Running
    outcome: Outcome
    duration_s: float


def outcome_of(running: Running, run: Callable[[], Any]) -> Done:
    """Calls `run()` (the handler on the job's payload) and records how it ended."""
    job = running.job
    lease = job.lease or ""
    start = time.perf_counter()
    token = _current_job.set(RunningJob(job, running.queue, running.cancel))
    try:
        result = run()
    except Retry as e:
        outcome = Outcome(job.id, lease, "nack", error=f"Retry: {e}", delay_ms=e.delay_ms)
    except Fail as e:
        outcome = Outcome(job.id, lease, "nack", error=f"Fail: {e}", retry=False)
    except BaseException as e:  # noqa: BLE001 - a handler's failure is the job's failure
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        outcome = Outcome(job.id, lease, "nack", error=_describe(e))
    else:
        # Encoded apart from the call: an InvalidPayload the handler raised itself is its own
        # failure (with its traceback), not a result that failed to encode.
        try:
            outcome = Outcome(job.id, lease, "ack",
                              result_json=dumps(result) if result is not None else "")
        except InvalidPayload as e:
            outcome = Outcome(job.id, lease, "nack", error=f"handler result is not JSON: {e}")
    finally:
        _current_job.reset(token)
    return Done(running, outcome, time.perf_counter() - start)


def _describe(e: BaseException) -> str:
    text = "".join(traceback.format_exception(type(e), e, e.__traceback__, limit=20))
    return text[-8192:]


class Executor:
    def __init__(self, app: App, concurrency: int, post: Callable[[Any], None],
                 events: WorkerEvents | None = None) -> None:
        self.app = app
        self.events = events or WorkerEvents()
        self.concurrency = concurrency
        self.post = post
        self._work: queue.SimpleQueue[Running | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None

    def start(self) -> None:
        for i in range(self.concurrency):
            t = threading.Thread(target=self._serve, name=f"relayq-exec-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        if any(task.is_async for task in self.app.tasks.values()):
            self._loop = asyncio.new_event_loop()
            self._loop_thread = threading.Thread(target=self._loop.run_forever,
                                                 name="relayq-async", daemon=True)
            self._loop_thread.start()

    def submit(self, running: Running) -> None:
        self._work.put(running)

    def backlog(self) -> int:
        """Jobs waiting for a thread (approximate: the threads take from it concurrently)."""
        return self._work.qsize()

    def take_unstarted(self) -> list[Running]:
        """Removes and returns the jobs waiting for a thread (prefetched, never started)."""
        taken: list[Running] = []
        while True:
            try:
                item = self._work.get_nowait()
            except queue.Empty:
                return taken
            if item is None:  # a stop sentinel: keep it for the threads
                self._work.put(None)
                return taken
            taken.append(item)

    def stop(self, timeout: float) -> None:
        """Asks the threads to finish after their current job; waits up to `timeout`."""
        for _ in self._threads:
            self._work.put(None)
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._loop_thread:
                self._loop_thread.join(max(0.0, deadline - time.monotonic()))

    def _serve(self) -> None:
        while (running := self._work.get()) is not None:
            if running.abandoned:
                continue
            running.started = time.monotonic()
            self.events.started(running.job)
            done = self.run(running)
            self.events.finished(running.job)
            self.post(done)

    def run(self, running: Running) -> Done:
        """Runs one job's handler on the calling thread (an async one on the executor's loop)
        and says how it ended: what each handler thread does, and what relayq.testing calls
        to run jobs in a test's own process."""
        job = running.job
        task = self.app.handler_for(job.type)
        if running.cancel.is_set():  # cancelled while prefetched: its handler never starts
            def run() -> Any:
                raise Cancelled(f"job {job.id} was cancelled before it started")
        elif task is None:
            def run() -> Any:
                raise Fail(f"no task handles job type {job.type!r}")
        elif task.is_async:
            assert self._loop is not None

            def run() -> Any:
                coro = task.fn(job.payload)
                future = asyncio.run_coroutine_threadsafe(
                    _with_job(_current_job.get(), coro), self._loop)
                deadline = time.monotonic() + job.timeout_ms / 1000 if job.timeout_ms else None
                # Waits in slices so that a cancel (set by the lease keeper) cancels the task:
                # the coroutine gets CancelledError at its next await.
                while True:
                    left = None if deadline is None else deadline - time.monotonic()
                    try:
                        return future.result(ASYNC_CANCEL_POLL_S if left is None
                                             else max(0.0, min(left, ASYNC_CANCEL_POLL_S)))
                    except TimeoutError:
                        if running.cancel.is_set():
                            future.cancel()
                            raise Cancelled(f"job {job.id} was cancelled") from None
                        if left is not None and left <= ASYNC_CANCEL_POLL_S:
                            future.cancel()
                            raise
        else:
            def run() -> Any:
                return task.fn(job.payload)
        with tracing.run_span(job) as span:  # parented to the job's enqueue, when traced
            done = outcome_of(running, run)
            tracing.set_outcome(span, done.outcome.kind == "ack", done.outcome.error)
        if running.cancel.is_set():
            log_event(log, logging.INFO, "job.cancelled", id=job.id, outcome=done.outcome.kind)
        elif done.outcome.kind == "nack":
            log_event(log, logging.INFO, "job.failed", id=job.id, attempt=job.attempts,
                      error=done.outcome.error.strip().splitlines()[-1][:200])
        else:
            log_event(log, logging.DEBUG, "job.succeeded", id=job.id,
                      ms=round(done.duration_s * 1000, 2))
        return done


async def _with_job(job: RunningJob | None, coro: Any) -> Any:
    token = _current_job.set(job)
    try:
        return await coro
    finally:
        _current_job.reset(token)
