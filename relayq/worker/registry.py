"""`Registry`: keeps this worker process's entry in the workers registry alive
(relayq.worker_registry: host, pid, queues, concurrency, busy slots, the jobs it holds, started,
last seen). Written once at start (the worker is listed at once), refreshed every `interval_s`
on its own thread (reading the in-flight jobs under their lock), deleted at a graceful stop; a
process that dies without stopping is gone once its entry's TTL (three intervals) ends.

Where the entry goes is a `RegistryStore`: Redis (`RedisStore`, the default), or a
relayq-server for a worker over HTTP (relayq.worker.source.HttpRegistryStore: PUT and DELETE
/api/workers/{id}, which write the same keys)."""

from __future__ import annotations

import logging
import os
import socket
from typing import Protocol

from ..connection import RedisClient
from ..limits import WORKER_REFRESH_MS
from ..logs import log_event
from ..worker_registry import WorkerEntry, remove_entry, write_entry
from .inflight import InFlight
from .periodic import Periodic

log = logging.getLogger("relayq.worker")

TTL_REFRESHES = 3  # refreshes missed before an entry expires


class RegistryStore(Protocol):
    def write(self, entry: WorkerEntry, ttl_ms: int) -> None:
        """Writes or refreshes `entry` (setting its started_at the first time)."""

    def remove(self, worker_id: str) -> None: ...


class RedisStore:
    def __init__(self, redis: RedisClient) -> None:
        self.redis = redis

    def write(self, entry: WorkerEntry, ttl_ms: int) -> None:
        write_entry(self.redis, entry, ttl_ms)

    def remove(self, worker_id: str) -> None:
        remove_entry(self.redis, worker_id)


class Registry(Periodic):
    def __init__(self, redis: RedisClient | None, worker_id: str, queues: list[str],
                 concurrency: int, inflight: InFlight,
                 interval_s: float = WORKER_REFRESH_MS / 1000, *,
                 store: RegistryStore | None = None) -> None:
        """`store`: where the entry goes (default: `redis`)."""
        super().__init__("registry", interval_s, back_off=True)
        if store is None:
            assert redis is not None, "give redis or store"
            store = RedisStore(redis)
        self.store = store
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
        self.store.write(self.entry, self.ttl_ms)

    def stop(self, timeout: float = 5.0) -> None:
        """Stops refreshing and takes the worker out of the registry."""
        super().stop(timeout)
        try:
            self.store.remove(self.entry.id)
        except Exception as e:  # the entry expires on its own
            log_event(log, logging.WARNING, "registry.failed", error=str(e))
