"""The asyncio twin of relayq/connection.py and of the run path of relayq/scripts.py: a Redis URL
to a `redis.asyncio` client, and script calls run on it by SHA.

URLs are parsed by `relayq.connection.parse_url`, so they mean the same as for `relayq.connect`,
and clients get the same settings (`decode_responses`, timeouts, keepalive) and no automatic
resends (`Retry(NoBackoff(), 0)`: a resent enqueue that had already run would make a second
job). Redis errors are wrapped by the same `redis_errors()` (redis.asyncio raises redis-py's
exception classes), so every error maps to the same relayq exception as in sync code.

Supported: `redis://`, `rediss://`, `unix://`, and `redis+sentinel://` (redis.asyncio's Sentinel
client finds the primary on each new connection). Not supported:
- Redis Cluster (`redis+cluster://`, or a `redis://` URL naming a cluster node):
  InvalidArgument at connect. relayq pipelines a queue's calls on the node that owns its slot,
  outside redis.asyncio's cluster pipeline (which resends after a connection error); that has
  no asyncio version yet. Use the sync `relayq.Queue` (e.g. in a thread) on a cluster.
- The sync client's check of a Sentinel primary at most once a second (`follow_primary`): an
  old primary still alive after a failover is left when redis.asyncio reconnects or when it
  refuses a write (READONLY: RedisBusy, nothing ran), not within a second.

Scripts run by EVALSHA; a NOSCRIPT reply (Redis restarted, SCRIPT FLUSH) loads the script and
repeats the call, which did not run. Pipelines follow `relayq.scripts.rounds`, the same rule
as the sync registry (repeats, WAIT, NotReplicated).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError

from ..connection import (
    SENTINEL_OPTIONS,
    Target,
    client_options,
    parse_url,
    redis_errors,
)
from ..errors import InvalidArgument
from ..replication import Wait
from ..scripts import ScriptCall, commands_of, loaded_on, rounds

CLUSTER_REFUSED = ("relayq.aio does not support Redis Cluster (see relayq/aio/connection.py): "
                   "use relayq.Queue there")


def _no_retry() -> Retry:
    return Retry(NoBackoff(), 0)


async def connect(url: str | None = None, *, socket_timeout: float | None = 30.0
                  ) -> aioredis.Redis:
    """A redis.asyncio client for `url` (default $RELAYQ_REDIS_URL, else
    redis://localhost:6379/0); close it with `await client.aclose()`."""
    target = parse_url(url)
    options = client_options(socket_timeout, target)
    if target.kind == "cluster":
        raise InvalidArgument(CLUSTER_REFUSED)
    if target.kind == "sentinel":
        return _sentinel_client(target, options)
    client = aioredis.Redis.from_url(target.url, retry=_no_retry(), **options)
    if target.kind == "url" and await _is_cluster_node(client):
        await client.aclose()
        raise InvalidArgument(f"{target.url} is a Redis Cluster node: {CLUSTER_REFUSED}")
    return client


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
    database 0's terms: INFO does not depend on the database selected."""
    try:
        return bool((await client.info("cluster")).get("cluster_enabled"))
    except Exception:  # noqa: BLE001 - down, INFO disabled: the first call will say
        return False


async def run(client: aioredis.Redis, call: ScriptCall) -> Any:
    """Runs one script by SHA, loading it first if Redis does not have it."""
    command = ("EVALSHA", call.script.sha, len(call.keys), *call.keys, *call.args)
    with redis_errors():
        try:
            return await client.execute_command(*command)
        except NoScriptError:
            await client.script_load(call.script.source)
            return await client.execute_command(*command)


async def run_pipelined(client: aioredis.Redis, calls: Sequence[ScriptCall],
                        wait: Wait | None = None) -> list[Any]:
    """Runs several scripts in one round trip (not a transaction), ending it with WAIT when
    asked; replies in the order of `calls` (see relayq.scripts.run_pipelined)."""
    calls = list(calls)
    if not calls:
        return []
    plan = rounds(calls, wait, loaded_on(client))
    with redis_errors():
        round_ = next(plan)
        while True:
            for s in round_.load:
                await client.script_load(s.source)
            pipe = client.pipeline(transaction=False)
            for command in commands_of(round_.calls, round_.wait):
                pipe.execute_command(*command)
            got = await pipe.execute(raise_on_error=False)
            try:
                round_ = plan.send(got)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]


async def read(client: aioredis.Redis, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
    """Plain commands in one round trip (not a transaction), replies parsed by redis-py."""
    with redis_errors():
        if len(commands) == 1:
            return [await client.execute_command(*commands[0])]
        pipe = client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        return await pipe.execute()  # type: ignore[no-any-return]
