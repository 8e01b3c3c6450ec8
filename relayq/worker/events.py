"""Lifecycle hooks of a worker. The runtime calls these at each job event; the default does
nothing. Prometheus metrics (relayq/metrics.py) and tests attach here, so that counting never
leaks into the runtime's own code. Called from the dispatcher thread unless noted."""

from __future__ import annotations

from typing import Any

from ..job import Job


class WorkerEvents:
    def claimed(self, queue: str, jobs: list[Job[Any]], now_ms: float) -> None:
        """Jobs handed to this worker; `now_ms` is the local wall clock, for wait times."""

    def started(self, job: Job[Any]) -> None:
        """A handler begins the job (called from the executor thread that runs it)."""

    def finished(self, job: Job[Any]) -> None:
        """The handler returned or raised, whatever becomes of its outcome (executor thread)."""

    def succeeded(self, job: Job[Any], duration_s: float) -> None: ...

    def failed(self, job: Job[Any], duration_s: float, error: str) -> None: ...

    def settled(self, job: Job[Any], kind: str, status: str) -> None:
        """An outcome reached Redis; status is ok, cancelled (its cancel was requested: the job
        ended cancelled), lease_lost or not_found."""

    def cancel_requested(self, job: Job[Any]) -> None:
        """The job's cancel was requested while this worker holds it (lease keeper thread)."""

    def throttled(self, queue: str) -> None: ...

    def reaped(self, queue: str, requeued: int, dead: int) -> None:
        """Called from the maintenance thread."""

    def schedules_fired(self, queue: str, fired: int, missed: int) -> None:
        """Jobs made from schedule ticks, and ticks found missed; from the maintenance
        thread."""
