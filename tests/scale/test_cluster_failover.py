"""kill -9 of the Redis Cluster primary that holds busy queues, while worker processes drain
them and a producer keeps enqueueing (replicated-write mode): the replica takes over, workers and
clients find it on their own, and no confirmed job is lost. Duplicated runs are counted, not
hidden (at-least-once). A 6-node cluster (3 masters, 3 replicas); ~20 s."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.cluster import ClusterNode
from redis.crc import key_slot

import relayq
from relayq import Queue
from tests.support.failover import crash_scenario
from tests.support.topologies import Cluster, admin, poll


@pytest.fixture
def replicated_cluster() -> Iterator[Cluster]:
    c = Cluster(masters=3, replicas=1).start()
    yield c
    c.stop()


def test_kill_9_of_a_busy_primary_loses_no_confirmed_job(replicated_cluster: Cluster,
                                                         tmp_path: Path) -> None:
    cluster = replicated_cluster
    busy = cluster.queue_names(0, 2, "busy")
    calm = [cluster.queue_names(m, 1, "calm")[0] for m in (1, 2)]
    busy_key = f"relayq:{{{busy[0]}}}:x"
    victim = cluster.primary_for(busy_key)

    def crash() -> dict[str, float]:
        start = time.monotonic()
        victim.kill()
        poll(lambda: cluster.primary_for(busy_key) is not victim, 30,
             "a replica to take over the busy slot", interval=0.05)
        failover_s = time.monotonic() - start
        victim.start()  # comes back as a replica of the new primary
        cluster.wait_ok()
        return {"failover_s": round(failover_s, 2)}

    result = crash_scenario(cluster.url, busy + calm, tmp_path, crash=crash, replicas=1,
                            produce_to=busy, label="cluster kill -9, replicas=1")
    assert result["lost"] == 0 and result["upfront_lost"] == 0, result
    assert result["confirmed"] > 200, result
    assert cluster.primary_for(busy_key) is not victim


def test_a_stale_slot_map_pointing_at_a_replica_is_followed_with_wait(
        replicated_cluster: Cluster) -> None:
    """After a failover a client may still send a queue's pipeline to the old primary, now a
    replica: its scripts answer MOVED and its WAIT an error. The pipeline must move to the
    primary and WAIT there, not fail on the replica's WAIT error."""
    cluster = replicated_cluster
    client = relayq.connect(cluster.url)
    q = Queue(cluster.queue_names(0, 1, "stale")[0], client, replicas=1,
              replica_timeout_ms=5000)
    q.enqueue({})
    slot = key_slot(f"{{{q.name}}}".encode())
    primary = client.nodes_manager.slots_cache[slot][0]
    replica = cluster.nodes[cluster.masters]  # master 0's replica (tests/support/topologies.py)
    assert admin(replica).info("replication")["master_port"] == int(primary.port)
    stale = ClusterNode("127.0.0.1", replica.port, server_type="replica")
    client.nodes_manager.slots_cache[slot] = [stale]  # as if it were still the primary
    results = q.enqueue_many([{"n": i} for i in range(3)])
    assert len(results) == 3 and q.stats().ready == 4
    assert client.nodes_manager.slots_cache[slot][0].name == primary.name
    client.close()
