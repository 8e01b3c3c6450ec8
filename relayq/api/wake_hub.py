"""Long-poll claims without polling Redis and without a Redis connection per waiting request.

One `WakeHub` per server process. A claim request that found nothing and may wait registers as
a waiter on its queue; the hub keeps one thread per queue that has waiters, waiting for tokens
on the queue's wake list with a `relayq.wake.WakeListener` (the worker's wakers use the same:
one connection per queue's thread, following failovers on Redis Cluster and behind Sentinel;
it uses the client of the waiters' Queue). Each token is handed to exactly one waiter, which
claims again; if it leaves jobs behind, the claim script leaves a new token, which wakes the
next waiter (the same cascade as idle workers). A token that arrives when no request waits
any more is passed on with `Queue.pass_wake()`, so an idle worker elsewhere still gets it. A
waiter also wakes by itself when the claim's hint says so (the next scheduled job is due, the
rate limit has a token) and at its deadline, and then claims once more before answering. A
request whose client has disconnected stops waiting (checked once a second) and claims nothing
more.

A waiter that was handed a token always claims (even past its deadline), so a token is never
lost between the hub and the requests. The queue's thread ends within `block_s` of its last
waiter leaving. At most `max_waiters` requests wait at once (ServerBusy beyond), so the server's
thread pool, sized for them, always has threads left for everything else.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ..backoff import Backoff
from ..errors import RelayqError, ServerBusy
from ..logs import log_event
from ..queue import Queue
from ..results import ClaimResult
from ..wake import WakeListener

log = logging.getLogger("relayq.server")
GONE_CHECK_S = 1.0  # how often a waiting request looks whether its client went away


class _Watch:
    """The waiters of one queue (oldest first) while its thread runs."""

    __slots__ = ("queue", "waiters")

    def __init__(self, queue: Queue[Any]) -> None:
        self.queue = queue
        self.waiters: deque[threading.Event] = deque()


class WakeHub:
    def __init__(self, max_waiters: int, block_s: float = 2.0) -> None:
        self.max_waiters = max_waiters
        self.block_s = block_s
        self.waiting = 0  # requests inside claim() that wait (for /healthz)
        self._lock = threading.Lock()
        self._watches: dict[str, _Watch] = {}
        self._closing = False

    def claim(self, queue: Queue[Any], wait_ms: int, claim: Callable[[], ClaimResult],
              gone: Callable[[], bool] = lambda: False) -> ClaimResult:
        """`claim()` now, and while it finds nothing, again on each wake-up until `wait_ms`
        has passed. `gone()` says the client has disconnected: then it stops waiting and
        claims nothing more. ServerBusy when `max_waiters` requests already wait."""
        result = claim()
        if result or wait_ms <= 0:
            return result
        with self._lock:
            if self.waiting >= self.max_waiters:
                raise ServerBusy(f"{self.max_waiters} long polls are already waiting: "
                                 "retry later or claim without wait_ms")
            self.waiting += 1
        try:
            deadline = time.monotonic() + wait_ms / 1000
            while not result and not self._closing:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                hint = remaining if result.retry_in_ms is None else result.retry_in_ms / 1000
                handed_token = self._wait(queue, max(0.001, min(remaining, hint)), gone)
                if gone():  # nobody would get what we claim now: let another have the token
                    if handed_token:
                        queue.pass_wake()
                    break
                result = claim()
            return result
        finally:
            with self._lock:
                self.waiting -= 1

    def close(self) -> None:
        """Wakes every waiting request to answer now (the server is stopping)."""
        with self._lock:
            self._closing = True
            waiters = [w for watch in self._watches.values() for w in watch.waiters]
            for watch in self._watches.values():
                watch.waiters.clear()
        for waiter in waiters:
            waiter.set()

    def _wait(self, queue: Queue[Any], timeout_s: float, gone: Callable[[], bool]) -> bool:
        """Blocks until this request is handed a wake-up token (True), `timeout_s` passes or
        the client is gone (False). Looks at `gone()` once a second."""
        waiter = threading.Event()
        with self._lock:
            watch = self._watches.get(queue.name)
            if watch is None:
                watch = self._watches[queue.name] = _Watch(queue)
                threading.Thread(target=self._run, args=(watch,), daemon=True,
                                 name=f"relayq-wake-{queue.name}").start()
            watch.waiters.append(waiter)
        deadline = time.monotonic() + timeout_s
        while not waiter.wait(min(GONE_CHECK_S, max(0.0, deadline - time.monotonic()))):
            if gone() or time.monotonic() >= deadline:
                break
        with self._lock:
            if waiter in watch.waiters:  # not handed a token
                watch.waiters.remove(waiter)
                return False
        return True

    def _run(self, watch: _Watch) -> None:
        """One queue's thread: take tokens and hand each to the oldest waiter."""
        backoff = Backoff()
        listener = WakeListener(watch.queue)
        try:
            while True:
                with self._lock:
                    if not watch.waiters:
                        del self._watches[watch.queue.name]
                        return
                try:
                    token = listener.wait(self.block_s)
                    backoff.reset()
                    if not token:
                        continue
                    with self._lock:
                        waiter = watch.waiters.popleft() if watch.waiters else None
                    if waiter is not None:
                        waiter.set()
                    else:
                        watch.queue.pass_wake()
                except RelayqError as e:
                    log_event(log, logging.WARNING, "redis.unavailable", part="wake_hub",
                              queue=watch.queue.name, error=str(e))
                    time.sleep(backoff.next_delay())
                except Exception:  # a bug: keep serving the waiters, say so
                    log.exception("wake hub thread failed; retrying")
                    time.sleep(backoff.next_delay())
        finally:
            listener.close()
