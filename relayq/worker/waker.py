"""The waker: lets an idle dispatcher sleep until a job arrives, with no polling.

One waker per queue. When the dispatcher finds nothing to claim it arms the wakers; each then
waits for a token on its queue's wake list (relayq.wake.WakeListener: BLPOP on a connection of
its own, which follows failovers on Redis Cluster and behind Sentinel). A token, or the
timeout the dispatcher gave (when the next scheduled job is due, or when the rate limit
refills), posts a wake-up to the dispatcher's inbox. While Redis cannot be reached the waker
retries with backoff and posts a wake-up after each failure (the dispatcher's claim then
reports the outage). `stop()` unblocks a wait under way, so that a worker stops at once
instead of waiting out a blocking call.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ..backoff import Backoff
from ..errors import RedisUnavailable
from ..logs import log_event
from ..queue import Queue
from ..wake import WakeListener

log = logging.getLogger("relayq.worker")
MAX_BLOCK_S = 5.0


class Wake:
    __slots__ = ("queue", "token")

    def __init__(self, queue: str, token: bool) -> None:
        self.queue = queue
        self.token = token


class Waker:
    def __init__(self, queue: Queue[Any], post: Callable[[Any], None]) -> None:
        self.queue = queue
        self.post = post
        self._armed = threading.Event()
        self._stopping = threading.Event()
        self._timeout_s = MAX_BLOCK_S
        self._listener = WakeListener(queue)
        self._thread = threading.Thread(target=self._run, name=f"relayq-waker-{queue.name}",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def arm(self, timeout_ms: int | None) -> None:
        """Block for a token, at most `timeout_ms` (None: the default idle block)."""
        if self._armed.is_set():
            return
        seconds = MAX_BLOCK_S if timeout_ms is None else min(MAX_BLOCK_S, timeout_ms / 1000)
        self._timeout_s = max(0.001, seconds)
        self._armed.set()

    def stop(self, timeout: float = 2.0) -> None:
        self._stopping.set()
        self._armed.set()
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
                token = False
                try:
                    token = self._listener.wait(self._timeout_s)
                    backoff.reset()
                except RedisUnavailable as e:
                    if self._stopping.is_set():
                        break
                    log_event(log, logging.WARNING, "redis.unavailable", part="waker",
                              queue=self.queue.name, error=str(e))
                    backoff.wait(self._stopping)
                self._armed.clear()
                if not self._stopping.is_set():
                    self.post(Wake(self.queue.name, token))
        finally:
            self._listener.close()
