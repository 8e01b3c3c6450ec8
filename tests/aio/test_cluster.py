"""relayq.aio on a real Redis Cluster of three masters: URL detection as for relayq.connect,
pipelines of several queues grouped by node, MOVED after a stale slot map (the slot map re-read,
the calls repeated), reads sent to the node of their key, and a broken connection that re-reads
the slot map without resending. (tests/aio/test_queue.py runs every operation on a cluster
under RELAYQ_TEST_TOPOLOGY=cluster; these are the cluster-only paths, in the default run.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

import relayq.aio
from relayq import InvalidArgument, RedisUnavailable, redis_adapter
from relayq.aio.queue import stats_many
from relayq.keys import QUEUES
from relayq.limits import BATCH_LIMIT
from tests.support.topologies import Cluster, admin


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = Cluster(masters=3).start()
    yield c
    c.stop()


def test_a_node_url_gets_a_cluster_client(cluster: Cluster,
                                          loop: asyncio.AbstractEventLoop) -> None:
    url = f"redis://127.0.0.1:{cluster.nodes[1].port}/0"
    name = cluster.queue_names(0, 1, "detect")[0]  # a queue on another master

    async def scenario() -> list[str]:
        client = await relayq.aio.connect(url)
        assert isinstance(client, RedisCluster)
        try:
            q = relayq.aio.Queue(name, client)
            job_id = (await q.enqueue({"x": 1})).id
            return [job_id, *(j.id for j in await q.claim())]
        finally:
            await client.aclose()

    first, claimed = loop.run_until_complete(scenario())
    assert claimed == first
    with pytest.raises(InvalidArgument, match="only database 0"):
        loop.run_until_complete(relayq.aio.connect(f"redis://127.0.0.1:{cluster.nodes[1].port}/1"))


def test_stats_of_queues_on_every_master_one_round_trip_per_node(
        cluster: Cluster, loop: asyncio.AbstractEventLoop,
        monkeypatch: pytest.MonkeyPatch) -> None:
    names = [cluster.queue_names(m, 1, f"stats{m}-")[0] for m in range(3)]
    names.append(cluster.queue_names(0, 2, "stats0-")[1])  # a second queue on the first master
    trips: list[str] = []
    real = redis_adapter.aio_node_commands

    async def counting(node: Any, batch: Any) -> list[Any]:
        trips.append(node.name)
        return await real(node, batch)

    async def scenario() -> list[tuple[str, int]]:
        async with relayq.aio.Queue(names[0], cluster.url) as q:
            client = await q.redis()
            assert await stats_many(client, []) == []
            for depth, name in enumerate(names, start=1):
                await relayq.aio.Queue(name, client).enqueue_many(
                    [{"n": i} for i in range(depth)])
            await stats_many(client, names)  # loads the stats script on every master
            monkeypatch.setattr(redis_adapter, "aio_node_commands", counting)
            stats = await stats_many(client, names)
            return [(s.queue, s.ready) for s in stats]

    assert loop.run_until_complete(scenario()) == [(n, d) for d, n in enumerate(names, 1)]
    assert sorted(trips) == sorted(set(trips)) and len(trips) == 3  # one round trip per master


def test_pipelines_follow_moved_after_a_stale_slot_map(cluster: Cluster,
                                                       loop: asyncio.AbstractEventLoop) -> None:
    name = cluster.queue_names(1, 1, "moved")[0]
    slot = key_slot(f"{{{name}}}".encode())

    async def scenario() -> tuple[int, int, str, str]:
        async with relayq.aio.Queue(name, cluster.url) as q:
            await q.enqueue({})
            client = await q.redis()
            right = client.nodes_manager.slots_cache[slot][0]
            wrong = next(n for n in client.get_primaries() if n.name != right.name)
            client.nodes_manager.slots_cache[slot] = [wrong]  # as if the slot had moved away
            results = await q.enqueue_many([{"n": i} for i in range(3)])  # MOVED, repeated
            now = client.nodes_manager.slots_cache[slot][0]
            return len({r.id for r in results}), (await q.stats()).ready, now.name, right.name

    made, ready, now, right = loop.run_until_complete(scenario())
    assert (made, ready, now) == (3, 4, right)


def test_reads_go_to_the_node_of_their_key(cluster: Cluster,
                                           loop: asyncio.AbstractEventLoop) -> None:
    """The registry of queues (SADD relayq:queues) lives on another master than the queue."""
    registry = key_slot(QUEUES.encode())
    other = next(m for m in range(3) if registry not in set(cluster.slots[m]))
    name = cluster.queue_names(other, 1, "reads")[0]

    async def scenario() -> tuple[Any, list[Any]]:
        async with relayq.aio.Queue(name, cluster.url) as q:
            ids = [r.id for r in await q.enqueue_many([{"n": i} for i in range(3)])]
            page, _ = await q.jobs("ready")
            return await (await q.redis()).smembers(QUEUES), [j.id for j in page] == ids

    members, listed = loop.run_until_complete(scenario())
    assert name in members and listed


def test_a_broken_connection_rereads_the_slot_map_and_resends_nothing(
        cluster: Cluster, loop: asyncio.AbstractEventLoop) -> None:
    """A pipeline (more jobs than one enqueue script takes) on a connection the node closed."""
    name = cluster.queue_names(2, 1, "broken")[0]
    node = admin(cluster.nodes[2])
    jobs = [{"n": i} for i in range(BATCH_LIMIT + 1)]

    async def scenario() -> tuple[int, int]:
        async with relayq.aio.Queue(name, cluster.url) as q:
            await q.enqueue_many(jobs)  # a connection to the node
            before = cluster.slot_map_reads()
            node.client_kill_filter(_type="normal", skipme=True)
            with pytest.raises(RedisUnavailable):
                await q.enqueue_many(jobs)
            reread = cluster.slot_map_reads() - before
            await q.enqueue_many(jobs)  # on a new connection
            return reread, (await q.stats()).ready

    reread, ready = loop.run_until_complete(scenario())
    assert reread > 0 and ready == 2 * len(jobs)  # the broken pipeline was not sent again
