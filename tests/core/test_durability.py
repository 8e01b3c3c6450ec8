"""The durability table of docs/guarantees.md, row by row, with a real redis-server killed with
SIGKILL: what a crash of the Redis process keeps under each persistence setting. (A crash of
the whole machine, the case where `appendfsync everysec` loses up to about a second, cannot be
staged here.)"""

from __future__ import annotations

from typing import Any

import relayq
from relayq import Queue
from relayq.tools.redis_process import RedisProcess
from tests.support.helpers import keyspace


def busy_queue(q: Queue[Any]) -> None:
    """Confirmed writes of every kind: enqueues (one with an idempotency key, one delayed),
    claims, acks, nacks, a pause and a rate limit."""
    for i in range(60):
        q.enqueue({"n": i}, idempotency_key=f"k{i}" if i % 10 == 0 else None)
    q.enqueue({"later": True}, delay_ms=3_600_000)
    jobs = q.claim(30)
    for job in jobs[:20]:
        q.ack(job.id, job.lease or "", {"done": job.payload["n"]})
    for job in jobs[20:25]:
        q.nack(job.id, job.lease or "", "failed", retry=False)
    q.set_rate_limit(100)


def crash_and_restart(server: RedisProcess) -> Any:
    server.kill()  # SIGKILL: no shutdown, no last save
    server.start()
    return relayq.connect(server.url)


def test_aof_always_keeps_every_confirmed_write(queue_name: str) -> None:
    with RedisProcess(appendonly=True) as server:  # appendonly yes, appendfsync always
        client = relayq.connect(server.url)
        q = Queue(queue_name, client)
        busy_queue(q)
        before = keyspace(client, queue_name)
        after = keyspace(crash_and_restart(server), queue_name)
        assert after == before  # byte for byte: every job, lease, index, counter and key


def test_rdb_snapshots_keep_only_what_the_last_snapshot_had(queue_name: str) -> None:
    with RedisProcess() as server:  # RDB only: saved when asked (SAVE) here
        client = relayq.connect(server.url)
        q = Queue(queue_name, client)
        kept = [q.enqueue({"n": i}).id for i in range(10)]
        client.save()
        snapshot = keyspace(client, queue_name)
        lost = [q.enqueue({"n": i}).id for i in range(10, 20)]
        (claimed,) = q.claim(1)
        q.ack(claimed.id, claimed.lease or "")
        client = crash_and_restart(server)
        q = Queue(queue_name, client)
        assert keyspace(client, queue_name) == snapshot
        assert q.get(kept[0]).state == "ready"  # the acked job is back, to run again
        for job_id in lost:
            assert not client.exists(f"relayq:{{{queue_name}}}:job:{job_id.split('.')[1]}")


def test_no_persistence_keeps_nothing(queue_name: str) -> None:
    with RedisProcess() as server:  # appendonly no, no snapshot taken
        client = relayq.connect(server.url)
        busy_queue(Queue(queue_name, client))
        assert keyspace(crash_and_restart(server), queue_name) == {}
