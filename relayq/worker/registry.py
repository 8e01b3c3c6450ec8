"""`Registry`: keeps this worker process's entry in the workers registry alive
(relayq.worker_registry: host, pid, queues, concurrency, busy slots, the jobs it holds, started,
last seen). Written once at start (the worker is listed at once), refreshed every `interval_s`
on its own thread (reading the in-flight jobs under their lock), deleted at a graceful stop; a
process that dies without stopping is gone once its entry's TTL (three intervals) ends."""

from __future__ import annotations

import logging
import os
import socket

from ..connection import RedisClient
from ..limits import WORKER_REFRESH_MS
from ..logs import log_event
from ..worker_registry import WorkerEntry, remove_entry, write_entry
from .inflight import InFlight
from .periodic import Periodic

log = logging.getLogger("relayq.worker")

TTL_REFRESHES = 3  # refreshes missed before an entry expires


class Registry(Periodic):
    def __init__(self, redis: RedisClient, worker_id: str, queues: list[str], concurrency: int,
                 inflight: InFlight, interval_s: float = WORKER_REFRESH_MS / 1000) -> None:
        super().__init__("registry", interval_s, back_off=True)
        self.redis = redis
        self.inflight = inflight
        self.ttl_ms = max(1, round(interval_s * 1000 * TTL_REFRESHES))
        self.entry = WorkerEntry(worker_id, socket.gethostname(), os.getpid(), queues,
                                 concurrency)

    def start(self) -> None:
        """Registers the worker (a Redis outage here is only logged: the refreshes retry)."""
        try:
            self.tick()
        except Exception as e:  # the worker runs unlisted until a refresh succeeds
            log_event(log, logging.WARNING, "registry.failed", error=str(e))
        super().start()

    def tick(self) -> None:
        held = self.inflight.snapshot()
        self.entry.jobs = [running.job.id for running in held]
        self.entry.busy = sum(running.started is not None for running in held)
        write_entry(self.redis, self.entry, self.ttl_ms)

    def stop(self, timeout: float = 5.0) -> None:
        """Stops refreshing and takes the worker out of the registry."""
        super().stop(timeout)
        try:
            remove_entry(self.redis, self.entry.id)
        except Exception as e:  # the entry expires on its own
            log_event(log, logging.WARNING, "registry.failed", error=str(e))
