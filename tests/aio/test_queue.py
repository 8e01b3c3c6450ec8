"""relayq.aio.Queue against a real redis-server, every operation, each test run on both twins
(relayq.Queue and relayq.aio.Queue, see conftest.py): same results, same exceptions."""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
from typing import Any

import pytest

import relayq
import relayq.aio
from relayq import (
    Conflict,
    InvalidArgument,
    InvalidJobId,
    InvalidQueueName,
    JobNotFound,
    LeaseLost,
    NewJob,
    NotReplicated,
    PayloadTooLarge,
    RedisUnavailable,
    ScheduleNotFound,
)
from relayq.errors import InvalidEventId
from relayq.keys import SCHEDULED_QUEUES
from relayq.limits import BATCH_LIMIT
from relayq.results import Outcome
from relayq.tools.redis_process import free_port
from tests.support import topologies
from tests.support.helpers import wait_until


def test_enqueue_claim_ack_get(twin_q: Any, r: Any) -> None:
    res = twin_q.enqueue({"n": 1}, type="email", priority=3)
    assert res.state == "ready" and not res.duplicate
    assert twin_q.enqueue({}, idempotency_key="k").duplicate is False
    assert twin_q.enqueue({}, idempotency_key="k").duplicate is True
    claimed = list(twin_q.claim(1, worker_id="w1"))
    assert [j.id for j in claimed] == [res.id]  # the highest priority first
    job = claimed[0]
    assert (job.payload, job.type, job.state) == ({"n": 1}, "email", "running")
    assert twin_q.heartbeat(job.id, job.lease, 60_000) > 0
    twin_q.ack(job.id, job.lease, {"sent": True})
    done = twin_q.get(job.id)
    assert (done.state, done.result, done.worker_id) == ("succeeded", {"sent": True}, "w1")
    assert twin_q.name in r.smembers("relayq:queues")


def test_nack_retries_then_dead_and_dead_letter_operations(twin_q: Any) -> None:
    first = twin_q.enqueue("a", max_attempts=1).id
    second = twin_q.enqueue("b", max_attempts=2).id
    jobs = {j.id: j for j in twin_q.claim(2)}
    assert twin_q.nack(first, jobs[first].lease, "boom").state == "dead"
    retried = twin_q.nack(second, jobs[second].lease, "again", delay_ms=0)
    assert (retried.state, retried.attempts) == ("ready", 1)
    page, cursor = twin_q.dead()
    assert [j.id for j in page] == [first] and cursor is None
    assert page[0].last_error == "boom"
    twin_q.requeue_dead_job(first)
    assert twin_q.get(first).state == "ready"
    assert twin_q.requeue_all_dead() == 0
    job = next(j for j in twin_q.claim(2) if j.id == first)
    twin_q.nack(first, job.lease, retry=False)
    twin_q.purge_dead_job(first)
    with pytest.raises(JobNotFound):
        twin_q.get(first)
    assert twin_q.purge_all_dead() == 0


def test_enqueue_many_settle_release_and_listing(twin_q: Any) -> None:
    ids = [r.id for r in twin_q.enqueue_many([NewJob(i) for i in range(BATCH_LIMIT + 5)])]
    assert len(set(ids)) == BATCH_LIMIT + 5
    page, cursor = twin_q.jobs("ready", limit=3)
    assert [j.id for j in page] == ids[:3] and cursor == "3"
    found, _ = twin_q.jobs("ready", limit=5, search=ids[7])
    assert [j.id for j in found] == [ids[7]]
    a, b, c = twin_q.claim(3)
    statuses, claimed = twin_q.settle(
        [Outcome(a.id, a.lease, "ack", result_json="1"),
         Outcome(b.id, b.lease, "nack", error="x", retry=False),
         Outcome(c.id, c.lease, "release")], claim=2)
    assert statuses == ["ok", "ok", "ok"]
    assert len(claimed) == 2 and c.id not in {a.id, b.id}
    assert twin_q.release_many([(j.id, j.lease) for j in claimed]) == ["ok", "ok"]
    assert twin_q.ack_many([(c.id, "stale", None)]) == ["lease_lost"]
    stats = twin_q.stats()
    assert (stats.ready, stats.dead, stats.succeeded) == (BATCH_LIMIT + 3, 1, 1)


