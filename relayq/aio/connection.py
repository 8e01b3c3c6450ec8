"""The asyncio twin of relayq/connection.py and of the run path of relayq/scripts.py: a Redis URL
to a `redis.asyncio` client, and script calls run on it by SHA.

URLs are parsed by `relayq.connection.parse_url`, so they mean the same as for `relayq.connect`,
and clients get the same settings (`decode_responses`, timeouts, keepalive) and no automatic
resends (`Retry(NoBackoff(), 0)`: a resent enqueue that had already run would make a second
job). Redis errors are wrapped by the same `redis_errors()` (redis.asyncio raises redis-py's
exception classes), so every error maps to the same relayq exception as in sync code.

Supported: `redis://`, `rediss://`, `unix://`, `redis+sentinel://` (redis.asyncio's Sentinel
client finds the primary on each new connection) and Redis Cluster (`redis+cluster://`, or a
`redis://` URL naming a cluster node, detected as `relayq.connect` does: redis.asyncio's
RedisCluster, without resends). On a cluster, a single script call is sent by the cluster
client (it follows MOVED: a node that answers MOVED did not run it); a pipeline runs on the
node that owns its queue's slot, outside redis.asyncio's ClusterPipeline (which resends after
a connection error), through `relayq.redis_adapter.aio_node_commands`; calls of several queues
are grouped by node (`relayq.scripts.by_node`), and a MOVED reply re-reads the slot map and
repeats the call (`relayq.scripts.rounds`). A broken connection to a node re-reads the slot
map before the error goes up (a failover moved the slot). Reads (`Reads` steps) go through
the cluster client, which sends each command to the node of its key.
Not done: the sync client's check of a Sentinel primary at most once a second
(`follow_primary`): an old primary still alive after a failover is left when redis.asyncio
reconnects or when it refuses a write (READONLY: RedisBusy, nothing ran), not within a second.

Scripts run by EVALSHA; a NOSCRIPT reply (Redis restarted, SCRIPT FLUSH) loads the script and
repeats the call, which did not run. Pipelines follow `relayq.scripts.rounds`, the same rule
as the sync registry (repeats, WAIT, NotReplicated, the SHAs each node is known to hold).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError

from .. import redis_adapter
from ..connection import (
    SENTINEL_OPTIONS,
    Target,
    client_options,
    cluster_database_refused,
    cluster_reachable,
    parse_url,
    redis_errors,
)
from ..replication import Wait
from ..scripts import (
    ScriptCall,
    by_node,
    commands_of,
    evalsha,
    loaded_on,
    loaded_on_node,
    rounds,
)


def _no_retry() -> Retry:
    return Retry(NoBackoff(), 0)


async def connect(url: str | None = None, *, socket_timeout: float | None = 30.0
                  ) -> aioredis.Redis | RedisCluster:
    """A redis.asyncio client for `url` (default $RELAYQ_REDIS_URL, else
    redis://localhost:6379/0): a RedisCluster for a cluster; close it with
    `await client.aclose()`."""
    target = parse_url(url)
    options = client_options(socket_timeout, target)
    if target.kind == "cluster":
        return await _ready(RedisCluster(
            startup_nodes=[ClusterNode(h, p) for h, p in target.hosts],
            username=target.username, password=target.password, retry=_no_retry(), **options))
    if target.kind == "sentinel":
        client = _sentinel_client(target, options)
        redis_adapter.aio_checked_connections(client)
        return client
    client = aioredis.Redis.from_url(target.url, retry=_no_retry(), **options)
    redis_adapter.aio_checked_connections(client)
    if target.kind == "url" and await _is_cluster_node(client):
        await client.aclose()
        if redis_adapter.database(client):
            raise cluster_database_refused(target.url)
        return await _ready(RedisCluster.from_url(target.url, retry=_no_retry(), **options))
    return client


async def _ready(client: RedisCluster) -> RedisCluster:
    """The cluster client, having read the slot map (RedisUnavailable when no node answers, as
    for relayq.connect, which reads it when the client is made)."""
    try:
        with cluster_reachable():
            await client.initialize()
    except BaseException:
        await client.aclose()
        raise
    return client


def is_cluster(client: Any) -> bool:
    """True for a redis.asyncio Redis Cluster client."""
    return isinstance(client, RedisCluster)


def _sentinel_client(target: Target, options: dict[str, Any]) -> aioredis.Redis:
    sentinel = Sentinel(
        list(target.hosts),
        sentinel_kwargs={"password": target.sentinel_password, **SENTINEL_OPTIONS},
        **options,
    )
    return sentinel.master_for(target.service, db=target.db, username=target.username,
                               password=target.password, retry=_no_retry())


async def _is_cluster_node(client: aioredis.Redis) -> bool:
    """As relayq.connection's probe: True when the server says `cluster_enabled:1`; False when
    it does not or cannot be asked (the first real call then reports the problem). Asked on
    database 0 (a cluster node refuses SELECT)."""
    probe = redis_adapter.aio_client_like(client, db=0)
    try:
        return bool((await probe.info("cluster")).get("cluster_enabled"))
    except redis.RedisError:  # down, INFO disabled: the first call will say
        return False
    finally:
        await probe.aclose()


async def run(client: aioredis.Redis | RedisCluster, call: ScriptCall) -> Any:
    """Runs one script by SHA, loading it first if Redis does not have it. A cluster client
    sends it to the node of its first key itself (following MOVED), and loads the script on
    every primary."""
    command = evalsha(call)
    with redis_errors():
        try:
            return await client.execute_command(*command)
        except NoScriptError:
            await client.script_load(call.script.source)
            return await client.execute_command(*command)


async def run_pipelined(client: aioredis.Redis | RedisCluster, calls: Sequence[ScriptCall],
                        wait: Wait | None = None) -> list[Any]:
    """Runs several scripts in one round trip per node (not a transaction), ending each with
    WAIT when asked; replies in the order of `calls` (see relayq.scripts.run_pipelined)."""
    calls = list(calls)
    groups = by_node(client, calls, is_cluster(client))
    if len(groups) == 1:
        return await _run_on_node(client, calls, wait)
    replies: list[Any] = [None] * len(calls)
    for indexes in groups:
        got = await _run_on_node(client, [calls[i] for i in indexes], wait)
        for i, reply in zip(indexes, got):
            replies[i] = reply
    return replies


async def _run_on_node(client: aioredis.Redis | RedisCluster, calls: list[ScriptCall],
                       wait: Wait | None) -> list[Any]:
    """run_pipelined for calls that all live on one node: `rounds` on that node."""
    if not calls:
        return []
    cluster = is_cluster(client)
    key = calls[0].keys[0]
    with redis_errors():
        loaded = (loaded_on_node(client, client.get_node_from_key(key).name) if cluster
                  else loaded_on(client))
        plan = rounds(calls, wait, loaded)
        round_ = next(plan)
        while True:
            commands = commands_of(round_.calls, round_.wait)
            if cluster:
                got = await _cluster_round_trip(client, round_.refresh, key, round_.load,
                                                commands)
            else:
                for s in round_.load:
                    await client.script_load(s.source)
                pipe = client.pipeline(transaction=False)
                for command in commands:
                    pipe.execute_command(*command)
                got = await pipe.execute(raise_on_error=False)
            try:
                round_ = plan.send(got)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]


async def _cluster_round_trip(client: RedisCluster, refresh: bool, key: str,
                              load: frozenset[Any], commands: list[tuple[Any, ...]]
                              ) -> list[Any]:
    """One round trip to the node that owns `key`'s slot (the slot map re-read first when
    `refresh`): SCRIPT LOAD of `load`, then `commands`; their replies. A broken connection
    re-reads the slot map before it is raised: a failover may have moved the slot."""
    if refresh:
        await redis_adapter.aio_reread_slot_map(client)
    node = client.get_node_from_key(key)
    loads = [("SCRIPT", "LOAD", s.source) for s in load]
    try:
        got = await redis_adapter.aio_node_commands(node, [*loads, *commands])
        broken = next((r for r in got if isinstance(r, (redis.ConnectionError,
                                                        redis.TimeoutError))), None)
        if broken is not None:
            raise broken
    except (redis.ConnectionError, redis.TimeoutError):
        await redis_adapter.aio_reread_slot_map(client)
        raise
    failed = next((r for r in got[:len(loads)] if isinstance(r, Exception)), None)
    if failed is not None:
        raise failed
    return got[len(loads):]


async def read(client: aioredis.Redis | RedisCluster, commands: Sequence[tuple[Any, ...]]
               ) -> list[Any]:
    """Plain commands in one round trip (not a transaction), replies parsed by redis-py. A
    cluster client sends each to the node of its key (reads, and the idempotent SADD/RPUSH of
    bookkeeping: its pipeline may send a command again only after MOVED/ASK, which did not
    run it, since relayq's clients are made without resends)."""
    with redis_errors():
        if len(commands) == 1:
            return [await client.execute_command(*commands[0])]
        pipe = client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        return await pipe.execute()  # type: ignore[no-any-return]
