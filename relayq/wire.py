"""The hot path to Redis: script calls sent on a connection the calling thread keeps, without
redis-py's per-command machinery.

redis-py 8 spends about 40 µs of client CPU per command outside the socket (a pool checkout and
return under a lock, a retry wrapper, observability hooks), more than Redis spends running an
enqueue script. relayq never lets redis-py resend a command and records no metrics through it,
so its script calls skip that layer: each thread makes one connection with the settings of a
client's pool, keeps it, and writes and reads on it directly (through relayq/redis_adapter.py,
the one module that touches redis-py's connections). Before each use it is checked as
redis-py's pool checks a connection it hands out (a socket the server closed is replaced). A
send or read that fails disconnects it, so a late reply is never read as the answer to the next
command, and nothing is ever resent.

A Sentinel client's kept connection is checked against the primary the sentinels name (at most
every PRIMARY_CHECK_S, as for blocking connections) and dropped when it is on an old one. A
forked child never uses its parent's sockets. A thread keeps one connection per pool, so a
process holds one connection per thread that has called scripts (a relayq-server: up to its
thread count), outside the pool's own count; it is closed when its thread ends.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Sequence
from contextlib import suppress
from typing import Any

import redis

from . import redis_adapter
from .connection import on_primary
from .redis_adapter import Connection

_local = threading.local()


class _Kept:
    """One thread's connections, by pool. Dropped with its thread, it closes them at once
    (a redis-py connection sits in reference cycles and would otherwise wait for the GC)."""

    def __init__(self) -> None:
        # pool -> (pid that made the connection, the connection, is it a Sentinel client's)
        self.by_pool: weakref.WeakKeyDictionary[Any, tuple[int, Connection, bool]] = (
            weakref.WeakKeyDictionary())

    def __del__(self) -> None:
        for pid, conn, _ in list(self.by_pool.values()):
            if pid == os.getpid():  # never close a socket a parent process still uses
                with suppress(Exception):
                    conn.disconnect()


def kept_connection(client: redis.Redis) -> Connection:
    """This thread's connection to `client`'s server (a plain or Sentinel client), ready."""
    pool = client.connection_pool
    holder: _Kept | None = getattr(_local, "kept", None)
    if holder is None:
        holder = _local.kept = _Kept()
    kept = holder.by_pool
    entry = kept.get(pool)
    if entry is None or entry[0] != os.getpid():
        # Made like the pool's own, but not counted against its max_connections (redis-py 8:
        # 100): a thread keeps this one, and the pool's limit is for connections it lends.
        conn = redis_adapter.new_connection(client)
        kept[pool] = (os.getpid(), conn, redis_adapter.sentinel_pool(client) is not None)
    else:
        conn = entry[1]
        if entry[2] and not on_primary(client, conn):  # a Sentinel client's, on an old primary
            conn.disconnect()  # make_ready() below reaches the primary named now
    redis_adapter.make_ready(conn)
    return conn


def call(client: redis.Redis, *args: Any) -> Any:
    """One command on this thread's kept connection; an error reply raises (ResponseError)."""
    return redis_adapter.command(kept_connection(client), *args)


def call_many(client: redis.Redis, commands: Sequence[Sequence[Any]]) -> list[Any]:
    """Several commands in one round trip on this thread's kept connection (not a transaction);
    an error reply takes its command's place in the list as a ResponseError."""
    return redis_adapter.commands(kept_connection(client), commands)
