"""Waiting for a queue's wake-up tokens, without polling: the one listener behind the worker's
wakers (relayq/worker/waker.py) and the server's long polls (relayq/api/wake_hub.py).

Every script that makes jobs ready leaves a token on the queue's wake list
(relayq:{<q>}:wake, lua/lib/wake.lua). A `WakeListener` takes tokens with BLPOP on a connection
of its own, to the node that serves the wake key (on Redis Cluster, the owner of the queue's
slot): a blocking call holds its connection for the whole wait, so it never borrows one from
the client's pool. `unblock()`, from another thread, ends a wait at once with CLIENT UNBLOCK
sent to that node (so that a worker stops without waiting out a blocking call).

After a failover the connection breaks, or the node answers UNBLOCKED (a demoted primary
releases its blocked clients), MOVED or READONLY: `wait()` drops the connection, re-reads the
cluster's slot map and raises RedisUnavailable; the next `wait()` connects to the new primary.
Behind Sentinel a demoted primary that has not learnt it yet gives no error at all (and no
wake tokens): before each wait the listener checks that its connection is still on the primary
the sentinels name (asked at most every PRIMARY_CHECK_S), and moves if not.

A worker's waker sends its claim in the same round trip, behind the BLPOP (`wait_then_run`):
Redis runs the claim the moment the wait ends, so a job enqueued into an idle queue reaches a
worker in one round trip of the worker's, as a BRPOP queue's does.

Threads: one thread calls `wait()`, `wait_then_run()` and `close()`; any thread may call
`unblock()`.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any, TypeVar

import redis
from redis.exceptions import NoScriptError

from . import redis_adapter, scripts
from .connection import node_client, on_primary, refresh_topology
from .errors import RedisUnavailable
from .protocol import Call
from .queue import Queue

R = TypeVar("R")


class WakeListener:
    """Takes the wake-up tokens of one queue."""

    def __init__(self, queue: Queue[Any]) -> None:
        self.queue = queue
        self._conn: redis_adapter.Connection | None = None
        # (CLIENT ID of our connection, client of the node it is on), for unblock()
        self._blocking: tuple[int, redis.Redis] | None = None

    def wait(self, timeout_s: float) -> bool:
        """Blocks until a token is taken (True), `timeout_s` passes or `unblock()` is called
        (False). RedisUnavailable when Redis fails or is not serving: the connection is dropped
        and the next call makes a new one."""
        return self._wait(timeout_s, None)[0]

    def wait_then_run(self, timeout_s: float, call: Call[R]) -> tuple[bool, R | None]:
        """`wait`, with `call` (a script of this queue: a worker's claim) sent behind the BLPOP
        in the same round trip. Redis runs it as soon as the wait ends, token or not, so a
        woken worker has its jobs without a round trip of its own (the latency of an idle
        queue). Answers the token and the call's parsed reply: None when Redis did not have
        the script (NOSCRIPT: it did not run, and is loaded for the next time)."""
        return self._wait(timeout_s, call)

    def _wait(self, timeout_s: float, call: Call[R] | None) -> tuple[bool, R | None]:
        try:
            conn = self._conn
            if conn is not None and not on_primary(self.queue.redis, conn):
                self._drop()
                conn = None
            if conn is None:
                conn = self._connect()
            blpop = ("BLPOP", self.queue.keys.wake, f"{max(0.001, timeout_s):.3f}")
            if call is None:
                return redis_adapter.command(conn, *blpop) is not None, None
            token, reply = redis_adapter.commands(conn, [blpop, scripts.evalsha(call)])
            if isinstance(token, redis.ResponseError):
                raise token
            if isinstance(reply, NoScriptError):
                node_client(self.queue.redis, self.queue.keys.wake).script_load(
                    call.script.source)
                return token is not None, None
            if isinstance(reply, redis.ResponseError):
                raise reply
            return token is not None, call.parse(reply)
        except (redis.RedisError, RedisUnavailable, OSError) as e:
            self._drop()
            refresh_topology(self.queue.redis)
            if isinstance(e, RedisUnavailable):
                raise
            raise RedisUnavailable(f"waiting for wake-ups of {self.queue.name}: {e}") from e

    def unblock(self) -> None:
        """Ends a wait under way (best effort: call it again if the wait had not begun)."""
        blocking = self._blocking
        if blocking is not None:
            client_id, node = blocking
            with suppress(redis.RedisError):
                node.execute_command("CLIENT", "UNBLOCK", client_id)

    def close(self) -> None:
        self._drop()

    def _connect(self) -> redis_adapter.Connection:
        """A connection of our own to the node holding this queue's wake key."""
        node = node_client(self.queue.redis, self.queue.keys.wake)
        conn = self._conn = redis_adapter.new_connection(node)
        redis_adapter.make_ready(conn)
        self._blocking = (int(redis_adapter.command(conn, "CLIENT", "ID")), node)
        return conn

    def _drop(self) -> None:
        self._blocking = None
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.disconnect()