def test_operating_a_queue(twin_q: Any, r: Any) -> None:
    job_id = twin_q.enqueue("x", delay_ms=60_000).id
    twin_q.pause()
    twin_q.enqueue("y")
    assert twin_q.stats().paused and len(twin_q.claim(1)) == 0
    twin_q.resume()
    twin_q.set_rate_limit(100, 5)
    assert twin_q.stats().rate_limit is not None
    twin_q.clear_rate_limit()
    twin_q.configure(max_attempts=7)
    assert twin_q.get(twin_q.enqueue("z").id).max_attempts == 7
    twin_q.cancel(job_id)
    assert twin_q.get(job_id).state == "cancelled"
    assert twin_q.promote() == (0, None) and twin_q.reap() == (0, 0)
    tokens = r.llen(twin_q.keys.wake)
    twin_q.pass_wake()
    assert r.llen(twin_q.keys.wake) == tokens + 1


def test_wait_for_job(twin_q: Any) -> None:
    job_id = twin_q.enqueue("x").id
    with pytest.raises(TimeoutError, match="still ready"):
        twin_q.wait_for_job(job_id, timeout=0.05)
    job = list(twin_q.claim(1))[0]
    twin_q.ack(job.id, job.lease, 42)
    seen: list[str] = []
    assert twin_q.wait_for_job(job_id, on_change=lambda j: seen.append(j.state)).result == 42
    assert seen == ["succeeded"]


def test_schedule_operations(twin_q: Any, r: Any) -> None:
    saved = twin_q.schedule("s", {"p": 1}, every_ms=60_000, priority=4)
    assert (saved.outcome, saved.paused, saved.next_run_at is not None) == ("created", False, True)
    assert twin_q.schedule("s", {"p": 1}, every_ms=60_000, priority=4).outcome == "unchanged"
    assert twin_q.name in r.smembers(SCHEDULED_QUEUES)
    assert [s.id for s in twin_q.schedules()] == ["s"]
    assert twin_q.get_schedule("s").definition.every_ms == 60_000
    # a missed tick: the schedule's next tick five minutes old, as if nothing had fired it
    key = twin_q.keys.schedule("s")
    tick = int(r.hget(key, "next")) - 300_000
    r.hset(key, "next", tick)
    r.zadd(twin_q.keys.due_schedules, {"s": tick})
    report = twin_q.fire_schedules()
    # the 4 ticks before the save were missed (the save's own instant is never a tick);
    # misfire "once": one job for the lot
    assert (report.fired, report.missed) == (1, 4)
    assert twin_q.fire_schedules().fired == 0  # taken: the next tick is a minute away
    assert twin_q.pause_schedule("s").paused
    job = twin_q.get(twin_q.trigger_schedule("s"))  # even paused
    assert (job.schedule_id, job.priority, job.payload) == ("s", 4, {"p": 1})
    resumed = twin_q.resume_schedule("s")
    assert not resumed.paused and resumed.next_run_at is not None
    assert resumed.last_job_id == job.id
    twin_q.unschedule("s")
    assert twin_q.schedules() == []
    with pytest.raises(ScheduleNotFound):
        twin_q.get_schedule("s")
    with pytest.raises(ScheduleNotFound):
        twin_q.unschedule("s")
    with pytest.raises(InvalidArgument):
        twin_q.schedule("t", {}, every_ms=60_000, paused="yes")
    with pytest.raises(InvalidArgument):
        twin_q.schedule("t", {}, cron="not a cron")
    assert twin_q.schedules() == []  # refused: nothing written


def take(twin_q: Any, events: Any, count: int | None = None) -> list[Any]:
    """Up to `count` (None: all) events of `events`, an iterator of either twin."""
    if hasattr(events, "__anext__"):
        async def collect() -> list[Any]:
            got = []
            async for event in events:
                got.append(event)
                if len(got) == count:
                    break
            return got
        return twin_q._loop.run_until_complete(collect())  # type: ignore[no-any-return]
    return list(itertools.islice(events, count))


def blocked_clients(r: Any, key: str) -> int:
    """Clients blocked on the Redis (the Cluster node) that holds `key`."""
    if hasattr(r, "get_node_from_key"):
        return int(r.info("clients", target_nodes=r.get_node_from_key(key))["blocked_clients"])
    return int(r.info("clients")["blocked_clients"])


