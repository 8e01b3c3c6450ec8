"""The worker runtime: `Worker`, the task `App`, and what handlers use (`Retry`, `Fail`,
`current_job`). One module per component: dispatcher (claims, settles), executor (runs
handlers), waker (idle blocking), lease_keeper (heartbeats, timeouts), maintenance (reaper,
promoter), runtime (composition and lifecycle)."""

from .app import App, Fail, Retry, Task, current_job, load_app
from .events import WorkerEvents
from .runtime import Worker

__all__ = ["App", "Fail", "Retry", "Task", "Worker", "WorkerEvents", "current_job", "load_app"]
