"""The one module that reaches below redis-py's documented client API. Everything else in relayq
talks to redis-py through its clients (`Redis`, `RedisCluster`, `Sentinel`) and their commands.

Tested with redis-py 8.1 (the range pinned in pyproject.toml). tests/test_redis_adapter.py
checks each internal listed here against the installed redis-py and names the one that
changed, so that a new redis-py is either proved compatible or refused before it ships. The
internals, and why relayq needs each:

- `ConnectionPool.connection_class` and `ConnectionPool.connection_kwargs`: `new_connection()`
  and `client_like()` make a connection (a client) with another client's settings (host or
  socket, TLS, timeouts, credentials, `decode_responses`; for Sentinel, the pool's proxy that
  finds the primary) but outside its pool: kept by one thread for its script calls
  (relayq/wire.py), held by a wake listener for a blocking BLPOP (relayq/wake.py), or on
  database 0 for the cluster probe. The pool's own checkout takes a lock per command and
  counts against its `max_connections`.
- `AbstractConnection.connect()`, `.disconnect()`, `.can_read()`: `make_ready()` checks a
  connection before use as the pool does at checkout (a socket the server closed reads as EOF,
  and is replaced before a command is lost on it).
- `AbstractConnection.send_packed_command()`, `.read_response()`: `command()` and
  `commands()` talk on such a connection without redis-py's per-command layer (~40 µs of
  client CPU per command in redis-py 8: a pool checkout under a lock, a retry wrapper,
  observability hooks), more than Redis spends on an enqueue script. They pack with `pack()`
  (hiredis's `pack_command`, which redis-py's `HiredisRespSerializer` calls after a Python
  pass over every argument: 9 µs for a script call's 25 arguments, against 3 µs).
- `SentinelConnectionPool.get_master_address()` (asks the sentinels; when the primary changed,
  disconnects the pool's idle connections to the old one), `.owns_connection(conn)` (False
  for a connection to a server that is no longer the primary) and `.service_name`: an old
  primary that still runs after a failover accepts writes and wake tokens until Sentinel
  demotes it, seconds later; relayq asks at most once a second and leaves it at once.
- `RedisCluster.nodes_manager.initialize()`: re-reads the slot map now. redis-py re-reads it on
  MOVED, but after a connection error only every few errors; relayq wants the new owner of a
  slot right after a failover. The same for redis.asyncio's RedisCluster (awaited).
- redis.asyncio's `ClusterNode.execute_pipeline()` and `PipelineCommand(position, *args)`:
  `aio_node_commands()` sends a pipeline to the one node that owns a queue's slot, on a
  connection of that node's own pool (closed with the cluster client). redis.asyncio has no
  client per node (the sync `get_redis_connection`), and its ClusterPipeline resends commands
  after a connection error, when they may already have run.
- redis.asyncio's `ConnectionPool.connection_class` and `.connection_kwargs`, as for sync
  clients: `aio_client_like()` makes the database-0 client of the cluster probe.
- redis.asyncio's `AbstractConnection.pack_command()`: `aio_hiredis_packing()` makes a
  redis.asyncio client's connections pack commands with `pack()` (redis.asyncio packs in
  Python: measured in relayq-server's event loop, 7% of the GIL time of single enqueues, 37%
  of batches of 100 jobs).
- redis.asyncio's `AbstractConnection.connect()`, `.disconnect()`, `.is_connected`,
  `._reader` (its StreamReader: `at_eof()` once the server closed the socket), `._writer`
  (its StreamWriter: `write()`, `drain()`) and `.read_response(timeout=math.inf)`:
  `aio_commands()` talks on a connection a batcher of relayq-server keeps
  (relayq.api.async_commit), as `commands()` does for threads: no pool checkout, no retry
  wrapper, one deadline for a round's replies instead of a timer per reply (measured:
  redis.asyncio's pipeline was 17% of the server's GIL time at 32 connections).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import TYPE_CHECKING, Any

import hiredis
import redis
from redis.cluster import RedisCluster
from redis.connection import AbstractConnection
from redis.exceptions import RedisClusterException
from redis.sentinel import SentinelConnectionPool

if TYPE_CHECKING:  # redis.asyncio is imported by relayq.aio only: sync programs never load it
    from redis.asyncio import Redis as AioRedis
    from redis.asyncio.cluster import ClusterNode as AioClusterNode
    from redis.asyncio.cluster import RedisCluster as AioRedisCluster

Connection = AbstractConnection


# -- connections outside a pool -------------------------------------------------------------

def new_connection(client: redis.Redis, **overrides: Any) -> Connection:
    """A new, unconnected connection with the settings of `client`'s pool (a plain or Sentinel
    client), not counted by the pool: its holder disconnects it."""
    pool = client.connection_pool
    return pool.connection_class(**{**pool.connection_kwargs, **overrides})


def client_like(client: redis.Redis, **overrides: Any) -> redis.Redis:
    """A new client (with a pool of its own) with `client`'s connection settings, changed by
    `overrides` (e.g. `db=0`). The caller closes it."""
    pool = client.connection_pool
    return redis.Redis(connection_pool=redis.ConnectionPool(
        connection_class=pool.connection_class, **{**pool.connection_kwargs, **overrides}))


def aio_client_like(client: AioRedis, **overrides: Any) -> AioRedis:
    """`client_like` for a redis.asyncio client (the caller closes it with `aclose()`)."""
    from redis.asyncio import ConnectionPool, Redis

    pool = client.connection_pool
    return Redis(connection_pool=ConnectionPool(
        connection_class=pool.connection_class, **{**pool.connection_kwargs, **overrides}))


def database(client: redis.Redis | AioRedis) -> int:
    """The database number `client` (sync or redis.asyncio) selects."""
    return int(client.connection_pool.connection_kwargs.get("db") or 0)


def make_ready(conn: Connection) -> None:
    """Connected, with nothing unread: a connection the server closed (it restarted, or timed
    out an idle client) reads as EOF and is replaced before anything is sent on it, as
    redis-py's pool does at checkout. Sending on it would fail a command that Redis, now back,
    could have run."""
    conn.connect()  # nothing to do when connected
    try:
        if conn.can_read():
            raise redis.ConnectionError("connection has unread data")
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        conn.disconnect()
        conn.connect()


def pack(args: Sequence[Any]) -> bytes:
    """One command in the Redis protocol: the bytes redis-py's HiredisRespSerializer makes (a
    first argument with spaces, "SCRIPT LOAD", is split into words; str as UTF-8; an argument
    of another type than str, bytes, int or float is a DataError), by hiredis alone."""
    first = args[0]
    if (" " in first) if type(first) is str else (b" " in first):
        args = (*first.split(), *args[1:])
    try:
        return hiredis.pack_command(args if type(args) is tuple else tuple(args))
    except TypeError as e:
        raise redis.DataError(str(e)) from e


def pack_all(batch: Sequence[Sequence[Any]]) -> bytes:
    """Several commands, packed one after another, for one write."""
    return b"".join([pack(args) for args in batch])


def command(conn: Connection, *args: Any) -> Any:
    """One command and its reply on `conn`; an error reply raises (ResponseError). Replies are
    as the server sends them (decoded if the client decodes), without redis-py's per-command
    parsing (INFO stays text)."""
    conn.send_packed_command((pack(args),))
    return conn.read_response()


def commands(conn: Connection, batch: Sequence[Sequence[Any]]) -> list[Any]:
    """Several commands in one round trip on `conn` (not a transaction); an error reply takes
    its command's place in the list as a ResponseError."""
    conn.send_packed_command((pack_all(batch),))
    replies: list[Any] = []
    for _ in batch:
        try:
            replies.append(conn.read_response())
        except redis.ResponseError as e:
            replies.append(e)
    return replies