def test_event_log(twin_q: Any, r: Any, redis_url: str) -> None:
    assert twin_q.last_event_id() == "0-0" and twin_q.read_events("0-0") == []  # no log yet
    assert take(twin_q, twin_q.events(wait_s=0.05)) == []
    first = twin_q.enqueue("a").id
    job = list(twin_q.claim(1))[0]
    twin_q.ack(job.id, job.lease)
    logged = twin_q.read_events("0-0")
    assert [(e.type, e.job_ids) for e in logged] == [
        ("ready", [first]), ("running", [first]), ("succeeded", [first])]
    assert twin_q.last_event_id() == logged[-1].id
    assert twin_q.read_events(logged[0].id, 1) == [logged[1]]
    events = twin_q.events(since="0", wait_s=5)
    assert take(twin_q, events, 3) == logged
    # the reader now blocks on the log (XREAD); an enqueue elsewhere wakes it
    blocked = blocked_clients(r, twin_q.keys.log)
    other = relayq.Queue(twin_q.name, redis_url)
    thread = threading.Thread(target=lambda: (
        wait_until(lambda: blocked_clients(r, twin_q.keys.log) > blocked, timeout=5),
        other.enqueue("b")))
    thread.start()
    try:
        later = take(twin_q, events, 1)
    finally:
        thread.join()
        other.redis.close()
    assert [e.type for e in later] == ["ready"] and later[0].id > logged[-1].id
    twin_q.configure(event_log_max=1)  # trimmed past 0-0: a reset, then the oldest held
    for n in range(250):
        twin_q.enqueue(n)
    trimmed = twin_q.read_events("1-0", 3)
    assert trimmed[0].type == "reset" and trimmed[1].id == r.xrange(twin_q.keys.log,
                                                                    count=1)[0][0]
    with pytest.raises(InvalidEventId):
        twin_q.events(since="x")
    with pytest.raises(InvalidEventId):
        twin_q.read_events("1--1")
    with pytest.raises(InvalidArgument):
        twin_q.read_events("0-0", 0)


ERROR_CASES = [
    ("enqueue", ("x",), {"priority": 10**9}, InvalidArgument),
    ("enqueue", ("x" * 2_000_000,), {}, PayloadTooLarge),
    ("enqueue", ("x",), {"no_such_option": 1}, TypeError),
    ("claim", (0,), {}, InvalidArgument),
    ("get", ("other.1",), {}, InvalidJobId),
    ("get", ("nonsense",), {}, InvalidJobId),
    ("ack", ("{q}.999999", "lease"), {}, JobNotFound),
    ("nack", ("{q}.999999", "lease"), {}, JobNotFound),
    ("cancel", ("{q}.999999",), {}, JobNotFound),
    ("requeue_dead_job", ("{q}.999999",), {}, JobNotFound),
    ("jobs", ("nope",), {}, InvalidArgument),
    ("set_rate_limit", (-1,), {}, InvalidArgument),
    ("configure", (), {}, InvalidArgument),
    ("configure", (), {"max_attempts": -5}, InvalidArgument),
]


@pytest.mark.parametrize(("method", "args", "kwargs", "error"), ERROR_CASES,
                         ids=[f"{c[0]}-{c[3].__name__}" for c in ERROR_CASES])
def test_errors_map_to_the_same_exceptions(twin_q: Any, method: str, args: tuple[Any, ...],
                                           kwargs: dict[str, Any], error: type[Exception]
                                           ) -> None:
    args = tuple(a.replace("{q}", twin_q.name) if isinstance(a, str) else a for a in args)
    with pytest.raises(error):
        getattr(twin_q, method)(*args, **kwargs)


def test_lease_and_state_refusals(twin_q: Any) -> None:
    job = list(twin_q.claim(1)) or None
    assert job is None
    job_id = twin_q.enqueue("x").id
    job = list(twin_q.claim(1))[0]
    with pytest.raises(LeaseLost):
        twin_q.ack(job_id, "not-the-lease")
    with pytest.raises(LeaseLost):
        twin_q.heartbeat(job_id, "not-the-lease")
    assert twin_q.cancel(job_id) == "running"  # running: its cancel is requested
    assert twin_q.ack(job_id, job.lease) == "cancelled"  # the cancel wins
    with pytest.raises(Conflict):  # a finished job
        twin_q.cancel(job_id)


