"""Throughput on each topology, for docs/scaling.md (not a test: run it by hand).

    python -m tests.bench_scale --topology single --runs 3
    python -m tests.bench_scale --topology cluster --runs 3
    python -m tests.bench_scale --topology sentinel --replicas 0 1 --runs 3

Each run starts the topology afresh, pauses `--queues` queues, enqueues `--jobs` jobs spread over
them, starts `--workers` relayq-worker processes serving every queue (demo handler, payload
`{"sleep_ms": 0}`: no work, so this measures relayq and Redis), waits until they block idle,
resumes the queues and times the drain. It also times 2000 single enqueues from one client
(one round trip each). With `--replicas N`, workers and the producer use the replicated-write
mode. Prints the median of the runs; appends every run to test-artifacts/scale-measurements.jsonl.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import relayq
from relayq import Queue
from tests.support.failover import record
from tests.support.topologies import admin, poll, start_topology
from tests.support.workers import REPO


def one_run(topology_name: str, jobs: int, queues: int, workers: int, concurrency: int,
            replicas: int) -> dict[str, Any]:
    topology = start_topology(topology_name)
    names = [f"bench{i}" for i in range(queues)]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        client = relayq.connect(topology.url)
        qs = [Queue(n, client, replicas=replicas) for n in names]
        for q in qs:
            q.pause()
        for i, q in enumerate(qs):
            share = jobs // queues + (1 if i < jobs % queues else 0)
            q.enqueue_many([{"sleep_ms": 0}] * share)
        args = [sys.executable, "-m", "relayq.worker.cli", "--redis", topology.url,
                "--concurrency", str(concurrency), "--log-level", "warning",
                "--replicas", str(replicas), *[a for n in names for a in ("--queue", n)]]
        logs = Path(tempfile.mkdtemp(prefix="relayq-bench-"))
        for i in range(workers):
            with open(logs / f"worker-{i}.log", "wb") as log:
                procs.append(subprocess.Popen(args, cwd=REPO, stdout=log,
                                              stderr=subprocess.STDOUT))
        nodes = ([topology.server] if topology_name == "single" else
                 topology.nodes[:topology.masters] if topology_name == "cluster" else
                 [topology.primary()])
        poll(lambda: sum(admin(n).info("clients")["blocked_clients"] for n in nodes)
             >= workers * queues, 60, "every waker to block")
        cpu_before = redis_cpu_s(nodes)
        start = time.monotonic()
        for q in qs:
            q.resume()
        poll(lambda: sum(q.stats().succeeded for q in qs) >= jobs, 600, "the drain",
             interval=0.1)
        drain_s = time.monotonic() - start
        redis_busy = (redis_cpu_s(nodes) - cpu_before) / drain_s
        assert all(p.poll() is None for p in procs), "a worker died"
        for p in procs:
            p.terminate()
        producer = Queue("bench-enqueue", client, replicas=replicas)
        start = time.monotonic()
        for i in range(2000):
            producer.enqueue({"n": i})
        enqueue_s = time.monotonic() - start
        client.close()
        return {"bench": "drain", "topology": topology_name, "replicas": replicas,
                "jobs": jobs, "queues": queues, "workers": workers, "concurrency": concurrency,
                "drain_jobs_per_s": round(jobs / drain_s), "enqueue_one_per_s":
                round(2000 / enqueue_s), "redis_cores_busy": round(redis_busy, 2)}
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait(10)
        topology.stop()


def redis_cpu_s(nodes: list[Any]) -> float:
    """CPU seconds the primaries have used so far (user + system)."""
    total = 0.0
    for node in nodes:
        cpu = admin(node).info("cpu")
        total += cpu["used_cpu_user"] + cpu["used_cpu_sys"]
    return total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--topology", choices=["single", "cluster", "sentinel"], default="single")
    p.add_argument("--jobs", type=int, default=20_000)
    p.add_argument("--queues", type=int, default=30)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--replicas", type=int, nargs="+", default=[0])
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    for replicas in args.replicas:
        runs = []
        for _ in range(args.runs):
            result = one_run(args.topology, args.jobs, args.queues, args.workers,
                             args.concurrency, replicas)
            record(result)
            runs.append(result)
        print(f"{args.topology} replicas={replicas}: median drain "
              f"{statistics.median(r['drain_jobs_per_s'] for r in runs)} jobs/s, median "
              f"single enqueue {statistics.median(r['enqueue_one_per_s'] for r in runs)}/s, "
              f"Redis busy {statistics.median(r['redis_cores_busy'] for r in runs)} cores "
              f"over {args.runs} runs")


if __name__ == "__main__":
    main()