# -- Sentinel -------------------------------------------------------------------------------

def sentinel_pool(client: Any) -> SentinelConnectionPool | None:
    """The Sentinel pool of `client`, None for any other client."""
    pool = getattr(client, "connection_pool", None)
    return pool if isinstance(pool, SentinelConnectionPool) else None


def sentinel_service(client: Any) -> str | None:
    """The Sentinel service name `client` follows, None for any other client."""
    pool = sentinel_pool(client)
    return None if pool is None else str(pool.service_name)


def ask_sentinels(pool: SentinelConnectionPool) -> None:
    """Asks the sentinels who the primary is; when it changed, the pool disconnects its idle
    connections to the old one (busy ones when they are released)."""
    pool.get_master_address()


def on_named_primary(pool: SentinelConnectionPool, conn: Connection) -> bool:
    """False when `conn` is on a server other than the primary the sentinels last named."""
    return bool(pool.owns_connection(conn))


# -- Redis Cluster --------------------------------------------------------------------------

def reread_slot_map(client: RedisCluster) -> None:
    """Re-reads the cluster's slot map now. Best effort: when no node answers, the next call
    fails and re-reads it again."""
    with suppress(redis.RedisError, RedisClusterException):
        client.nodes_manager.initialize()


def aio_new_connection(client: AioRedis) -> Any:
    """`new_connection` for a redis.asyncio client (a plain or Sentinel one); its holder
    disconnects it."""
    pool = client.connection_pool
    return pool.connection_class(**pool.connection_kwargs)


