"""The worker runtime: `Worker`, the task `App`, and what handlers use (`Retry`, `Fail`,
`current_job`). One module per component: dispatcher (claims, settles), executor (runs
handlers), waker (idle blocking), lease_keeper (heartbeats, timeouts), maintenance (reaper,
promoter), registry (its entry in the workers registry), runtime (composition and
lifecycle), source (the seam to the queues: `relayq.Queue` over Redis, or `HttpQueue` through a
relayq-server for `relayq-worker --server`)."""

from .app import App, Fail, Retry, Task, current_job, load_app
from .events import WorkerEvents
from .runtime import Worker

__all__ = ["App", "Fail", "Retry", "Task", "Worker", "WorkerEvents", "current_job", "load_app"]
