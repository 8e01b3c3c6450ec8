"""relayq.testing: for users' own tests of their tasks.

- `run_until_empty(app, queue)` runs an app's handlers in the test's process until the queue
  has no job left to run, exactly as a worker would: the worker's executor runs each handler
  (task by job type, `Retry`, `Fail`, `current_job()`, async handlers on an event loop) and its
  outcome is recorded with `Queue.settle`, the worker's own call, so retries, backoff and the
  dead-letter queue follow the same rules (they live in the Lua scripts).
- The pytest plugin (relayq/testing/plugin.py, registered by the `pytest11` entry point, so
  installing relayq enables it) adds opt-in fixtures, all named `relayq_*`: `relayq_redis_url`
  (a private Redis for the session: a `redis-server` from PATH, else the embedded one of the
  `dev` extra), `relayq_redis` (a client on it, emptied before each test) and `relayq_queue`
  (the "default" queue on it, the queue of an App's tasks unless they name another).

This package is an edge (pyproject.toml): it uses the core and the worker, never the tools or
the server. Importing it does not import pytest; only the plugin module does.
"""

from __future__ import annotations

import time
from typing import Any

from ..job import Job
from ..queue import Queue
from ..results import Outcome
from ..worker.app import App
from ..worker.executor import Executor
from ..worker.inflight import Running

__all__ = ["run_until_empty"]

WORKER_ID = "relayq.testing"
IDLE_POLL_S = 0.01  # between looks at a queue whose remaining jobs are not yet due


def run_until_empty(app: App, queue: Queue[Any], *, wait_retry_delays: bool = False,
                    timeout: float = 30.0) -> list[Job[Any]]:
    """Runs `app`'s handlers on the jobs of `queue`, one at a time in this process, until the
    queue holds none ready, scheduled or running; returns each job it ran, as it ended up
    (succeeded, dead, ...), in the order of their first run.

    Each job runs as a worker runs it (see the module's docstring), and `app`'s task handles
    are pointed at `queue`'s Redis first, as a worker points them at its own, so jobs that
    handlers enqueue land here too (and run, if they are on `queue`).

    A failed attempt is retried, or dead-lettered once its attempts are spent, by the same
    script as in a worker. The delay before a retry (the backoff, or `Retry(delay_ms=...)`) is
    a real delay: by default it is skipped, so the retry runs at once (the attempt still counts
    and `max_attempts` still holds); `wait_retry_delays=True` waits it out as a worker would.
    Jobs enqueued with a delay or a `run_at` are waited for until they are due. TimeoutError
    after `timeout` seconds with jobs left (a paused queue, a job held by someone else, a
    delay longer than the test wants). A job's `timeout_ms` stops an async handler (as in a
    worker); a synchronous handler that never returns blocks the test, as it would hold a
    worker's thread."""
    app.use_redis(queue.redis)
    executor = Executor(app, 0, lambda done: None)  # no threads: `run` is called here
    executor.start()
    ran: dict[str, None] = {}
    deadline = time.monotonic() + timeout
    try:
        while True:
            claimed = list(queue.claim(1, worker_id=WORKER_ID))
            if claimed:
                job = claimed[0]
                ran[job.id] = None
                outcome = executor.run(Running(job, queue)).outcome
                queue.settle([_without_delay(outcome, wait_retry_delays)], worker_id=WORKER_ID)
                continue
            stats = queue.stats()
            if stats.ready == stats.scheduled == stats.running == 0:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"queue {queue.name} still holds {stats.ready} ready, {stats.scheduled} "
                    f"scheduled and {stats.running} running job(s) after {timeout:g}s"
                    + (" (it is paused)" if stats.paused else ""))
            _, next_due_ms = queue.promote()
            time.sleep(min(left, IDLE_POLL_S if next_due_ms is None
                           else max(next_due_ms / 1000, IDLE_POLL_S)))
    finally:
        executor.stop(timeout=5.0)
    return [queue.get(job_id) for job_id in ran]


def _without_delay(outcome: Outcome, wait_retry_delays: bool) -> Outcome:
    """A retry that runs at once (a delay of 0: nack.lua makes the job ready), unless asked to
    wait."""
    if wait_retry_delays or outcome.kind != "nack" or not outcome.retry:
        return outcome
    return outcome._replace(delay_ms=0)
