"""The waker: lets an idle dispatcher sleep until a job arrives, with no polling.

One waker per queue. When the dispatcher finds nothing to claim it arms the wakers; each then
blocks in BLPOP on its queue's wake list (relayq:{<q>}:wake), where every script that makes a job
ready leaves a token. A token, or the timeout the dispatcher gave (when the next scheduled job is
due, or when the rate limit refills), posts a wake-up to the dispatcher's inbox.

The waker owns one dedicated connection, to the node that serves the wake key (on Redis
Cluster, the owner of the queue's slot); `stop()` unblocks it with CLIENT UNBLOCK sent to that
node, so that a worker stops at once instead of waiting out a blocking call. After a failover the
connection breaks, or the node answers UNBLOCKED (a demoted primary releases its blocked clients),
MOVED or READONLY: the waker drops the connection, re-reads the cluster's slot map, and finds the
new primary on its next turn. Behind Sentinel a demoted primary that has not learnt it yet gives
no error at all (and no wake tokens): before each wait the waker checks that its connection is
still on the primary the sentinels name.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from typing import Any

import redis

from ..backoff import Backoff
from ..connection import node_client, on_primary, refresh_topology
from ..errors import RedisUnavailable
from ..logs import log_event
from ..queue import Queue

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
        self._client_id: int | None = None
        self._node: Any = None  # the client of the node our connection is on
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
            client_id, node = self._client_id, self._node
            if client_id is not None and node is not None:
                with suppress(redis.RedisError):
                    node.execute_command("CLIENT", "UNBLOCK", client_id)
            self._thread.join(0.05)

    def _connection(self) -> Any:
        """A dedicated connection to the node holding this queue's wake key."""
        node = node_client(self.queue.redis, self.queue.keys.wake)
        conn = node.connection_pool.get_connection()
        conn.send_command("CLIENT", "ID")
        self._client_id, self._node = int(conn.read_response()), node
        return conn

    def _run(self) -> None:
        backoff = Backoff()
        conn = None
        while not self._stopping.is_set():
            self._armed.wait()
            if self._stopping.is_set():
                break
            token = False
            try:
                if conn is not None and not on_primary(self.queue.redis, conn):
                    conn.disconnect()
                    conn = None
                if conn is None:
                    conn = self._connection()
                conn.send_command("BLPOP", self.queue.keys.wake, f"{self._timeout_s:.3f}")
                token = conn.read_response() is not None
                backoff.reset()
            except (redis.RedisError, RedisUnavailable, OSError) as e:
                if conn is not None:
                    conn.disconnect()
                conn = None
                self._client_id = None
                if self._stopping.is_set():
                    break
                refresh_topology(self.queue.redis)
                log_event(log, logging.WARNING, "redis.unavailable", part="waker",
                          queue=self.queue.name, error=str(e))
                backoff.wait(self._stopping)
            self._armed.clear()
            if not self._stopping.is_set():
                self.post(Wake(self.queue.name, token))
        if conn is not None:
            conn.disconnect()
