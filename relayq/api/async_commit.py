"""Group commit on the event loop: the asyncio twin of relayq.api.group_commit, for the routes
served natively (relayq.api.native). The rules are the same and the code that decides them is
shared (group_commit.plan, resolve and spread): at most one round trip of a batcher in flight,
and the work that arrived meanwhile goes out together in the next one; an idle server sends a
request's work at once (the round starts on the loop's next turn, with whatever arrived in the
same turn). Enqueues of one queue merge into one call, acks likewise; a merged call refused
whole runs again call by call; a round that fails as a whole runs each call alone. Key lookups
of a round are one HMGET, sent after their requests arrived (a revoked key is refused by the
next request).

Each batcher keeps one connection of the client's settings outside its pool (not on a
cluster, whose calls go through relayq.aio.connection): a round is one write of its commands
and one read of their replies under one deadline (relayq.redis_adapter.aio_commands), the
same rule of repeats as any pipeline (relayq.scripts.rounds). Measured at 32 connections:
the server's CPU per single enqueue 218 -> 195 us, and 4,000 -> 6,000 requests/s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, NamedTuple, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from .. import protocol, redis_adapter
from ..aio import connection
from ..aio.queue import Queue as AsyncQueue
from ..connection import redis_errors
from ..keys import API_KEYS
from ..protocol import Reads, Scripts
from ..scripts import ScriptCall, commands_of, loaded_on, rounds
from ..steps import Sleep
from .group_commit import MAX_BATCH, plan, resolve, spread

Item = TypeVar("Item")
AsyncRedis = aioredis.Redis | RedisCluster


class AsyncBatcher(Generic[Item]):
    """Runs `flush(items)` for whatever work is waiting, one round at a time, on a task of its
    own. `flush` answers one result or exception per item, in order."""

    def __init__(self, flush: Callable[[list[Item]], Awaitable[list[Any]]],
                 max_batch: int = MAX_BATCH) -> None:
        self._flush = flush
        self._max_batch = max_batch
        self._waiting: list[tuple[Item, asyncio.Future[Any]]] = []
        self._leading = False
        self.rounds = 0
        self.items = 0

    async def submit(self, item: Item) -> Any:
        """The result of `item`'s work, or its exception raised."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if not self._leading:
            self._leading = True
            asyncio.get_running_loop().create_task(self._lead())
        return await future

    async def _lead(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[:self._max_batch]
                del self._waiting[:self._max_batch]
                try:
                    outcomes = await self._flush([item for item, _ in batch])
                except BaseException as e:  # a bug in flush: every request of the round sees it
                    outcomes = [e] * len(batch)
                self.rounds += 1
                self.items += len(batch)
                for (_, future), outcome in zip(batch, outcomes):
                    if future.done():  # its request was cancelled (the client went away)
                        continue
                    if isinstance(outcome, BaseException):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            self._leading = False


class AsyncGroupCommit:
    """The batchers of one server process's event loop: script calls and API key lookups, on
    a redis.asyncio client made on first use (on the loop that uses it)."""

    def __init__(self, redis_url: str | None) -> None:
        self._url = redis_url
        self._redis: AsyncRedis | None = None
        self._connecting: asyncio.Lock | None = None
        # a connection per batcher, each used by one round at a time (not on a cluster)
        self._kept_calls: Any = None
        self._kept_keys: Any = None
        self.calls: AsyncBatcher[protocol.Call[Any] | Together] = AsyncBatcher(self._run_calls)
        self.keys: AsyncBatcher[str] = AsyncBatcher(self._lookup_keys)

    async def redis(self) -> AsyncRedis:
        if self._redis is None:
            if self._connecting is None:
                self._connecting = asyncio.Lock()
            async with self._connecting:
                if self._redis is None:
                    client = await connection.connect(self._url)
                    redis_adapter.aio_hiredis_packing(client)
                    if not connection.is_cluster(client):
                        self._kept_calls = redis_adapter.aio_new_connection(client)
                        self._kept_keys = redis_adapter.aio_new_connection(client)
                    self._redis = client
        return self._redis

    async def aclose(self) -> None:
        if self._redis is not None:
            client, self._redis = self._redis, None
            for kept in (self._kept_calls, self._kept_keys):
                if kept is not None:
                    await kept.disconnect()
            await client.aclose()

    async def run(self, call: protocol.Call[Any]) -> Any:
        """One script call, sharing its round trip with those of other requests."""
        return await self.calls.submit(call)

    async def lookup_key(self, key_id: str) -> str | None:
        """The stored record of an API key (its JSON text), None when there is none."""
        return await self.keys.submit(key_id)  # type: ignore[no-any-return]

    async def _lookup_keys(self, key_ids: list[str]) -> list[Any]:
        distinct = list(dict.fromkeys(key_ids))
        command = ("HMGET", API_KEYS, *distinct)
        try:
            client = await self.redis()
            if self._kept_keys is None:
                (values,) = await connection.read(client, [command])
            else:
                with redis_errors():
                    (values,) = await redis_adapter.aio_commands(self._kept_keys, [command])
                    if isinstance(values, Exception):
                        raise values
        except Exception as e:
            return [e] * len(key_ids)
        return spread(key_ids, distinct, values)

    async def run_together(self, calls: Sequence[protocol.Call[Any]]) -> list[Any]:
        """The parsed replies of several calls of one operation (e.g. settle's acks then its
        claim), sent in order in one round with other requests' work, never merged with it."""
        return await self.calls.submit(Together(tuple(calls)))  # type: ignore[no-any-return]

    async def _run_calls(self, items: list[protocol.Call[Any] | Together]) -> list[Any]:
        if len(items) == 1:
            return [await self._alone(items[0])]
        single = [i for i, item in enumerate(items) if not isinstance(item, Together)]
        calls = [items[i] for i in single]
        groups, sent = plan(calls)  # type: ignore[arg-type]
        together = [item for item in items if isinstance(item, Together)]
        try:
            replies = await self._pipelined([*sent, *(c for t in together for c in t.calls)])
        except Exception:  # the round failed as a whole: each alone, with its own error
            return [await self._alone(item) for item in items]
        outcomes: list[Any] = [None] * len(items)
        resolved, again = resolve(calls, groups, sent, replies[:len(sent)])  # type: ignore[arg-type]
        for i, outcome in zip(single, resolved):
            outcomes[i] = outcome
        for i in again:
            outcomes[single[i]] = await self._alone(calls[i])
        start = len(sent)
        for i, item in enumerate(items):
            if isinstance(item, Together):
                outcomes[i] = _parsed(item.calls, replies[start:start + len(item.calls)])
                start += len(item.calls)
        return outcomes

    async def _alone(self, item: protocol.Call[Any] | Together) -> Any:
        calls = item.calls if isinstance(item, Together) else (item,)
        try:
            replies = _parsed(calls, await self._pipelined(list(calls)))
        except Exception as e:
            return e
        return replies if isinstance(item, Together) or isinstance(replies, Exception) \
            else replies[0]

    async def _pipelined(self, calls: list[ScriptCall]) -> list[Any]:
        """relayq.aio.connection.run_pipelined, on the kept connection when there is one: the
        same rule (relayq.scripts.rounds: NOSCRIPT loads and repeats, the scripts a pipeline
        of several calls needs loaded first)."""
        client = await self.redis()
        if self._kept_calls is None:
            return await connection.run_pipelined(client, calls)
        plan = rounds(calls, None, loaded_on(client) if len(calls) > 1 else None)
        with redis_errors():
            round_ = next(plan)
            while True:
                loads = [("SCRIPT", "LOAD", s.source) for s in round_.load]
                got = await redis_adapter.aio_commands(
                    self._kept_calls, [*loads, *commands_of(round_.calls, None)])
                failed = next((r for r in got[:len(loads)] if isinstance(r, Exception)), None)
                if failed is not None:
                    raise failed
                try:
                    round_ = plan.send(got[len(loads):])
                except StopIteration as done:
                    return done.value  # type: ignore[no-any-return]


class Together(NamedTuple):
    """Calls of one operation that go in order in one round, unmerged (`run_together`)."""

    calls: tuple[protocol.Call[Any], ...]


def _parsed(calls: Sequence[protocol.Call[Any]], replies: Sequence[Any]) -> Any:
    """Each call's parsed reply, or the first refusal among them (raised by its parser)."""
    try:
        return protocol.parse_replies(calls, replies)
    except Exception as e:
        return e


class GroupedAsyncQueue(AsyncQueue[Any]):
    """The event loop's Queue: its single script calls without a WAIT share round trips
    (`commit`); every other step runs as relayq.aio.Queue runs it."""

    def __init__(self, name: str, commit: AsyncGroupCommit, **options: Any) -> None:
        super().__init__(name, None, **options)
        self._commit = commit
        self._owns = False

    async def redis(self) -> AsyncRedis:
        return await self._commit.redis()

    async def _step(self, step: Scripts | Reads | Sleep) -> Any:
        if type(step) is Scripts and step.wait is None:
            if len(step.calls) == 1:
                return [await self._commit.run(step.calls[0])]
            return await self._commit.run_together(step.calls)
        return await super()._step(step)
