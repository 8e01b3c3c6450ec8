"""The user's task app: `app = App()`, then `@app.task` on each handler. A worker started with
`relayq-worker --app module:app` runs a job by calling the task named by the job's `type`.

A handler takes the job's payload and returns its result (any JSON value). It fails by raising:
`Retry(delay_ms=...)` asks for a retry after a given delay, `Fail(...)` sends the job straight to
the dead-letter queue, any other exception retries with the queue's backoff. `current_job()`
gives the running job inside a handler.
"""

from __future__ import annotations

import contextvars
import inspect
from collections.abc import Callable
from typing import Any

from ..errors import InvalidArgument, RelayqError
from ..job import Job

_current_job: contextvars.ContextVar[Job[Any] | None] = contextvars.ContextVar(
    "relayq_current_job", default=None
)


def current_job() -> Job[Any]:
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
    """A registered handler. `name` is the job type it handles."""

    def __init__(self, fn: Callable[..., Any], name: str) -> None:
        self.fn = fn
        self.name = name
        self.is_async = inspect.iscoroutinefunction(fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Task({self.name!r})"


class App:
    """A registry of tasks by job type. `default` handles jobs whose type has no task."""

    def __init__(self, name: str = "relayq") -> None:
        self.name = name
        self.tasks: dict[str, Task] = {}
        self.default: Task | None = None

    def task(self, fn: Callable[..., Any] | None = None, *, name: str | None = None,
             default: bool = False) -> Any:
        """Decorator: `@app.task` or `@app.task(name="emails.send", default=True)`."""

        def register(f: Callable[..., Any]) -> Task:
            task = Task(f, name or f.__name__)
            if task.name in self.tasks:
                raise RelayqError(f"two tasks named {task.name!r}")
            self.tasks[task.name] = task
            if default:
                self.default = task
            return task

        return register(fn) if fn is not None else register

    def handler_for(self, job_type: str | None) -> Task | None:
        return self.tasks.get(job_type or "", self.default)


def load_app(spec: str) -> App:
    """Imports `module:attr` and returns the App it names."""
    import importlib

    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise InvalidArgument(f"--app expects module:attr, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise InvalidArgument(f"cannot import {module_name!r} for --app: {e}") from e
    if not hasattr(module, attr):
        raise InvalidArgument(f"{module_name!r} has no attribute {attr!r} for --app")
    app = getattr(module, attr)
    if not isinstance(app, App):
        raise InvalidArgument(f"{spec} is not a relayq App (got {type(app).__name__})")
    return app
