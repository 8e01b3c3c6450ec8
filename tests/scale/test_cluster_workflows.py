"""Workflows on a real 3-master Redis Cluster (issue 14 #2, #7): graphs whose jobs live in
queues of three different slots on three masters, run by real `relayq-worker` processes. The
fact of a parent's end crosses slots through the parent queue's outbox: the children must run
after their parents, exactly once when no worker dies, and a fan-out/fan-in must finish right
when a worker is SIGKILLed in the middle (its jobs are reaped and run again: at least once).
Nothing is left in any outbox afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import relayq
from relayq import FlowJob, Queue, chain, group
from tests.support.helpers import wait_until
from tests.support.topologies import Cluster
from tests.support.workers import WorkerProcesses

APP = "tests.support.apps.fanout:app"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = Cluster(masters=3).start()
    yield c
    c.stop()


@pytest.fixture
def client(cluster: Cluster) -> Iterator[Any]:
    c = relayq.connect(cluster.url)
    yield c
    c.close()


def names(cluster: Cluster, prefix: str) -> list[str]:
    """One queue on each master: three slots, three nodes."""
    return [cluster.queue_names(m, 1, prefix)[0] for m in range(3)]


def test_a_graph_across_three_masters_runs_in_order_each_job_once(
    cluster: Cluster, client: Any, tmp_path: Any
) -> None:
    a, b, c = names(cluster, "wfo")
    made = relayq.flow(
        chain(
            FlowJob(a, {"n": 0}, ref="root"),
            group(
                [FlowJob((b, c)[n % 2], {"n": n, "ms": 5}, ref=f"p{n}") for n in range(1, 21)],
                then=FlowJob(a, {}, type="total", ref="total"),
            ),
        ),
        FlowJob(b, {}, ref="gate", delay_ms=600_000),
        redis=client,
    )
    ids = {m.ref: m.id for m in made}
    # a chain below the gate, through the other two slots; cancelled when the gate is
    after = Queue(c, client).enqueue({}, depends_on=[ids["gate"]]).id
    below = Queue(a, client).enqueue({}, depends_on=[after]).id
    queues = {name: Queue(name, client) for name in (a, b, c)}

    def get(job_id: str) -> relayq.Job[Any]:
        return queues[job_id.rpartition(".")[0]].get(job_id)

    workers = WorkerProcesses(2, cluster.url, [a, b, c], tmp_path, concurrency=4, app=APP)
    try:
        wait_until(
            lambda: get(ids["total"]).state == "succeeded" or not workers.alive(),
            timeout=60,
            interval=0.1,
            message="the fan-in to run",
        )
        assert workers.alive(), workers.logs()
        total = get(ids["total"])
        assert total.result == {"parts": 20, "sum": sum(range(1, 21))}
        root = get(ids["root"])
        parts = [get(ids[f"p{n}"]) for n in range(1, 21)]
        assert all(p.started_at >= root.finished_at for p in parts)  # type: ignore[operator]
        assert total.started_at >= max(p.finished_at for p in parts)  # type: ignore[type-var]
        runs = workers.executions()
        assert all(
            runs[ids[ref]] == 1 for ref in ("root", "total", *(f"p{n}" for n in range(1, 21)))
        )
        assert queues[b].cancel(ids["gate"]) == "cancelled"
        wait_until(
            lambda: get(below).state == "cancelled",
            timeout=20,
            interval=0.1,
            message="the cancel to cross two slots",
        )
        assert get(after).last_error == f"parent {ids['gate']} ended cancelled"
        assert get(below).last_error == f"parent {after} ended cancelled"
        assert runs[after] == runs[below] == 0
        # a mover drops the facts it applied just after applying them
        wait_until(
            lambda: (
                not any(
                    client.exists(q.keys.prefix + "outbox", q.keys.prefix + "linking")
                    for q in queues.values()
                )
            ),
            timeout=10,
            message="every applied fact to leave its outbox",
        )
    finally:
        workers.stop()


def test_a_fan_out_fan_in_survives_a_killed_worker(
    cluster: Cluster, client: Any, tmp_path: Any
) -> None:
    a, b, c = names(cluster, "wfk")
    parts = 240
    made = relayq.flow(
        chain(
            FlowJob(a, {"n": 0}, ref="root"),
            group(
                [
                    FlowJob((a, b, c)[n % 3], {"n": n, "ms": 40}, ref=f"p{n}")
                    for n in range(1, parts + 1)
                ],
                then=FlowJob(b, {}, type="total", ref="total"),
            ),
        ),
        redis=client,
    )
    ids = {m.ref: m.id for m in made}
    queues = [Queue(name, client) for name in (a, b, c)]
    workers = WorkerProcesses(3, cluster.url, [a, b, c], tmp_path, concurrency=4, app=APP)
    try:
        wait_until(
            lambda: sum(q.stats().succeeded for q in queues) >= 40,
            timeout=60,
            interval=0.05,
            message="a sixth of the parts to run",
        )
        workers.kill(0)  # mid-drain: its running jobs come back after their leases expire
        workers.add()
        total_q = queues[1]
        wait_until(
            lambda: total_q.get(ids["total"]).state == "succeeded" or not workers.alive(),
            timeout=120,
            interval=0.2,
            message="the fan-in after the kill",
        )
        assert workers.alive(), workers.logs()
        total = total_q.get(ids["total"])
        assert total.result == {"parts": parts, "sum": sum(range(1, parts + 1))}
        runs = workers.executions()
        every = [ids["root"], *(ids[f"p{n}"] for n in range(1, parts + 1))]
        assert all(runs[job_id] >= 1 for job_id in every)  # at least once, none lost
        assert runs[ids["total"]] == 1  # released once, after the last part
        assert sum(q.stats().totals["succeeded"] for q in queues) == parts + 2
    finally:
        workers.stop()
