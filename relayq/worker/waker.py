"""The waker: lets an idle dispatcher sleep until a job arrives, with no polling.

One waker per queue. When the dispatcher finds nothing to claim it arms the wakers; each then
waits with its queue's listener (relayq.worker.source) and claims up to the free slots as it
wakes: over Redis, a BLPOP for a token on the queue's wake list with the claim sent behind it
in the same round trip (relayq.wake.WakeListener, on a connection of its own, which follows
failovers on Redis Cluster and behind Sentinel); over HTTP, a long-poll claim. The jobs ride on
the wake-up. A token, jobs, or the timeout the dispatcher gave (when the
next scheduled job is due, or when the rate limit refills), posts a wake-up to the dispatcher's
inbox. While Redis (or the server) cannot be reached the waker retries with backoff and posts a
wake-up after each failure (the dispatcher's claim then reports the outage). `stop()` unblocks
a Redis wait under way, so that a worker stops at once instead of waiting out a blocking call;
jobs that a long poll brings after the stop are handed back at once (release: no attempt
spent).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ..backoff import Backoff
from ..errors import OUTAGES, outage_event
from ..logs import log_event
from ..results import ClaimResult, Outcome
from .source import WorkQueue, listener_for

log = logging.getLogger("relayq.worker")
MAX_BLOCK_S = 5.0


class Wake:
    """Inbox message: `token` (a wake-up token was taken: claim now), or `jobs` claimed by a
    long poll (over HTTP), or neither (the timeout)."""

    __slots__ = ("queue", "token", "jobs")

    def __init__(self, queue: str, token: bool, jobs: ClaimResult | None = None) -> None:
        self.queue = queue
        self.token = token
        self.jobs = jobs


class Waker:
    def __init__(self, queue: WorkQueue, post: Callable[[Any], None], *, visibility_ms: int,
                 worker_id: str) -> None:
        self.queue = queue
        self.post = post
        self._armed = threading.Event()
        self._stopping = threading.Event()
        self._timeout_s = MAX_BLOCK_S
        self._count = 1
        self._listener = listener_for(queue, visibility_ms, worker_id)
        self._thread = threading.Thread(target=self._run, name=f"relayq-waker-{queue.name}",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def arm(self, timeout_ms: int | None, count: int = 1) -> None:
        """Block for a token (or, over HTTP, claim up to `count` jobs), at most `timeout_ms`
        (None: the default idle block)."""
        if self._armed.is_set():
            return
        seconds = MAX_BLOCK_S if timeout_ms is None else min(MAX_BLOCK_S, timeout_ms / 1000)
        self._timeout_s = max(0.001, seconds)
        self._count = count
        self._armed.set()

    def stop(self, timeout: float = 2.0) -> None:
        self._stopping.set()
        self._armed.set()
        if not self._listener.interruptible:
            return  # a long poll under way ends by itself; what it brings is handed back
        deadline = time.monotonic() + timeout
        # An unblock can arrive just before the BLPOP it was meant for, so repeat it until the
        # thread is gone. If Redis is unreachable, the blocking call times out on its own.
        while self._thread.is_alive() and time.monotonic() < deadline:
            self._listener.unblock()
            self._thread.join(0.05)

    def _run(self) -> None:
        backoff = Backoff()
        try:
            while not self._stopping.is_set():
                self._armed.wait()
                if self._stopping.is_set():
                    break
                got: bool | ClaimResult = False
                try:
                    got = self._listener.wait(self._timeout_s, self._count)
                    backoff.reset()
                except Exception as e:  # an outage; over HTTP also a refusal (a revoked key)
                    if self._stopping.is_set():
                        break
                    event = outage_event(e) if isinstance(e, OUTAGES) else "waker.failed"
                    log_event(log, logging.WARNING, event, part="waker",
                              queue=self.queue.name, error=str(e))
                    backoff.wait(self._stopping)
                self._armed.clear()
                jobs = got if isinstance(got, ClaimResult) and got else None
                if not self._stopping.is_set():
                    self.post(Wake(self.queue.name, got is True, jobs))
                elif jobs:
                    self._hand_back(jobs)
        finally:
            self._listener.close()

    def _hand_back(self, jobs: ClaimResult) -> None:
        """Jobs a long poll claimed after the worker stopped: back to the queue at once, without
        spending an attempt (if that fails too, the reaper puts them back after the lease)."""
        try:
            self.queue.settle([Outcome(job.id, job.lease or "", "release") for job in jobs])
        except Exception as e:  # best effort: the leases expire
            log_event(log, logging.WARNING, "waker.release_failed", queue=self.queue.name,
                      jobs=len(jobs), error=str(e))