async def aio_commands(conn: Any, batch: Sequence[Sequence[Any]]) -> list[Any]:
    """`commands` on a redis.asyncio connection, its replies read within its socket timeout
    (one deadline for the round). A connection the server closed is replaced before anything
    is sent; a send or read that fails disconnects it (so a late reply is never read as the
    answer to the next command) and raises: nothing is resent."""
    import asyncio
    import math

    if not conn.is_connected or conn._reader.at_eof() or _closed_while_idle(conn):
        await conn.disconnect()
        await conn.connect()
    replies: list[Any] = []
    try:
        async with asyncio.timeout(conn.socket_timeout):
            # written here, not by send_packed_command, whose asyncio.wait_for makes a task
            conn._writer.write(pack_all(batch))
            await conn._writer.drain()
            for _ in batch:
                try:
                    replies.append(await conn.read_response(timeout=math.inf))
                except redis.ResponseError as e:
                    replies.append(e)
    except BaseException as e:
        await conn.disconnect()
        if isinstance(e, TimeoutError):
            raise redis.TimeoutError("timed out talking to Redis") from None
        if isinstance(e, OSError):
            raise redis.ConnectionError(f"error while writing to Redis: {e}") from None
        raise
    return replies


def _closed_while_idle(conn: Any) -> bool:
    """Whether the kernel holds input for an idle redis.asyncio connection: the server closed
    it (its `timeout`, a CLIENT KILL, a restart) or a stray reply is there. asyncio sees that
    only once its loop has polled the socket, so redis.asyncio's own check (`can_read`, with a
    timeout of 0) misses a close that has just happened (and relayq-server's loop runs only
    while granian hands it requests): the command would go out on a dead connection, and its
    failure could not tell whether it ran."""
    import select

    writer = getattr(conn, "_writer", None)
    sock = writer.transport.get_extra_info("socket") if writer is not None else None
    if sock is None:
        return False
    readable, _, _ = select.select([sock.fileno()], [], [], 0)
    return bool(readable)


def _aio_subclass(client: AioRedis, name: str,
                  methods_for: Callable[[type], dict[str, Any]]) -> None:
    """Makes the connections of `client`'s pool, those it holds and those it opens from now
    on, a subclass of their class `base` with `methods_for(base)` (nothing for a cluster
    client, whose nodes have pools of their own). The subclass adds methods only, so the
    connections it holds simply take it."""
    pool = getattr(client, "connection_pool", None)
    if pool is None:
        return
    base = pool.connection_class
    made = _AIO_SUBCLASSES.get((base, name))
    if made is None:
        made = _AIO_SUBCLASSES[(base, name)] = type(base.__name__, (base,), methods_for(base))
    pool.connection_class = made
    for conn in [*pool._available_connections, *pool._in_use_connections]:
        if type(conn) is base:
            conn.__class__ = made


_AIO_SUBCLASSES: dict[tuple[type, str], type] = {}


def aio_checked_connections(client: AioRedis) -> None:
    """Makes `client`'s pool replace an idle connection the server has closed before handing
    it out (`_closed_while_idle`), as redis-py's sync pool does (relayq.aio.connect applies it
    to every client it makes)."""
    def methods_for(base: type) -> dict[str, Any]:
        async def can_read(self: Any) -> bool:
            return _closed_while_idle(self) or await base.can_read(self)

        return {"can_read": can_read}

    _aio_subclass(client, "checked", methods_for)


def aio_hiredis_packing(client: AioRedis) -> None:
    """Makes the connections of `client`'s pool pack commands with `pack()` (nothing for a
    cluster client)."""
    def pack_command(self: Any, *args: Any) -> list[bytes]:
        return [pack(args)]

    _aio_subclass(client, "hiredis", lambda base: {"pack_command": pack_command})


async def aio_reread_slot_map(client: AioRedisCluster) -> None:
    """`reread_slot_map` for redis.asyncio's RedisCluster."""
    with suppress(redis.RedisError, RedisClusterException):
        await client.nodes_manager.initialize()


async def aio_node_commands(node: AioClusterNode, batch: Sequence[Sequence[Any]]) -> list[Any]:
    """Several commands in one round trip to one node of a redis.asyncio cluster client (not
    a transaction, no redirection followed, nothing resent); an error reply takes its
    command's place in the list (MOVED as MovedError, NOSCRIPT as NoScriptError). A broken
    connection raises, or takes the place of the replies it lost."""
    from redis.asyncio.cluster import PipelineCommand

    commands = [PipelineCommand(i, *args) for i, args in enumerate(batch)]
    await node.execute_pipeline(commands)
    return [c.result for c in commands]
