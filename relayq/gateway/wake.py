"""Blocking commands (BRPOP, BLPOP, XREADGROUP BLOCK) woken by enqueues, without polling Redis.

The gateway's event loop never blocks, so a waiting connection is a future, not a thread. For
each queue that has waiting connections one thread takes the queue's wake-up tokens with the
one wake listener (relayq.wake.WakeListener: BLPOP on the queue's wake list, following
failovers), the same the server's long polls and the workers use, and hands each token to the
oldest waiter of that queue, which then claims. A waiter may wait on several queues (`BRPOP a b
0`): the first token handed to it wins; a token that finds no waiter left (they timed out, or
went away) is passed on with `Queue.pass_wake()`, so an idle worker elsewhere still gets it. A
waiter that was handed a token but is gone by then (its connection closed) passes it on too.
The thread of a queue ends within `block_s` of its last waiter leaving.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from typing import Any

from ..backoff import Backoff
from ..errors import RelayqError, ServerBusy
from ..limits import RESP_MAX_WATCHED_QUEUES
from ..logs import log_event
from ..queue import Queue
from ..wake import WakeListener

log = logging.getLogger("relayq.gateway")


class _Waiter:
    """One waiting command: the first queue to hand it a token wins (`take`)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.future: asyncio.Future[str] = loop.create_future()
        self._lock = threading.Lock()
        self.woken_by: str | None = None
        self.closed = False

    def take(self, queue: str | None) -> bool:
        """Hands the waiter a token of `queue` (None: closes it); False when it already has one
        or is closed."""
        with self._lock:
            if self.closed:
                return False
            self.closed = True
            self.woken_by = queue
        if queue is not None:
            self.loop.call_soon_threadsafe(self._wake, queue)
        return True

    def _wake(self, queue: str) -> None:
        if not self.future.done():
            self.future.set_result(queue)


class _Watch:
    __slots__ = ("queue", "waiters")

    def __init__(self, queue: Queue[Any]) -> None:
        self.queue = queue
        self.waiters: deque[_Waiter] = deque()


class WakeHub:
    """The wake-up tokens of every queue a blocking command waits on, in one process."""

    def __init__(self, block_s: float = 2.0,
                 max_queues: int = RESP_MAX_WATCHED_QUEUES) -> None:
        self.block_s = block_s
        self.max_queues = max_queues
        self._lock = threading.Lock()
        self._watches: dict[str, _Watch] = {}
        self._closing = False

    async def wait(self, queues: list[Queue[Any]], timeout_s: float | None) -> str | None:
        """Waits for a token of any of `queues`: the name of the queue whose token this
        caller now holds (it must claim from it), or None at the timeout (None: forever).
        ServerBusy when it would watch more than `max_queues` queues at once."""
        waiter = _Waiter(asyncio.get_running_loop())
        with self._lock:
            if self._closing:
                return None
            new = {q.name for q in queues} - self._watches.keys()
            if len(self._watches) + len(new) > self.max_queues:
                raise ServerBusy(f"blocking commands already wait on {len(self._watches)} "
                                 f"queues (at most {self.max_queues}): retry later")
            for queue in queues:
                watch = self._watches.get(queue.name)
                if watch is None:
                    watch = self._watches[queue.name] = _Watch(queue)
                    threading.Thread(target=self._run, args=(watch,), daemon=True,
                                     name=f"relayq-gateway-wake-{queue.name}").start()
                watch.waiters.append(waiter)
        try:
            return await asyncio.wait_for(asyncio.shield(waiter.future), timeout_s)
        except (TimeoutError, asyncio.CancelledError) as e:
            if not waiter.take(None) and waiter.woken_by is not None:
                if isinstance(e, asyncio.TimeoutError):
                    return waiter.woken_by  # a token came just at the deadline: use it
                by_name = {q.name: q for q in queues}
                self._pass_on(by_name[waiter.woken_by])  # the connection went away
            if isinstance(e, asyncio.CancelledError):
                raise
            return None
        finally:
            with self._lock:
                for queue in queues:
                    watch = self._watches.get(queue.name)
                    if watch is not None and waiter in watch.waiters:
                        watch.waiters.remove(waiter)

    def close(self) -> None:
        """Ends every wait (the gateway is stopping): they answer their timeout reply."""
        with self._lock:
            self._closing = True
            waiters = [w for watch in self._watches.values() for w in watch.waiters]
        for waiter in waiters:
            if waiter.take(None):
                waiter.loop.call_soon_threadsafe(_cancel_quietly, waiter.future)

    @staticmethod
    def _pass_on(queue: Queue[Any]) -> None:
        try:
            queue.pass_wake()
        except RelayqError as e:
            log_event(log, logging.WARNING, "redis.unavailable", part="gateway_wake",
                      queue=queue.name, error=str(e))

    def _run(self, watch: _Watch) -> None:
        """One queue's thread: take tokens and hand each to the oldest waiter still waiting."""
        backoff = Backoff()
        listener = WakeListener(watch.queue)
        try:
            while True:
                with self._lock:
                    if not watch.waiters or self._closing:
                        del self._watches[watch.queue.name]
                        return
                try:
                    if not listener.wait(self.block_s):
                        continue
                    backoff.reset()
                    while True:
                        with self._lock:
                            waiter = watch.waiters.popleft() if watch.waiters else None
                        if waiter is None:
                            self._pass_on(watch.queue)
                            break
                        if waiter.take(watch.queue.name):
                            break
                except RelayqError as e:
                    log_event(log, logging.WARNING, "redis.unavailable", part="gateway_wake",
                              queue=watch.queue.name, error=str(e))
                    time.sleep(backoff.next_delay())
        finally:
            listener.close()


def _cancel_quietly(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_result(None)
