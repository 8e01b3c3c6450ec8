"""Throughput of the HTTP API through the SDK: `measure_http(server_url, api_key, jobs)` (for
`relayq bench` and anyone else), and a command line that measures a private server:

    python -m relayq.tools.http_bench --jobs 2000              # own redis-server + server
    python -m relayq.tools.http_bench --server URL --jobs 2000 # existing server ($RELAYQ_API_KEY)

Three phases, each on a fresh queue, one client, one request at a time: single enqueues, batch
enqueues (1000 per request), and claim (100 per request) followed by one ack per job.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from typing import Any

from ..client import Client
from ..limits import BATCH_LIMIT
from .bench import percentile

CLAIM_COUNT = 100


def measure_http(server_url: str, api_key: str | None, jobs: int) -> dict[str, Any]:
    """Jobs per second of each phase, and the latency of single enqueues (ms)."""
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    with Client(server_url, api_key) as client:
        latencies = []
        started = time.perf_counter()
        for i in range(jobs):
            sent = time.perf_counter()
            client.enqueue(queue + "-single", {"n": i})
            latencies.append(time.perf_counter() - sent)
        single_s = time.perf_counter() - started

        started = time.perf_counter()
        for start in range(0, jobs, BATCH_LIMIT):
            end = min(jobs, start + BATCH_LIMIT)
            client.enqueue_many(queue, [{"n": i} for i in range(start, end)])
        batch_s = time.perf_counter() - started

        started, done = time.perf_counter(), 0
        while done < jobs:
            claimed = client.claim(queue, CLAIM_COUNT)
            if not claimed:
                raise RuntimeError(f"claimed {done} of {jobs}: the queue ran dry")
            for job in claimed:
                client.ack(job.id, job.lease or "")
            done += len(claimed)
        claim_ack_s = time.perf_counter() - started
    latencies.sort()
    return {
        "jobs": jobs,
        "enqueue_single_per_s": round(jobs / single_s),
        "enqueue_single_p50_ms": round(statistics.median(latencies) * 1000, 2),
        "enqueue_single_p99_ms": round(percentile(sorted(latencies), 99) * 1000, 2),
        "enqueue_batch_per_s": round(jobs / batch_s),
        "claim_ack_per_s": round(jobs / claim_ack_s),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m relayq.tools.http_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per phase (default 2000)")
    parser.add_argument("--server", help="measure this server instead of a private one")
    args = parser.parse_args(argv)
    if args.server:
        print(json.dumps(measure_http(args.server, os.environ.get("RELAYQ_API_KEY"),
                                      args.jobs)))
        return 0
    from ..auth import KeyStore
    from ..connection import connect
    from .redis_process import RedisProcess
    from .server_process import ServerProcess

    with RedisProcess() as redis_server:
        key = KeyStore(connect(redis_server.url)).create("bench", ["admin"])[1]
        with ServerProcess(redis_server.url, "--log-level", "warning") as server:
            print(json.dumps(measure_http(server.url, key, args.jobs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
