"""The user's task app: `app = App()`, then `@app.task` on each handler. A worker started with
`relayq-worker --app module:app` runs a job by calling the task named by the job's `type`.

A handler takes the job's payload and returns its result (any JSON value). It fails by raising:
`Retry(delay_ms=...)` asks for a retry after a given delay, `Fail(...)` sends the job straight to
the dead-letter queue, any other exception retries with the queue's backoff. `current_job()`
gives the running job inside a handler (a `RunningJob`: the job's fields, plus `cancelled`,
`check_cancelled()` and `progress()`).

Each `@app.task` returns a `Task`, a handle that is still the plain function (`send_email(p)`
calls the handler, so it can be unit-tested) and that enqueues jobs for itself:
`send_email.enqueue(payload, **options)` and `send_email.enqueue_many([...])`. The job's type is
the task's name; its queue is the task's `queue=`, else the app's (`App(queue=...)`, default
`"default"`); its Redis is the app's (`App(redis=URL or client)`, default $RELAYQ_REDIS_URL, else
redis://localhost:6379/0), connected at the first enqueue. A handle goes through the same `Queue`
methods as everything else: it only fills in the type and picks the queue.

`@app.task(cron="0 9 * * *", tz="Europe/Paris")` or `@app.task(every=60)` (seconds, or a
timedelta) also makes the task periodic: a schedule named after the task, on its queue, that
every worker serving that queue saves at start (`Queue.schedule`, an upsert: the same
definition changes nothing). Those schedules are marked as the app's; one the app no longer
defines is not deleted silently: workers warn about it, and `relayq-worker --prune-schedules`
deletes it (docs/periodic.md).
"""

from __future__ import annotations

import contextvars
import dataclasses
import datetime
import importlib
import inspect
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from ..codec import dumps
from ..connection import RedisClient, connect
from ..errors import Cancelled, InvalidArgument, RelayqError
from ..job import Job
from ..keys import check_queue_name
from ..limits import PROGRESS_INTERVAL_MS
from ..options import JobOptions, check_fraction
from ..queue import Queue
from ..results import EnqueueResult, NewJob
from ..schedules import ORIGIN_APP, check_definition, check_schedule_id

DEFAULT_QUEUE = "default"  # the queue of an app's tasks when neither the task nor the app names one

class RunningJob:
    """The job a handler runs, as `current_job()` gives it: every field of its `Job` (`id`,
    `payload`, `attempts`, ...) and what a running job can do.

    `cancelled` turns true once the job's cancel was requested (the worker learns it from its
    lease heartbeat, within about CANCEL_CHECK_MS); `check_cancelled()` raises
    `relayq.Cancelled` then. A handler that goes on anyway is not stopped: its job still ends
    `cancelled` (the settle scripts decide), never retried.

    `progress(fraction, info=None)` records how far the job got (fenced by its lease; shown in
    its view and its queue's event log), at most once per PROGRESS_INTERVAL_MS: a call sooner
    than that after the last write is dropped, unless `fraction` is 1."""

    __slots__ = ("job", "_queue", "_cancel", "_last_progress")

    def __init__(self, job: Job[Any], queue: Queue[Any], cancel: threading.Event) -> None:
        self.job = job
        self._queue = queue
        self._cancel = cancel
        self._last_progress = -float("inf")

    def __getattr__(self, name: str) -> Any:  # only for what is not found on RunningJob
        if name == "job":  # not set yet (a copy made without __init__): no endless lookup
            raise AttributeError(name)
        return getattr(self.job, name)

    def __repr__(self) -> str:
        return f"RunningJob({self.job.id!r})"

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check_cancelled(self) -> None:
        """Raises `relayq.Cancelled` when the job's cancel was requested."""
        if self._cancel.is_set():
            raise Cancelled(f"job {self.job.id} was cancelled")

    def progress(self, fraction: float, info: Any = None) -> None:
        """Records `fraction` (0..1) and optional `info` (any JSON value within the payload
        limit) on the job; InvalidArgument or PayloadTooLarge for bad input, nothing stored."""
        check_fraction(fraction)
        now = time.monotonic()
        if fraction < 1 and (now - self._last_progress) * 1000 < PROGRESS_INTERVAL_MS:
            return
        self._last_progress = now
        if self._queue.progress(self.job.id, self.job.lease or "", fraction, info):
            self._cancel.set()


_current_job: contextvars.ContextVar[RunningJob | None] = contextvars.ContextVar(
    "relayq_current_job", default=None
)


