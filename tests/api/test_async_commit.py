"""The asyncio group commit (relayq.api.async_commit) of the routes served on the event loop:
concurrent requests share round trips and still get their own results and errors; a Redis
that restarted (scripts flushed, connection closed) costs no request its answer."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

import relayq
from relayq import InvalidArgument
from relayq.api.async_commit import AsyncGroupCommit, GroupedAsyncQueue
from relayq.auth import KeyStore
from relayq.results import NewJob, Outcome
from relayq.tools.redis_process import RedisProcess
from tests.api.test_group_commit import evalsha_calls


def test_concurrent_enqueues_share_a_call_and_keep_their_own_answers(
        r: Any, redis_url: str, queue_name: str) -> None:
    async def scenario() -> tuple[list[Any], int, int]:
        commit = AsyncGroupCommit(redis_url)
        q = GroupedAsyncQueue(queue_name, commit)
        try:
            await q.enqueue({"warm": True})  # scripts loaded, connection made
            before = evalsha_calls(r)
            jobs = [NewJob({"n": i}, relayq.JobOptions(priority=999 if i == 3 else 0))
                    for i in range(8)]
            outcomes = await asyncio.gather(*(q.enqueue_many([job]) for job in jobs),
                                            return_exceptions=True)
            return outcomes, evalsha_calls(r) - before, commit.calls.rounds
        finally:
            await commit.aclose()

    outcomes, calls, rounds = asyncio.run(scenario())
    assert isinstance(outcomes[3], InvalidArgument) and "priority" in str(outcomes[3])
    ids = [o[0].id for i, o in enumerate(outcomes) if i != 3]
    q = relayq.Queue(queue_name, r)
    assert [q.get(i).payload["n"] for i in ids] == [0, 1, 2, 4, 5, 6, 7]
    # the merged call was refused whole (nothing written), then each ran alone: 1 + 8 calls
    # at most, in far fewer rounds than requests
    assert calls <= 9 and rounds <= 3, (calls, rounds)


def test_key_lookups_of_a_round_are_one_hmget_and_a_revoke_is_seen_at_once(
        r: Any, redis_url: str) -> None:
    store = KeyStore(r)
    record, _ = store.create("async-grouped", ["jobs:read"])

    async def scenario() -> tuple[list[Any], int, Any]:
        commit = AsyncGroupCommit(redis_url)
        try:
            before = int(r.info("commandstats").get("cmdstat_hmget", {}).get("calls", 0))
            found = await asyncio.gather(*(commit.lookup_key(k) for k in
                                           [record.id, "0123456789abcdef", record.id]))
            hmgets = int(r.info("commandstats")["cmdstat_hmget"]["calls"]) - before
            store.revoke(record.id)
            return found, hmgets, await commit.lookup_key(record.id)
        finally:
            await commit.aclose()

    found, hmgets, after = asyncio.run(scenario())
    assert found[0] == found[2] and found[0] is not None and found[1] is None
    assert hmgets == 1 and after is None


@pytest.fixture
def private_redis() -> Iterator[RedisProcess]:
    """A redis-server of this test alone: it flushes the scripts and closes every connection,
    which on the session's Redis would hit the other fixtures' clients (the session server)."""
    server = RedisProcess().start()
    yield server
    server.stop()


def test_a_flushed_script_cache_and_a_closed_connection_cost_no_answer(
        private_redis: RedisProcess, queue_name: str) -> None:
    redis_url = private_redis.url
    r = relayq.connect(redis_url)

    async def scenario() -> list[Any]:
        commit = AsyncGroupCommit(redis_url)
        q = GroupedAsyncQueue(queue_name, commit)
        try:
            await q.enqueue({"n": 0})
            r.script_flush()  # as after a restart: NOSCRIPT, loaded, run again
            first = await asyncio.gather(*(q.enqueue({"n": n}) for n in (1, 2, 3)))
            r.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
            await asyncio.sleep(0.05)
            second = await asyncio.gather(*(q.enqueue({"n": n}) for n in (4, 5)))
            return [*first, *second]
        finally:
            await commit.aclose()

    results = asyncio.run(scenario())
    q = relayq.Queue(queue_name, redis_url)
    assert [q.get(res.id).payload["n"] for res in results] == [1, 2, 3, 4, 5]


def test_an_operation_of_several_calls_keeps_its_order_in_a_shared_round(
        r: Any, redis_url: str, queue_name: str) -> None:
    """settle's ack then claim go in one round with other requests' enqueues, in order and
    unmerged: the ack lands before the claim, which finds the jobs enqueued meanwhile."""
    async def scenario() -> tuple[Any, list[Any], int]:
        commit = AsyncGroupCommit(redis_url)
        q = GroupedAsyncQueue(queue_name, commit)
        try:
            await q.enqueue({"n": 0})
            (held,) = await q.claim(1)
            rounds = commit.calls.rounds
            settled, *enqueued = await asyncio.gather(
                q.settle([Outcome(held.id, held.lease or "", "ack")], 5),
                *(q.enqueue({"n": n}) for n in (1, 2)))
            return settled, enqueued, commit.calls.rounds - rounds
        finally:
            await commit.aclose()

    (statuses, claimed), enqueued, rounds = asyncio.run(scenario())
    assert statuses == ["ok"] and rounds <= 2
    q = relayq.Queue(queue_name, r)
    assert q.stats().totals["succeeded"] == 1
    # the claim ran after the ack in its round; the enqueues of the same round may come first
    assert {job.payload["n"] for job in claimed} <= {1, 2}
    assert all(q.get(e.id).state in ("ready", "running") for e in enqueued)
