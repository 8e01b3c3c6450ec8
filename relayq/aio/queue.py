"""`relayq.aio.Queue`: the operations of `relayq.Queue` for asyncio programs, on redis.asyncio.

Each method runs the same operation of `relayq.queue.QueueOps` as its sync twin (same input
checks, same script calls through relayq.protocol, same replies, same exceptions); only the
I/O is asynchronous (relayq/aio/connection.py). So a rule changed in QueueOps changes both.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from .. import events as event_log
from .. import protocol
from ..codec import Codec
from ..job import Job, RestoredJob
from ..limits import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    DEFAULT_PAGE,
    DEFAULT_VISIBILITY_MS,
    EVENTS_PAGE,
    SWEEP_LIMIT,
)
from ..protocol import Op, QueueCalls, Reads, Scripts, parse_replies, parsing_not_replicated
from ..queue import QueueOps
from ..queue_groups import GroupsPage
from ..replication import DEFAULT_TIMEOUT_MS
from ..results import ClaimResult, EnqueueResult, NackResult, NewJob, Outcome, QueueStats
from ..schedules import FireReport, Schedule
from ..steps import Sleep, drive_async
from . import connection

T = TypeVar("T")
R = TypeVar("R")


async def stats_many(redis: aioredis.Redis | RedisCluster, names: Sequence[str]
                     ) -> list[QueueStats]:
    """The twin of relayq.queue.stats_many: stats of many queues in one round trip per Redis
    node (each queue's snapshot is consistent on its own)."""
    calls = [QueueCalls(name).stats() for name in names]
    return parse_replies(calls, await connection.run_pipelined(redis, calls))


class Queue(QueueOps[T]):
    """One named queue, for asyncio. `redis` is a URL (the client is made on first use, and
    closed by `aclose()`), None ($RELAYQ_REDIS_URL) or a client from
    `await relayq.aio.connect()` (yours to close). Options as for `relayq.Queue`.

        async with relayq.aio.Queue("emails", "redis://localhost:6379/0") as q:
            job = await q.enqueue({"to": "ada@example.com"})
    """

    def __init__(self, name: str, redis: aioredis.Redis | RedisCluster | str | None = None, *,
                 payload_type: type[T] | None = None, codec: Codec[T] | None = None,
                 max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES, replicas: int = 0,
                 replica_timeout_ms: int = DEFAULT_TIMEOUT_MS) -> None:
        super().__init__(name, payload_type=payload_type, codec=codec,
                         max_payload_bytes=max_payload_bytes, replicas=replicas,
                         replica_timeout_ms=replica_timeout_ms)
        self._owns = redis is None or isinstance(redis, str)
        self._url = redis if isinstance(redis, str) else None
        self._redis: aioredis.Redis | RedisCluster | None = None if self._owns else redis
        self._connecting = asyncio.Lock()
        if self._owns:
            connection.parse_url(self._url)  # a bad URL fails here, as relayq.Queue's does

    async def redis(self) -> aioredis.Redis | RedisCluster:
        """The client (made on first use from the URL, once however many tasks ask at once)."""
        if self._redis is None:
            async with self._connecting:
                if self._redis is None:
                    self._redis = await connection.connect(self._url)
        return self._redis

    async def aclose(self) -> None:
        """Closes the client if this Queue made it (from a URL)."""
        if self._owns and self._redis is not None:
            client, self._redis = self._redis, None
            await client.aclose()

    async def __aenter__(self) -> Queue[T]:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    # -- plumbing: the asyncio I/O of the operations of QueueOps ----------------------------

    async def _drive(self, op: Op[R]) -> R:
        """Runs an operation, each step awaited on redis.asyncio (relayq/steps.py)."""
        return await drive_async(op, self._step)

    async def _step(self, step: Scripts | Reads | Sleep) -> Any:
        if type(step) is Sleep:
            await asyncio.sleep(step.seconds)
            return None
        client = await self.redis()
        if type(step) is Scripts:
            calls = step.calls
            if step.wait is None and len(calls) == 1:
                return [calls[0].parse(await connection.run(client, calls[0]))]
            with parsing_not_replicated(calls):
                replies = await connection.run_pipelined(client, calls, step.wait)
            return parse_replies(calls, replies)
        return await connection.read(client, step.commands)

    # -- producing ------------------------------------------------------------------------

    async def enqueue(self, payload: T, *, replicas: int | None = None,
                      replica_timeout_ms: int | None = None, **options: Any) -> EnqueueResult:
        """Adds one job (see relayq.Queue.enqueue)."""
        return await self._drive(self._enqueue(payload, replicas, replica_timeout_ms, options))

    async def enqueue_many(self, jobs: Iterable[NewJob[T] | T], *, replicas: int | None = None,
                           replica_timeout_ms: int | None = None) -> list[EnqueueResult]:
        """Adds many jobs in one round trip (see relayq.Queue.enqueue_many)."""
        return await self._drive(self._enqueue_many(jobs, replicas, replica_timeout_ms))

    # -- consuming ------------------------------------------------------------------------

    async def claim(self, count: int = 1, *, visibility_ms: int = DEFAULT_VISIBILITY_MS,
                    worker_id: str | None = None) -> ClaimResult:
        return await self._drive(self._claim(count, visibility_ms, worker_id))

    async def ack(self, job_id: str, lease: str, result: Any = None, *,
                  replicas: int | None = None, replica_timeout_ms: int | None = None) -> str:
        return await self._drive(self._ack(job_id, lease, result, replicas, replica_timeout_ms))

    async def ack_many(self, acks: Iterable[tuple[str, str, Any]], *,
                       replicas: int | None = None, replica_timeout_ms: int | None = None
                       ) -> list[str]:
        return await self._drive(self._ack_many(acks, replicas, replica_timeout_ms))

    async def nack(self, job_id: str, lease: str, error: str = "", *, retry: bool = True,
                   delay_ms: int | None = None, replicas: int | None = None,
                   replica_timeout_ms: int | None = None) -> NackResult:
        return await self._drive(self._nack(job_id, lease, error, retry, delay_ms, replicas,
                                            replica_timeout_ms))

    async def heartbeat(self, job_id: str, lease: str,
                        visibility_ms: int = DEFAULT_VISIBILITY_MS) -> int:
        return await self._drive(self._heartbeat(job_id, lease, visibility_ms))

    async def heartbeat_many(self, leases: Iterable[tuple[str, str]],
                             visibility_ms: int = DEFAULT_VISIBILITY_MS
                             ) -> list[protocol.Heartbeat]:
        return await self._drive(self._heartbeat_many(leases, visibility_ms))

    async def beat(self, job_id: str, lease: str, visibility_ms: int = DEFAULT_VISIBILITY_MS
                   ) -> protocol.Heartbeat:
        return await self._drive(self._beat(job_id, lease, visibility_ms))

    async def release_many(self, leases: Iterable[tuple[str, str]]) -> list[str]:
        return await self._drive(self._release_many(leases))

    async def settle(self, outcomes: Sequence[Outcome], claim: int = 0, *,
                     visibility_ms: int = DEFAULT_VISIBILITY_MS, worker_id: str | None = None
                     ) -> tuple[list[str], ClaimResult | None]:
        return await self._drive(self._settle(outcomes, claim, visibility_ms, worker_id))

    # -- reading --------------------------------------------------------------------------

    async def get(self, job_id: str) -> Job[T]:
        return await self._drive(self._get(job_id))

    async def wait_for_job(self, job_id: str, timeout: float = 30.0, *, poll_s: float = 0.05,
                           on_change: Callable[[Job[T]], None] | None = None) -> Job[T]:
        """The job once it is finished (see relayq.Queue.wait_for_job)."""
        return await self._drive(self._wait(job_id, timeout, poll_s, on_change))

    async def stats(self) -> QueueStats:
        return await self._drive(self._stats())

    async def dead(self, limit: int = DEFAULT_PAGE, cursor: str | None = None
                   ) -> tuple[list[Job[T]], str | None]:
        return await self.jobs("dead", limit, cursor)

    async def jobs(self, state: str, limit: int = DEFAULT_PAGE, cursor: str | None = None,
                   search: str | None = None) -> tuple[list[Job[T]], str | None]:
        return await self._drive(self._jobs(state, limit, cursor, search))

    def events(self, since: str | None = None, *, wait_s: float | None = None
               ) -> AsyncIterator[event_log.Event]:
        """The queue's event log after position `since` as it grows, a `reset` first when the
        log no longer holds `since`; ends once nothing came for `wait_s` seconds (see
        relayq.Queue.events). `async for event in queue.events(...)`; a bad `since` raises
        InvalidEventId here, as the sync twin does."""
        return self._follow(None if since is None else event_log.check_event_id(since),
                            wait_s)

    async def _follow(self, since: str | None, wait_s: float | None
                      ) -> AsyncIterator[event_log.Event]:
        position = (await self._drive(event_log.last_position(self.keys)) if since is None
                    else since)
        state = event_log.Follow(position, wait_s)
        while True:
            events = await self._drive(event_log.read_after(self.keys, self.name,
                                                            state.position))
            state.saw(events)
            for event in events:
                yield event
            if events:
                continue
            wait_ms = state.wait_ms()
            if wait_ms is None:
                return
            await self._drive(event_log.wait_after(self.keys, state.position, wait_ms))

    async def read_events(self, after: str, limit: int = EVENTS_PAGE
                          ) -> list[event_log.Event]:
        """One page of the event log after position `after`, without waiting."""
        return await self._drive(event_log.read_page(self.keys, self.name, after, limit))

    async def last_event_id(self) -> str:
        """The position of the newest event in the log ('0-0' when empty)."""
        return await self._drive(event_log.last_position(self.keys))

    # -- operating ------------------------------------------------------------------------

    async def restore(self, jobs: Sequence[RestoredJob], *, min_sequence: int | None = None
                      ) -> list[str]:
        return await self._drive(self._restore(jobs, min_sequence))

    async def cancel(self, job_id: str) -> str:
        return await self._drive(self._cancel(job_id))

    async def progress(self, job_id: str, lease: str, fraction: float, info: Any = None
                       ) -> bool:
        return await self._drive(self._progress(job_id, lease, fraction, info))

    async def requeue_dead_job(self, job_id: str) -> None:
        await self._drive(self._dead_op(self._calls.requeue, job_id, 1))

    async def purge_dead_job(self, job_id: str) -> None:
        await self._drive(self._dead_op(self._calls.purge, job_id, 1))

    async def requeue_all_dead(self) -> int:
        return await self._drive(self._repeat(self._calls.requeue))

    async def purge_all_dead(self) -> int:
        return await self._drive(self._repeat(self._calls.purge))

    async def pause(self) -> None:
        await self._drive(self._script(self._calls.pause(True), register=True))

    async def resume(self) -> None:
        await self._drive(self._script(self._calls.pause(False), register=True))

    async def set_rate_limit(self, rate: float, burst: int | None = None) -> None:
        await self._drive(self._script(self._rate_limit_call(rate, burst), register=True))

    async def clear_rate_limit(self) -> None:
        await self._drive(self._script(self._calls.rate_limit(None, None)))

    async def configure(self, **settings: float) -> None:
        await self._drive(self._script(self._configure_call(settings), register=True))

    async def settings(self) -> dict[str, float]:
        return await self._drive(self._settings())

    # -- fair queues (relayq/queue_groups.py) -------------------------------------------

    async def set_group_limits(self, group: str, *, max_running: int | None = None,
                               rate: float | None = None, burst: int | None = None) -> None:
        """Gives `group` limits of its own (see relayq.Queue.set_group_limits)."""
        await self._drive(self._set_group_limits(group, max_running, rate, burst))

    async def clear_group_limits(self, group: str) -> None:
        await self._drive(self._clear_group_limits(group))

    async def groups(self, limit: int = DEFAULT_PAGE, cursor: str | None = None) -> GroupsPage:
        """A page of the queue's groups, the largest backlog first."""
        return await self._drive(self._groups(limit, cursor))

    async def pass_wake(self) -> None:
        await self._drive(self._pass_wake())

    async def reap(self, limit: int = SWEEP_LIMIT) -> tuple[int, int]:
        reaped = await self._drive(self._script(self._calls.reap(limit)))
        return reaped.requeued, reaped.dead

    async def promote(self, limit: int = SWEEP_LIMIT) -> tuple[int, int | None]:
        return await self._drive(self._script(self._calls.promote(limit)))

    async def move_workflow_facts(self) -> int:
        return await self._drive(self._move_workflow_facts())

    # -- periodic schedules (relayq/queue_schedules.py) ---------------------------------

    async def schedule(self, schedule_id: str, payload: Any, *, cron: str | None = None,
                       every_ms: int | None = None, tz: str | None = None,
                       start_at: Any = None, end_at: Any = None, misfire: str | None = None,
                       paused: bool | None = None, origin: str = "", **options: Any
                       ) -> Schedule:
        """Saves a periodic schedule (see relayq.Queue.schedule)."""
        return await self._drive(self._schedule(schedule_id, payload, cron, every_ms, tz,
                                                start_at, end_at, misfire, paused, origin,
                                                options))

    async def schedules(self) -> list[Schedule]:
        return await self._drive(self._schedules())

    async def get_schedule(self, schedule_id: str) -> Schedule:
        return await self._drive(self._get_schedule(schedule_id))

    async def unschedule(self, schedule_id: str) -> None:
        await self._drive(self._unschedule(schedule_id))

    async def pause_schedule(self, schedule_id: str) -> Schedule:
        return await self._drive(self._pause_schedule(schedule_id, True))

    async def resume_schedule(self, schedule_id: str) -> Schedule:
        return await self._drive(self._pause_schedule(schedule_id, False))

    async def trigger_schedule(self, schedule_id: str) -> str:
        return await self._drive(self._trigger_schedule(schedule_id))

    async def fire_schedules(self, ids: Sequence[str] = ()) -> FireReport:
        """Fires the due ticks of the queue's schedules (see relayq.Queue.fire_schedules)."""
        return await self._drive(self._fire_schedules(ids))
