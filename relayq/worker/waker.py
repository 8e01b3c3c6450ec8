"""The waker: lets an idle dispatcher sleep until a job arrives, with no polling.

One waker per queue. When the dispatcher finds nothing to claim it arms the wakers; each then
blocks in BLPOP on its queue's wake list (relayq:{<q>}:wake), where every script that makes a job
ready leaves a token. A token, or the timeout the dispatcher gave (when the next scheduled job is
due, or when the rate limit refills), posts a wake-up to the dispatcher's inbox.

The waker owns one dedicated connection; `stop()` unblocks it with CLIENT UNBLOCK so that a
worker stops at once instead of waiting out a blocking call.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

import redis

from ..logs import log_event
from ..queue import Queue
from ..retry import ReconnectBackoff

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
        client_id = self._client_id
        if client_id is not None:
            with contextlib.suppress(redis.RedisError):  # else the call times out on its own
                self.queue.redis.execute_command("CLIENT", "UNBLOCK", client_id)
        self._thread.join(timeout)

    def _connection(self) -> Any:
        """A dedicated connection to the node holding this queue's wake key."""
        client = self.queue.redis
        get_node = getattr(client, "get_node_from_key", None)
        if get_node is not None:  # Redis Cluster: the node's own client
            client = client.get_redis_connection(get_node(self.queue.keys.wake))
        conn = client.connection_pool.get_connection()
        conn.send_command("CLIENT", "ID")
        self._client_id = int(conn.read_response())
        return conn

    def _run(self) -> None:
        backoff = ReconnectBackoff()
        conn = None
        while not self._stopping.is_set():
            self._armed.wait()
            if self._stopping.is_set():
                break
            token = False
            try:
                if conn is None:
                    conn = self._connection()
                conn.send_command("BLPOP", self.queue.keys.wake, f"{self._timeout_s:.3f}")
                token = conn.read_response() is not None
                backoff.reset()
            except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
                if conn is not None:
                    conn.disconnect()
                conn = None
                self._client_id = None
                if self._stopping.is_set():
                    break
                log_event(log, logging.WARNING, "redis.unavailable", part="waker",
                          queue=self.queue.name, error=str(e))
                backoff.wait(self._stopping)
            self._armed.clear()
            if not self._stopping.is_set():
                self.post(Wake(self.queue.name, token))
        if conn is not None:
            conn.disconnect()