def current_job() -> RunningJob:
    """The job the calling handler is running (RuntimeError outside a handler)."""
    job = _current_job.get()
    if job is None:
        raise RuntimeError("current_job() called outside a relayq task handler")
    return job


class Retry(Exception):  # noqa: N818 - reads as `raise Retry(...)`, like Dramatiq's
    """Raise in a handler to retry the job after `delay_ms` (None: the queue's backoff)."""

    def __init__(self, message: str = "retry requested", delay_ms: int | None = None) -> None:
        super().__init__(message)
        self.delay_ms = delay_ms


class Fail(Exception):  # noqa: N818
    """Raise in a handler to fail the job for good: straight to the dead-letter queue."""


class Task:
    """A registered handler, and the handle that enqueues its jobs. `name` is the job type it
    handles, `queue` the name of the queue its jobs go to. Calling it calls the handler."""

    def __init__(self, fn: Callable[..., Any], name: str, queue: str = DEFAULT_QUEUE,
                 app: App | None = None, schedule: dict[str, Any] | None = None) -> None:
        self.fn = fn
        self.name = name
        self.queue = check_queue_name(queue)
        self.app = app
        self.is_async = inspect.iscoroutinefunction(fn)
        # Queue.schedule's arguments (besides the id, which is the task's name), or None
        self.schedule = schedule

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Task({self.name!r}, queue={self.queue!r})"

    def enqueue(self, payload: Any, **options: Any) -> EnqueueResult:
        """Adds one job for this task to its queue: `Queue.enqueue` with `type` set to the
        task's name. Options as there (priority, delay_ms or run_at, max_attempts,
        idempotency_key, timeout_ms, backoff_base_ms, backoff_cap_ms, replicas, ...)."""
        self._check_type(options.get("type"))
        return self._queue().enqueue(payload, **{**options, "type": self.name})

    def enqueue_many(self, jobs: Iterable[Any], *, replicas: int | None = None,
                     replica_timeout_ms: int | None = None,
                     **options: Any) -> list[EnqueueResult]:
        """Adds many jobs for this task in one round trip (`Queue.enqueue_many`): each item is
        a payload, which gets `options`, or a `NewJob` with options of its own."""
        self._check_type(options.get("type"))
        common = JobOptions(**{**options, "type": self.name})
        typed = []
        for job in jobs:
            if isinstance(job, NewJob):
                self._check_type(job.options.type)
                job = NewJob(job.payload, dataclasses.replace(job.options, type=self.name))
            else:
                job = NewJob(job, common)
            typed.append(job)
        return self._queue().enqueue_many(typed, replicas=replicas,
                                          replica_timeout_ms=replica_timeout_ms)

    def _check_type(self, job_type: str | None) -> None:
        if job_type not in (None, self.name):
            raise InvalidArgument(f"the jobs of task {self.name!r} have type {self.name!r}, "
                                  f"not {job_type!r}: enqueue through the task of that name")

    def _queue(self) -> Queue[Any]:
        if self.app is None:
            raise RelayqError(f"task {self.name!r} belongs to no App: register it with "
                              "@app.task to enqueue through it")
        return self.app.queue(self.queue)


