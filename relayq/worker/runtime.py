"""`Worker`: composes the components of a worker process and owns their lifecycle.

Start order (each depends on the ones before it):
  1. executor threads (run handlers; post outcomes to the inbox)
  2. dispatcher + its wakers (claims into free slots; settles outcomes)
  3. lease keeper (extends leases of running jobs; times them out)
  4. maintenance (saves the app's schedules first; then reaper, promoter, schedule firer),
     and the workflow fact mover (on Redis; nudged by the dispatcher)
  5. registry (the worker's entry in the workers registry, listed once the rest runs)
Stop order: the dispatcher drains: it stops claiming, waits up to `grace_s` for running jobs to
finish and records their outcomes; whatever is still running after the grace period is released
back to its queue without spending an attempt. Then 4, 3 and the rest stop; the registry entry
goes last, so that a draining worker is still listed with the jobs it holds.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import uuid
from typing import TYPE_CHECKING, Any

from ..connection import RedisClient, connect
from ..limits import DEFAULT_VISIBILITY_MS, WORKER_REFRESH_MS
from ..logs import log_event
from ..queue import Queue, default_worker_id
from ..replication import DEFAULT_TIMEOUT_MS
from .app import App, save_schedules
from .dispatcher import Dispatcher, Stop
from .events import WorkerEvents
from .executor import Executor
from .fact_mover import FactMover
from .inflight import InFlight
from .lease_keeper import LeaseKeeper
from .maintenance import Maintenance
from .registry import Registry
from .source import HttpQueue, HttpRegistryStore, WorkQueue

if TYPE_CHECKING:  # the SDK (urllib3) is loaded only by a worker over HTTP
    from ..client import Client

log = logging.getLogger("relayq.worker")


class Worker:
    """Runs the tasks of `app` for jobs of `queues` (strict priority in the order given, or
    weighted when `weights` are given), `concurrency` at a time. Up to `prefetch` more jobs
    (default: as many as `concurrency`) are claimed ahead, so that a thread that finishes a job
    starts the next without waiting for Redis; their leases are kept like those of running
    jobs, and on shutdown they go straight back. Use prefetch=0 for long jobs. `redis`: a URL or
    a client (default: the app's). `replicas`: the replicated-write mode for its acks and nacks
    (relayq/replication.py). `registry_interval_s`: how often it refreshes its entry in the
    workers registry (it expires after three). `enforce_timeouts=False` leaves `timeout_ms` of
    synchronous handlers to a supervisor (relayq/worker/supervisor.py), which can stop them.

    `client`: a `relayq.Client` instead of Redis: the worker then reaches its queues through
    that relayq-server alone (relayq.worker.source: the same components, each operation one
    request; the server's wake hub wakes its long polls; its registry entry is written
    through the server). `replicas` is the server's business then (not accepted)."""

    def __init__(self, queues: list[str], app: App, redis: RedisClient | str | None = None, *,
                 concurrency: int = 4, prefetch: int | None = None,
                 visibility_ms: int = DEFAULT_VISIBILITY_MS,
                 grace_s: float = 30.0, weights: list[float] | None = None,
                 maintenance_interval_s: float = 1.0, events: WorkerEvents | None = None,
                 worker_id: str | None = None, replicas: int = 0,
                 replica_timeout_ms: int = DEFAULT_TIMEOUT_MS,
                 registry_interval_s: float = WORKER_REFRESH_MS / 1000,
                 client: Client | None = None, enforce_timeouts: bool = True,
                 prune_schedules: bool = False) -> None:
        if not queues:
            raise ValueError("a worker needs at least one queue")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        prefetch = concurrency if prefetch is None else prefetch
        if prefetch < 0:
            raise ValueError("prefetch must be 0 or more")
        if weights is not None and len(weights) != len(queues):
            raise ValueError("give one weight per queue")
        self.worker_id = worker_id or f"{default_worker_id()}:{uuid.uuid4().hex[:6]}"
        self.queues: list[WorkQueue]
        self.redis: RedisClient | None = None
        if client is not None:
            if redis is not None or replicas:
                raise ValueError("a worker over HTTP (client=) takes no redis and no replicas")
            self.queues = [HttpQueue(name, client, visibility_ms=visibility_ms,
                                     worker_id=self.worker_id) for name in queues]
        else:
            redis = app.redis if redis is None else redis  # the app's, else $RELAYQ_REDIS_URL
            self.redis = connect(redis) if redis is None or isinstance(redis, str) else redis
            self.queues = [Queue(name, self.redis, replicas=replicas,
                                 replica_timeout_ms=replica_timeout_ms) for name in queues]
        self.app = app
        self.grace_s = grace_s
        self.events = events or WorkerEvents()
        self.inflight = InFlight()
        self.inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.executor = Executor(app, concurrency, self.inbox.put, self.events)
        # the reaper looks at least four times a lease, so a dead worker's job waits about
        # one lease (not a lease plus a whole interval) before it runs again
        maintenance_interval_s = min(maintenance_interval_s, visibility_ms / 4000)
        self.prune_schedules = prune_schedules
        self.maintenance = Maintenance(self.queues, self.events, maintenance_interval_s,
                                       setup=self._save_schedules)
        # workflows: the facts this worker's queues owe children in other queues; nudged by
        # the dispatcher when it settled a job with children (over HTTP: the server's mover)
        self.fact_mover: FactMover | None = None
        if self.redis is not None:
            names = [q.name for q in self.queues]
            self.fact_mover = FactMover(self.redis, lambda: names, maintenance_interval_s)
        self.dispatcher = Dispatcher(
            self.queues, weights, self.executor, self.inflight, self.events,
            capacity=concurrency + prefetch, visibility_ms=visibility_ms,
            worker_id=self.worker_id,
            inbox=self.inbox,
            parents_settled=self.fact_mover.nudge if self.fact_mover is not None else None)
        self.lease_keeper = LeaseKeeper(self.inflight, visibility_ms, self.inbox.put,
                                        enforce_timeouts, self.events)
        self.registry = Registry(
            self.redis, self.worker_id, list(queues), concurrency, self.inflight,
            registry_interval_s,
            store=None if client is None else HttpRegistryStore(client))
        self._stopped = threading.Event()
        self._stop_requested = threading.Event()

    def _save_schedules(self) -> None:
        """Saves the app's periodic tasks on this worker's queues; names (or, with
        prune_schedules, deletes) the app's schedules the app no longer defines. A worker over
        HTTP saves none (the server's routes do: `relayq schedule set`)."""
        if self.redis is None:
            if self.app.periodic_tasks():
                log_event(log, logging.WARNING, "schedule.not_saved",
                          hint="a worker over HTTP (--server) does not save the app's periodic "
                               "tasks: save them with relayq schedule set, or from a worker "
                               "on Redis")
            return
        stale = save_schedules(self.app, [q for q in self.queues if isinstance(q, Queue)],
                               self.prune_schedules)
        for name in stale:
            if self.prune_schedules:
                log_event(log, logging.WARNING, "schedule.pruned", schedule=name)
            else:
                log_event(log, logging.WARNING, "schedule.not_in_app", schedule=name,
                          hint="the app no longer defines it; it still fires. Delete it with "
                               "relayq-worker --prune-schedules or relayq schedule rm")

    def start(self) -> None:
        """Starts every component in the background and returns."""
        self.executor.start()
        self.dispatcher.start()
        self.lease_keeper.start()
        self.maintenance.start()
        if self.fact_mover is not None:
            self.fact_mover.start()
        self.registry.start()
        log_event(log, logging.INFO, "worker.started", worker=self.worker_id,
                  queues=",".join(q.name for q in self.queues),
                  concurrency=self.executor.concurrency)

    def request_stop(self, release: bool = False) -> None:
        """Stops claiming; running jobs finish (or, with `release`, go back at once)."""
        self._stop_requested.set()
        self.inbox.put(Stop(release))

    def stop(self, grace_s: float | None = None) -> None:
        """Drains and stops: waits up to `grace_s` (default: the worker's) for running jobs,
        releases whatever is left, and stops every component."""
        grace = self.grace_s if grace_s is None else grace_s
        self.request_stop()
        self.dispatcher.join(grace)
        if self.dispatcher._thread.is_alive():
            log_event(log, logging.WARNING, "worker.grace_expired",
                      releasing=len(self.inflight))
            self.inbox.put(Stop(release=True))
            self.dispatcher.join(10)
        self.maintenance.stop()
        if self.fact_mover is not None:
            self.fact_mover.stop()
        self.lease_keeper.stop()
        self.executor.stop(timeout=0.5)
        self.dispatcher.stop_wakers()
        self.registry.stop()  # last: a draining worker is still listed, with its jobs
        self._stopped.set()
        log_event(log, logging.INFO, "worker.stopped", worker=self.worker_id)

    def run(self) -> None:
        """Runs until SIGTERM or SIGINT (main thread only), then drains and stops. A second
        signal releases running jobs at once."""
        signals = 0

        def on_signal(signum: int, _frame: Any) -> None:
            nonlocal signals
            signals += 1
            log_event(log, logging.INFO, "worker.signal", signal=signal.Signals(signum).name,
                      action="drain" if signals == 1 else "release")
            self.request_stop(release=signals > 1)

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            while not self._stop_requested.wait(1.0):
                pass
            self.stop()
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