def test_scripts_are_reloaded_after_script_flush(twin_q: Any, r: Any) -> None:
    twin_q.enqueue("before")
    r.script_flush()
    assert twin_q.enqueue("after").state == "ready"  # NOSCRIPT: loaded and sent again
    r.script_flush()
    a, b = twin_q.claim(2)  # a pipeline of NOSCRIPT replies: loaded, repeated in order
    assert twin_q.settle([Outcome(a.id, a.lease, "ack"), Outcome(b.id, b.lease, "ack")],
                         claim=1)[0] == ["ok", "ok"]


def test_not_replicated_carries_the_results(twin_q: Any) -> None:
    """More replicas asked than any test topology has: both twins raise NotReplicated, which
    carries the result (the job was written on the primary)."""
    with pytest.raises(NotReplicated) as caught:
        twin_q.enqueue("x", replicas=5, replica_timeout_ms=10)
    assert [r.state for r in caught.value.result] == ["ready"]


def test_unreachable_redis_is_redis_unavailable(queue_name: str,
                                                loop: asyncio.AbstractEventLoop) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    with pytest.raises(RedisUnavailable):
        relayq.Queue(queue_name, url).enqueue("x")
    with pytest.raises(RedisUnavailable):
        loop.run_until_complete(relayq.aio.Queue(queue_name, url).enqueue("x"))


@pytest.mark.parametrize("url", ["http://x", "redis+sentinel://127.0.0.1:1"])
def test_urls_are_parsed_as_for_sync_code(url: str, loop: asyncio.AbstractEventLoop) -> None:
    with pytest.raises(InvalidArgument) as sync_error:
        relayq.connect(url)
    with pytest.raises(InvalidArgument) as aio_error:
        loop.run_until_complete(relayq.aio.connect(url))
    assert str(aio_error.value) == str(sync_error.value)  # one parser


def test_an_unreachable_cluster_is_redis_unavailable(loop: asyncio.AbstractEventLoop) -> None:
    url = f"redis+cluster://127.0.0.1:{free_port()}"
    with pytest.raises(RedisUnavailable) as sync_error:
        relayq.connect(url)
    with pytest.raises(RedisUnavailable) as aio_error:
        loop.run_until_complete(relayq.aio.connect(url))
    assert str(aio_error.value).split(":")[0] == str(sync_error.value).split(":")[0]
    with pytest.raises(InvalidQueueName):
        relayq.aio.Queue("bad name!", "redis://127.0.0.1:1/0")


def test_a_url_gets_the_client_kind_relayq_connect_gives_it(redis_url: str,
                                                            loop: asyncio.AbstractEventLoop
                                                            ) -> None:
    """A cluster URL (redis+cluster:// or redis:// of a node) gets a cluster client on both
    sides, any other URL a plain one."""
    sync_client = relayq.connect(redis_url)
    client = loop.run_until_complete(relayq.aio.connect(redis_url))
    try:
        assert relayq.aio.connection.is_cluster(client) == relayq.connection.is_cluster(
            sync_client) == (os.environ.get(topologies.ENV) == "cluster")
        assert loop.run_until_complete(client.ping())
    finally:
        loop.run_until_complete(client.aclose())
        sync_client.close()


def test_a_client_of_your_own_and_a_typed_payload(redis_url: str, queue_name: str,
                                                  loop: asyncio.AbstractEventLoop) -> None:
    from dataclasses import dataclass

    @dataclass
    class Order:
        sku: str

    async def scenario() -> Order:
        client = await relayq.aio.connect(redis_url)
        try:
            q = relayq.aio.Queue(queue_name, client, payload_type=Order)
            job_id = (await q.enqueue(Order("a-1"))).id
            await q.aclose()  # not ours to close: the client still works
            return (await q.get(job_id)).payload
        finally:
            await client.aclose()

    assert loop.run_until_complete(scenario()) == Order("a-1")


def test_many_tasks_share_the_one_client_a_url_makes(redis_url: str, queue_name: str,
                                                     loop: asyncio.AbstractEventLoop,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Concurrent first calls make one client, not one each (connect awaits a probe)."""
    made = []
    real_connect = relayq.aio.connection.connect

    async def counting_connect(url: str | None = None, **options: Any) -> Any:
        made.append(url)
        return await real_connect(url, **options)

    monkeypatch.setattr(relayq.aio.connection, "connect", counting_connect)

    async def scenario() -> int:
        async with relayq.aio.Queue(queue_name, redis_url) as q:
            results = await asyncio.gather(*(q.enqueue(i) for i in range(50)))
            return len({r.id for r in results})

    assert loop.run_until_complete(scenario()) == 50
    assert made == [redis_url]
