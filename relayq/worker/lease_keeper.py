"""The lease keeper: extends the leases of every job this worker runs, so that a handler can
run longer than the lease (`--visibility`) while its worker lives. One batched heartbeat call per
queue, every third of the lease or every CANCEL_CHECK_MS (relayq/limits.py), whichever is
sooner, while the worker holds jobs of that queue (none while idle). The heartbeat's reply says
which held jobs have a cancel requested: the keeper sets their `cancel` event, which
`current_job().cancelled` reads and the executor watches (it cancels an async handler's task, and
never starts a prefetched job), and tells the worker's events (`cancel_requested`: under
`relayq-worker --processes` the supervisor stops a handler that does not end). So a handler
learns of a cancel within about CANCEL_CHECK_MS, at no extra round trip per job. It also
enforces job timeouts (`timeout_ms`): a job over its time is failed (`timeout` posted to the
dispatcher) and its lease is no longer extended.

A heartbeat answered `lease_lost` for a job still held means the job was reaped and may run
elsewhere: the job is marked abandoned so that its outcome is dropped instead of recorded. A job
that finished meanwhile (its ack overtook the heartbeat) is no longer held and is left alone.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from ..limits import CANCEL_CHECK_MS
from ..logs import log_event
from .events import WorkerEvents
from .inflight import InFlight, Running
from .periodic import Periodic
from .source import WorkQueue

log = logging.getLogger("relayq.worker")


class TimedOut:
    __slots__ = ("running",)

    def __init__(self, running: Running) -> None:
        self.running = running


class LeaseKeeper(Periodic):
    def __init__(self, inflight: InFlight, visibility_ms: int, post: Callable[[Any], None],
                 enforce_timeouts: bool = True, events: WorkerEvents | None = None) -> None:
        # every third of the lease (or sooner, to hear of cancels), and no backoff: a lease must
        # be extended as soon as Redis answers again
        super().__init__("leases", max(0.05, min(visibility_ms / 3000,
                                                     CANCEL_CHECK_MS / 1000)))
        self.inflight = inflight
        self.visibility_ms = visibility_ms
        self.post = post
        # False under `relayq-worker --processes`: the supervisor stops a process whose
        # handler overran (relayq/worker/supervisor.py), which a thread here cannot do
        self.enforce_timeouts = enforce_timeouts
        self.events = events or WorkerEvents()

    def tick(self) -> None:
        """One round: time out overdue jobs, extend the leases of the others."""
        now = time.monotonic()
        by_queue: dict[WorkQueue, list[Running]] = defaultdict(list)
        for running in self.inflight.snapshot():
            if running.abandoned:
                continue
            timeout_ms = running.job.timeout_ms if self.enforce_timeouts else None
            started = running.started
            if timeout_ms and started is not None and (now - started) * 1000 > timeout_ms:
                running.abandoned = True
                self.post(TimedOut(running))
                continue
            by_queue[running.queue].append(running)
        for queue, jobs in by_queue.items():
            replies = queue.heartbeat_many([(r.job.id, r.job.lease or "") for r in jobs],
                                           self.visibility_ms)
            for running, beat in zip(jobs, replies):
                if beat.cancel_requested and not running.cancel.is_set():
                    running.cancel.set()
                    log_event(log, logging.INFO, "job.cancel_requested", id=running.job.id)
                    self.events.cancel_requested(running.job)
                # A job that finished while the heartbeat was on its way was acked, not lost.
                if beat.status != "ok" and not running.abandoned and self.inflight.holds(running):
                    running.abandoned = True
                    log_event(log, logging.WARNING, "job.lease_lost", id=running.job.id,
                              status=beat.status)