class App:
    """A registry of tasks by job type. `default` handles jobs whose type has no task.

    `queue`: the queue of the tasks that do not name one (`@app.task(queue=...)`), default
    "default". `redis`: where the tasks' handles enqueue (a URL or a client from
    `relayq.connect()`; default $RELAYQ_REDIS_URL, else redis://localhost:6379/0), and what
    `relayq-worker --app` serves when it is given no --redis."""

    def __init__(self, name: str = "relayq", *, queue: str = DEFAULT_QUEUE,
                 redis: RedisClient | str | None = None) -> None:
        self.name = name
        self.default_queue = check_queue_name(queue)
        self.redis = redis
        self.tasks: dict[str, Task] = {}
        self.default: Task | None = None
        self._queues: dict[str, Queue[Any]] = {}
        self._lock = threading.Lock()

    def task(self, fn: Callable[..., Any] | None = None, *, name: str | None = None,
             queue: str | None = None, default: bool = False, cron: str | None = None,
             every: float | datetime.timedelta | None = None, tz: str | None = None,
             payload: Any = None, misfire: str | None = None, **job_options: Any) -> Any:
        """Decorator: `@app.task` or `@app.task(name="emails.send", queue="emails",
        default=True)`. Returns the `Task` handle. With `cron` (and `tz`) or `every`
        (seconds or a timedelta) the task is also periodic: workers save its schedule at
        start, making jobs of `payload` (default null) with `misfire` and the `job_options`
        of a schedule (priority, max_attempts, timeout_ms, ...)."""
        schedule = None
        if "type" in job_options:
            raise InvalidArgument("a periodic task's jobs have its name as their type")
        if cron is not None or every is not None:
            if isinstance(every, datetime.timedelta):
                every = every.total_seconds()
            if every is not None and (isinstance(every, bool)
                                      or not isinstance(every, (int, float))):
                raise InvalidArgument("every must be a number of seconds or a timedelta")
            schedule = {"cron": cron, "tz": tz, "misfire": misfire, "payload": payload,
                        "every_ms": None if every is None else round(every * 1000),
                        **job_options}
            # checked now: a bad cron fails when the app is imported, not in a worker later
            check_definition(dumps(payload), cron=cron, every_ms=schedule["every_ms"], tz=tz,
                             misfire=misfire, options=job_options)
        elif tz is not None or misfire is not None or job_options:
            raise InvalidArgument("tz, misfire and job options are for periodic tasks: give "
                                  "cron= or every=")

        def register(f: Callable[..., Any]) -> Task:
            task = Task(f, name or f.__name__, queue or self.default_queue, self, schedule)
            if schedule is not None:  # its schedule is named after it
                check_schedule_id(task.name)
            if task.name in self.tasks:
                raise RelayqError(f"two tasks named {task.name!r}")
            self.tasks[task.name] = task
            if default:
                self.default = task
            return task

        return register(fn) if fn is not None else register

    def periodic_tasks(self) -> list[Task]:
        """The tasks with a schedule."""
        return [task for task in self.tasks.values() if task.schedule is not None]

    def handler_for(self, job_type: str | None) -> Task | None:
        return self.tasks.get(job_type or "", self.default)

    def queue_names(self) -> list[str]:
        """The queues of the app's tasks, in the order they were first named (the app's
        default queue when it has no task yet): what `relayq-worker --app` serves by
        default."""
        names = dict.fromkeys(task.queue for task in self.tasks.values())
        return list(names) or [self.default_queue]

    def queue(self, name: str | None = None) -> Queue[Any]:
        """The `Queue` named `name` (default: the app's default queue) on the app's Redis,
        made (and the Redis connected) on first use, then kept."""
        name = name or self.default_queue
        with self._lock:
            found = self._queues.get(name)
            if found is None:
                if self.redis is None or isinstance(self.redis, str):
                    self.redis = connect(self.redis)
                found = self._queues[name] = Queue(name, self.redis)
            return found

    def use_redis(self, redis: RedisClient | str) -> None:
        """Points the app's handles at another Redis: the worker gives its own, so that a
        handler enqueueing through a handle enqueues where the worker works."""
        with self._lock:
            self.redis = redis
            self._queues.clear()


def save_schedules(app: App, queues: Iterable[Queue[Any]], prune: bool = False) -> list[str]:
    """Saves the schedules of the app's periodic tasks on the queues given (marked as the
    app's: origin "app"); the same definition saved again changes nothing, so any number of
    workers may do this at start. Returns the app's schedules on those queues that the app no
    longer defines, as "queue/id"; with `prune` they are deleted, else left running (a worker
    of an older version of the app may still define them)."""
    stale = []
    for queue in queues:
        mine = {task.name: task for task in app.periodic_tasks() if task.queue == queue.name}
        for name, task in mine.items():
            options = dict(task.schedule or {})
            queue.schedule(name, options.pop("payload"), origin=ORIGIN_APP, type=name,
                           **options)
        for schedule in queue.schedules():
            if schedule.origin == ORIGIN_APP and schedule.id not in mine:
                stale.append(f"{queue.name}/{schedule.id}")
                if prune:
                    queue.unschedule(schedule.id)
    return stale


def load_app(spec: str) -> App:
    """Imports `module:attr` and returns the App it names. The working directory is searched
    first, as Celery, RQ and Dramatiq do: `relayq-worker --app tasks:app` works beside
    tasks.py without PYTHONPATH."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise InvalidArgument(f"--app expects module:attr, got {spec!r}")
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise InvalidArgument(f"cannot import {module_name!r} for --app: {e} (looked in the "
                              f"working directory {cwd} and on PYTHONPATH)") from e
    if not hasattr(module, attr):
        raise InvalidArgument(f"{module_name!r} has no attribute {attr!r} for --app")
    app = getattr(module, attr)
    if not isinstance(app, App):
        raise InvalidArgument(f"{spec} is not a relayq App (got {type(app).__name__})")
    return app
