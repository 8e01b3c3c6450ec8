"""The jobs a worker holds right now, shared by the dispatcher (adds, removes), the lease keeper
(reads, to extend leases and spot timeouts) and the runtime (reads, to release on shutdown).
All access goes through one lock."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from ..job import Job
from .source import WorkQueue


@dataclass(slots=True, eq=False)
class Running:
    job: Job[Any]
    queue: WorkQueue
    started: float | None = None  # monotonic time its handler began; None while prefetched
    abandoned: bool = False  # timed out, released or lease lost: its outcome is not recorded
    # Set once the lease keeper hears the job's cancel was requested (current_job().cancelled).
    cancel: threading.Event = field(default_factory=threading.Event)


class InFlight:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, Running] = {}

    def add(self, running: Running) -> None:
        with self._lock:
            self._jobs[running.job.id] = running

    def remove(self, job_id: str) -> Running | None:
        with self._lock:
            return self._jobs.pop(job_id, None)

    def holds(self, running: Running) -> bool:
        """True while `running` is still held (the dispatcher removes a job before it records
        the job's outcome)."""
        with self._lock:
            return self._jobs.get(running.job.id) is running

    def snapshot(self) -> list[Running]:
        with self._lock:
            return list(self._jobs.values())

    def __len__(self) -> int:
        return len(self._jobs)
