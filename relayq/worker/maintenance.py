"""The maintenance loop: the reaper (expired leases back to ready, or dead) and the promoter
(due scheduled jobs to ready) for every queue this worker serves. Each run is one atomic
script, so any number of workers may run it at once; they only ever find what is still due.
Runs every `interval_s` (with jitter, so that workers spread out), riding out Redis outages;
any other failure of a round is logged and the next round runs as usual."""

from __future__ import annotations

import logging
import random
import threading
from typing import Any

from ..errors import RedisUnavailable
from ..logs import log_event
from ..queue import Queue
from ..retry import ReconnectBackoff
from .events import WorkerEvents

log = logging.getLogger("relayq.worker")


class Maintenance:
    def __init__(self, queues: list[Queue[Any]], events: WorkerEvents,
                 interval_s: float = 1.0) -> None:
        self.queues = queues
        self.events = events
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="relayq-maintenance",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        backoff = ReconnectBackoff()
        while not self._stop.wait(self.interval_s * random.uniform(0.5, 1.0)):
            try:
                self.tick()
                backoff.reset()
            except RedisUnavailable as e:
                log_event(log, logging.WARNING, "redis.unavailable", part="maintenance",
                          error=str(e))
                backoff.wait(self._stop)
            except Exception:  # a bug: skip this round, keep the thread (jobs depend on it)
                log.exception("maintenance.failed")
                backoff.wait(self._stop)

    def tick(self) -> None:
        for queue in self.queues:
            requeued, dead = queue.reap()
            if requeued or dead:
                log_event(log, logging.WARNING, "jobs.reaped", queue=queue.name,
                          requeued=requeued, dead=dead)
                self.events.reaped(queue.name, requeued, dead)
            queue.promote()
