"""The maintenance loop: the reaper (expired leases back to ready, or dead), the promoter
(due scheduled jobs to ready) and the schedule firer (due ticks of periodic schedules become
jobs: relayq/schedules.py) for every queue this worker serves. Each run is one atomic
script, so any number of workers may run it at once; they only ever find what is still due.
Runs every `interval_s` (with jitter, so that workers spread out), riding out Redis outages;
any other failure of a round is logged and the next round runs as usual. One queue failing does
not keep the others from being maintained."""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..logs import log_event
from .events import WorkerEvents
from .periodic import Periodic
from .source import WorkQueue

log = logging.getLogger("relayq.worker")


class Maintenance(Periodic):
    def __init__(self, queues: list[WorkQueue], events: WorkerEvents,
                 interval_s: float = 1.0, setup: Callable[[], None] | None = None) -> None:
        super().__init__("maintenance", interval_s, jitter=True, back_off=True)
        self.queues = queues
        self.events = events
        # run before the first round until it succeeds (the app's schedules are saved there,
        # so that a Redis away at start delays them instead of losing them)
        self.setup = setup

    def start(self) -> None:
        if self.setup is not None:
            try:
                self.setup()
                self.setup = None
            except Exception as e:  # retried by the rounds
                log_event(log, logging.WARNING, "maintenance.setup_failed", error=str(e))
        super().start()

    def tick(self) -> None:
        """One round over every queue. A queue that fails (a key of the wrong type; on Redis
        Cluster, its node failing over) does not hold up the queues after it: the round's first
        failure is raised once every queue had its turn (Periodic logs it, backs off on an
        outage)."""
        if self.setup is not None:
            self.setup()
            self.setup = None
        failure: Exception | None = None
        for queue in self.queues:
            try:
                self._maintain(queue)
            except Exception as e:  # raised below, after the other queues
                failure = failure or e
        if failure is not None:
            raise failure

    def _maintain(self, queue: WorkQueue) -> None:
        requeued, dead = queue.reap()
        if requeued or dead:
            log_event(log, logging.WARNING, "jobs.reaped", queue=queue.name,
                      requeued=requeued, dead=dead)
            self.events.reaped(queue.name, requeued, dead)
        queue.promote()
        fired = queue.fire_schedules()  # a queue without schedules: one read of a missing key
        if fired.fired or fired.missed:
            if fired.missed:
                log_event(log, logging.WARNING, "schedules.misfired", queue=queue.name,
                          missed=fired.missed)
            self.events.schedules_fired(queue.name, fired.fired, fired.missed)
