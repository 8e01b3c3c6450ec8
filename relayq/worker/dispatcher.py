"""The dispatcher: the worker's one claiming thread.

It owns the inbox, where the executor posts finished jobs, the wakers post wake-ups and the
lease keeper posts timeouts. Each turn it takes everything waiting in the inbox, then for each
queue (in strict order, or weighted) records the outcomes and claims as many jobs as it has
free slots, in a single round trip (`Queue.settle`). When nothing is claimable it arms the
wakers and sleeps on the inbox: no polling.

The queues are `WorkQueue`s (relayq.worker.source): `relayq.Queue` over Redis, or `HttpQueue`
through a relayq-server. Either way an idle queue's waker claims as it wakes, and hands the
jobs straight to the executor (`_woken`).

Outcomes that could not be recorded because Redis (or the server) was away stay pending and are
sent again after a backoff: acks and nacks are idempotent for the lease holder, so a repeat is
safe. Any other failure of a turn (a bug) is logged and its pending outcomes dropped, never the
thread.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from ..backoff import Backoff
from ..errors import OUTAGES, NotReplicated, outage_event
from ..limits import MAX_CLAIM_COUNT
from ..logs import log_event
from ..results import ClaimResult, Outcome
from .events import WorkerEvents
from .executor import Done, Executor
from .inflight import InFlight, Running
from .lease_keeper import TimedOut
from .source import WorkQueue
from .waker import Wake, Waker

log = logging.getLogger("relayq.worker")


class Stop:
    """Inbox message: stop claiming; finish (or, with `release`, hand back) what is running."""

    __slots__ = ("release",)

    def __init__(self, release: bool) -> None:
        self.release = release


class Dispatcher:
    def __init__(self, queues: list[WorkQueue], weights: list[float] | None,
                 executor: Executor, inflight: InFlight, events: WorkerEvents, *,
                 capacity: int, visibility_ms: int, worker_id: str,
                 inbox: queue.SimpleQueue[Any],
                 parents_settled: Callable[[], None] | None = None) -> None:
        self.queues = queues
        self.weights = weights
        self.executor = executor
        self.inflight = inflight
        self.events = events
        self.capacity = capacity  # jobs held at once: running + prefetched
        self._batch = max(1, capacity // 4)
        self.visibility_ms = visibility_ms
        self.worker_id = worker_id
        self.inbox = inbox
        # called after a turn settled jobs that have children (workflows: their facts for
        # children in other queues wait in the outbox for a fact mover)
        self.parents_settled = parents_settled
        self._by_name = {q.name: q for q in queues}
        self.wakers = {q.name: Waker(q, self._woken, visibility_ms=visibility_ms,
                                     worker_id=worker_id) for q in queues}
        self._pending: dict[str, list[tuple[Outcome, Running | None]]] = defaultdict(list)
        self._draining = False
        self._release = False
        self._stolen: set[str] = set()
        self._thread = threading.Thread(target=self.run, name="relayq-dispatcher", daemon=True)

    def start(self) -> None:
        for waker in self.wakers.values():
            waker.start()
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def stop_wakers(self) -> None:
        for waker in self.wakers.values():
            waker.stop()

    # -- the loop -------------------------------------------------------------------------

    def run(self) -> None:
        backoff = Backoff()
        idle = False
        while True:
            message = self.inbox.get() if idle else self._poll()
            self._take(message)
            while True:  # everything else already waiting, in one turn
                try:
                    self._take(self.inbox.get_nowait())
                except queue.Empty:
                    break
            if self._release:
                self._release_all()
            if self._finished():
                break
            try:
                idle = self._turn()
                backoff.reset()
            except OUTAGES as e:
                log_event(log, logging.WARNING, outage_event(e), part="dispatcher",
                          error=str(e), pending=sum(map(len, self._pending.values())))
                self._back_off(backoff.next_delay())
                idle = False
            except Exception:  # a bug or an unforeseen refusal: never stop claiming
                self._drop_pending()
                self._back_off(backoff.next_delay())
                idle = False
            if self._finished():
                break
        self.stop_wakers()

    def _drop_pending(self) -> None:
        """After an unexpected failure of a turn: gives up the outcomes not yet recorded (a
        repeat could fail the same way forever). Their jobs' leases are no longer extended, so
        the reaper hands them out again: at-least-once still holds."""
        dropped = [o.job_id for pending in self._pending.values() for o, _ in pending]
        self._pending.clear()
        log.exception("dispatcher.failed", extra={"fields": {
            "dropped": len(dropped), "ids": ",".join(dropped[:20])}})

    def _finished(self) -> bool:
        """Draining, every outcome recorded, and nothing left worth waiting for."""
        return self._draining and not self._pending and self._nothing_to_wait_for()

    def _nothing_to_wait_for(self) -> bool:
        """True when every job still held is abandoned (released or timed out and already
        failed): their outcomes will not be recorded, so there is nothing left to wait for."""
        return all(r.abandoned for r in self.inflight.snapshot())

    def _back_off(self, seconds: float) -> None:
        """Waits before the next turn after a failed one, taking messages meanwhile: a stop or a
        finished job is seen at once, not after the backoff."""
        with contextlib.suppress(queue.Empty):
            self._take(self.inbox.get(timeout=seconds))

    def _woken(self, wake: Wake) -> None:
        """A waker's wake-up, on the waker's thread. The jobs it claimed go straight to the
        executor when they fit (a hop through the inbox was a sixth of the enqueue-to-start
        latency of an idle queue, measured: p50 1.73 -> 1.49 ms); the wake-up itself still
        goes to the inbox, so that the dispatcher takes a turn (claims for the slots left,
        arms the wakers again). Jobs that do not fit go through the inbox, which hands them
        back. The check of the free slots races with the dispatcher's own claims: for a moment
        the worker may hold more jobs than its capacity, by at most the waker's claim."""
        jobs = wake.jobs
        if jobs and not self._draining and len(self.inflight) + len(jobs) <= self.capacity:
            self._dispatch(self._by_name[wake.queue], jobs)
            wake = Wake(wake.queue, wake.token)
        self.inbox.put(wake)

    def _poll(self) -> Any:
        try:
            return self.inbox.get_nowait()
        except queue.Empty:
            return None

    def _take(self, message: Any) -> None:
        if message is None:
            return
        if isinstance(message, Wake):
            if message.jobs:
                self._received(self._by_name[message.queue], message.jobs)
            elif message.token and len(self.inflight) >= self.capacity:
                self._stolen.add(message.queue)  # armed earlier, full now: pass the token on
            return
        if isinstance(message, Done):
            running = message.running
            self.inflight.remove(running.job.id)
            if running.abandoned:  # timed out or lease lost: someone else owns its fate now
                return
            # A job whose cancel was requested ends cancelled (the script decides): counted as
            # neither a success nor a failure.
            if running.cancel.is_set():
                pass
            elif message.outcome.kind == "ack":
                self.events.succeeded(running.job, message.duration_s)
            else:
                self.events.failed(running.job, message.duration_s, message.outcome.error)
            self._pending[running.queue.name].append((message.outcome, running))
        elif isinstance(message, TimedOut):
            running = message.running
            job = running.job
            error = f"timed out after {job.timeout_ms} ms"
            log_event(log, logging.WARNING, "job.timed_out", id=job.id, timeout_ms=job.timeout_ms)
            self.events.failed(job, time.monotonic() - (running.started or time.monotonic()),
                               error)
            self._abandon(running, "nack", error)
        elif isinstance(message, Stop):
            if not self._draining:  # prefetched jobs never started: hand them back now
                for running in self.executor.take_unstarted():
                    self._abandon(running, "release")
            self._draining = True
            self._release = self._release or message.release

    def _release_all(self) -> None:
        """Hands every job still running back to its queue, without spending an attempt."""
        for running in self.inflight.snapshot():
            if not running.abandoned:
                self._abandon(running, "release")
        self._release = False

    def _abandon(self, running: Running, kind: str, error: str = "") -> None:
        """Records `kind` for a job this worker gives up on; its own outcome, if the handler
        ever returns, is then dropped."""
        running.abandoned = True
        job = running.job
        self._pending[running.queue.name].append(
            (Outcome(job.id, job.lease or "", kind, error=error), None))
        if running.started is None:  # never reached a handler: nothing will report back
            self.inflight.remove(job.id)

    def _queue_order(self) -> list[WorkQueue]:
        if not self.weights:
            return self.queues
        remaining = list(zip(self.queues, self.weights))
        order = []
        while remaining:
            pick = random.choices(range(len(remaining)), [w for _, w in remaining])[0]
            order.append(remaining.pop(pick)[0])
        return order

    def _turn(self) -> bool:
        """Records what is pending and claims into the free slots. Returns True when the
        dispatcher should sleep until its inbox has something (the wakers are armed, or the
        slots are full enough), False to take another turn at once (a claim came back short:
        the next one will tell whether the queue is empty, and arm the wakers if so)."""
        free = 0 if self._draining else self.capacity - len(self.inflight)
        # Claim in batches: while the prefetch buffer still feeds the threads, wait until a
        # quarter of the capacity is free instead of claiming one job per finished one.
        claiming = free > 0 and (free >= self._batch or self.executor.backlog() == 0)
        while self._stolen:
            self._by_name[self._stolen.pop()].pass_wake()
        hints: dict[str, int | None] = {}
        short = False
        for q in self._queue_order():
            pending = self._pending.get(q.name, [])
            wanted = min(free, MAX_CLAIM_COUNT) if claiming else 0
            if not pending and not wanted:
                continue
            try:
                statuses, claimed = q.settle([o for o, _ in pending], wanted,
                                             visibility_ms=self.visibility_ms,
                                             worker_id=self.worker_id)
            except NotReplicated as e:  # recorded on the primary: go on, but say so
                log_event(log, logging.WARNING, "redis.not_replicated", queue=q.name,
                          wanted=e.wanted, acked=e.acked)
                statuses, claimed = e.result
            self._settled(pending, statuses)
            self._pending.pop(q.name, None)
            if claimed is not None:
                got = self._dispatch(q, claimed)
                free -= got
                short = 0 < got < wanted
                if claimed.status != "ok":
                    hints[q.name] = claimed.retry_in_ms
                    if claimed.status == "throttled":
                        self.events.throttled(q.name)
        if claiming and len(hints) == len(self.queues):  # nothing claimable anywhere
            for name, hint in hints.items():
                self.wakers[name].arm(hint, free)
            return True
        return not short

    def _settled(self, pending: list[tuple[Outcome, Running | None]], statuses: list[str]) -> None:
        parents = False
        for (outcome, running), status in zip(pending, statuses):
            if running is not None:
                self.events.settled(running.job, outcome.kind, status)
                parents = parents or running.job.has_children
            if status == "cancelled":  # its cancel was requested: the script ended it so
                log_event(log, logging.INFO, "job.cancelled", id=outcome.job_id,
                          outcome=outcome.kind)
            elif status != "ok":
                log_event(log, logging.WARNING, "job.lease_lost", id=outcome.job_id,
                          outcome=outcome.kind, status=status)
        if parents and self.parents_settled is not None:
            self.parents_settled()

    def _dispatch(self, q: WorkQueue, claimed: ClaimResult) -> int:
        if not claimed:
            return 0
        self.events.claimed(q.name, list(claimed), time.time() * 1000)
        for job in claimed:
            running = Running(job, q)
            self.inflight.add(running)
            self.executor.submit(running)
        return len(claimed)

    def _received(self, q: WorkQueue, claimed: ClaimResult) -> None:
        """Jobs a waker claimed that `_woken` could not start at once (draining, or slots
        filled meanwhile). Those that still do not fit go straight back to their queue,
        without spending an attempt."""
        self.events.claimed(q.name, list(claimed), time.time() * 1000)
        for job in claimed:
            running = Running(job, q)
            if self._draining or len(self.inflight) >= self.capacity:
                self._abandon(running, "release")
            else:
                self.inflight.add(running)
                self.executor.submit(running)
