"""Export on Redis Cluster: the scan runs on the node that owns the queue's slot and finds every
job there (three real cluster nodes, started for this module)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

import relayq
from relayq import Queue
from relayq.export import export_queue, restore_snapshot
from relayq.export.store import MemoryStore
from relayq.keys import QUEUES
from relayq.tools.redis_process import RedisProcess, free_port
from tests.support.export import populate, snapshot_view, views, wipe
from tests.support.helpers import wait_until


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    nodes = []
    try:
        for _ in range(3):
            node = RedisProcess()
            node.extra_args = ["--cluster-enabled", "yes", "--cluster-port", str(free_port()),
                               "--cluster-config-file", str(node.dir / "nodes.conf"),
                               "--cluster-node-timeout", "2000"]
            nodes.append(node.start())
        subprocess.run(["redis-cli", "--cluster", "create",
                        *[f"127.0.0.1:{n.port}" for n in nodes],
                        "--cluster-replicas", "0", "--cluster-yes"],
                       check=True, capture_output=True, timeout=30)
        wait_until(lambda: all(b"cluster_state:ok" in subprocess.run(
            ["redis-cli", "-p", str(n.port), "cluster", "info"],
            capture_output=True, timeout=5).stdout for n in nodes),
            timeout=20, message="cluster_state:ok on every node")
        client = relayq.connect(f"redis+cluster://127.0.0.1:{nodes[0].port}")
        yield client
        client.close()
    finally:
        for node in nodes:
            node.stop()


def test_export_scans_only_the_node_owning_the_queue(cluster: Any, queue_name: str) -> None:
    owner = cluster.get_node_from_key(f"relayq:{{{queue_name}}}:meta").redis_connection
    # Jobs are written through the owning node's own connection (Queue's pipelines are not
    # cluster-aware on this branch); relayq:queues lives in another slot, so the queue is
    # registered through the cluster client.
    q = Queue(queue_name, owner)
    cluster.sadd(QUEUES, queue_name)
    q._registered = True
    populate(q, ready=30)
    before = views(q, [f"{queue_name}.{k.rsplit(':', 1)[1]}" for k in
                       owner.scan_iter(match=f"relayq:{{{queue_name}}}:job:*")])
    store = MemoryStore()
    result = export_queue(cluster, store, queue_name)  # the cluster client
    assert result.jobs == len(before) == 35
    wipe(q)
    assert restore_snapshot(q, store).restored == 35
    running = [i for i, v in before.items() if v["state"] == "running"]
    for job_id, view in before.items():
        if job_id not in running:
            assert snapshot_view(q, job_id) == view
