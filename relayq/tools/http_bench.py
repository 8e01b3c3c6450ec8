"""Throughput of the HTTP API.

`measure_http(server_url, api_key, jobs)`: through the SDK, one client, one request at a time:
single enqueues, batch enqueues (1000 per request), and claim (100 per request) followed by one
ack per job; each phase on a fresh queue.

`measure_concurrent(server_url, api_key, connections, seconds, fill)`: N keep-alive connections
from `wrk` (a load generator in C, so that the server, not the generator, is measured), for each
N: single enqueues, batch enqueues (BATCH_JOBS per request), and a worker draining over HTTP
(each connection claims with `count`, then acks every job it got, one request per ack: wrk's
Lua keeps the leases of each thread's claims and sends their acks before the next claim).
Reports requests/s, jobs/s, p50/p95/p99 latency (ms) and non-2xx replies per phase; `fill`
enqueues the drain phase's jobs straight to Redis first. Needs `wrk` on PATH (`has_wrk()`).

    python -m relayq.tools.http_bench --jobs 2000              # own redis-server + server
    python -m relayq.tools.http_bench --server URL --jobs 2000 # existing server ($RELAYQ_API_KEY)
    python -m relayq.tools.http_bench --connections 1,8,32     # with wrk
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..client import Client
from ..limits import BATCH_LIMIT
from .bench import percentile

CLAIM_COUNT = 100
BATCH_JOBS = 100  # jobs per batch request in the concurrent phases
DRAIN_CLAIM_COUNT = 50  # jobs per claim in the concurrent drain phase

# One JSON line with the figures of a run (wrk's `done` hook; times in microseconds).
WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests": %d, "duration_us": %d, "non_2xx": %d, ' ..
    '"socket_errors": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d}\\n', summary.requests,
    summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""

POST = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
wrk.body = '{body}'
"""

# A worker draining over HTTP: claim `count` jobs, ack each one, claim again. The leases of a
# thread's claims wait in `acks` until sent (a connection that got jobs may not be the one that
# acks them: leases are not tied to connections).
DRAIN = """
local acks, head = {{}}, 1
local headers = {{["Content-Type"] = "application/json",
                  ["Authorization"] = "Bearer {key}"}}
request = function()
  local ack = acks[head]
  if ack then
    acks[head] = nil
    head = head + 1
    return wrk.format("POST", "/api/jobs/" .. ack[1] .. "/ack", headers,
                      '{{"lease": "' .. ack[2] .. '"}}')
  end
  return wrk.format("POST", "/api/queues/{queue}/claim", headers,
                    '{{"worker_id": "wrk", "count": {count}}}')
end
response = function(status, headers, body)
  if status == 200 and string.sub(body, 1, 8) == '{{"jobs":' then
    local ids, leases = {{}}, {{}}
    for id in string.gmatch(body, '"id":%s*"([^"]+)"') do ids[#ids + 1] = id end
    for lease in string.gmatch(body, '"lease":%s*"([^"]+)"') do leases[#leases + 1] = lease end
    local tail = head
    while acks[tail] do tail = tail + 1 end
    for i = 1, #ids do acks[tail] = {{ids[i], leases[i]}}; tail = tail + 1 end
  end
end
"""


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


def has_wrk() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(url: str, script: str, connections: int, seconds: float) -> dict[str, Any]:
    """One wrk run (one thread: the machine's other cores belong to the server and Redis)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.lua"
        path.write_text(script + WRK_DONE)
        out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s",
                              "-s", str(path), url], capture_output=True, text=True,
                             check=True).stdout
    figures = json.loads(out.strip().splitlines()[-1])
    seconds_run = figures["duration_us"] / 1e6
    return {"requests_per_s": round(figures["requests"] / seconds_run),
            "p50_ms": figures["p50_us"] / 1000, "p95_ms": figures["p95_us"] / 1000,
            "p99_ms": figures["p99_us"] / 1000, "non_2xx": figures["non_2xx"],
            "socket_errors": figures["socket_errors"], "requests": figures["requests"],
            "seconds": seconds_run}


def redis_counters(redis: Any) -> tuple[float, int]:
    """Redis's main-thread CPU seconds and its EVALSHA calls so far."""
    cpu = redis.info("cpu")
    calls = redis.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
    return cpu["used_cpu_user_main_thread"] + cpu["used_cpu_sys_main_thread"], int(calls)


def measure_concurrent(server_url: str, api_key: str, connections: list[int], seconds: float,
                       redis: Any) -> dict[str, Any]:
    """For each number of connections: single enqueue, batch enqueue and an HTTP worker's
    drain, each with Redis's CPU per job and script calls per job. `redis`: the server's
    Redis (the drain's jobs are enqueued there straight, and its counters read)."""
    result: dict[str, Any] = {}

    def phase(name: str, url: str, script: str, n: int, jobs: Callable[[dict[str, Any]], int]
              ) -> None:
        cpu0, calls0 = redis_counters(redis)
        figures = run_wrk(url, script, n, seconds)
        cpu1, calls1 = redis_counters(redis)
        done = max(1, jobs(figures))
        figures["jobs_per_s"] = round(done / figures["seconds"])
        figures["redis_cpu_us_per_job"] = round((cpu1 - cpu0) * 1e6 / done, 1)
        figures["script_calls_per_job"] = round((calls1 - calls0) / done, 3)
        result[f"c{n}_{name}"] = figures

    single = POST.format(key=api_key, body='{"payload": {"n": 1}}')
    batch = POST.format(key=api_key, body=json.dumps(
        {"jobs": [{"payload": {"n": i}} for i in range(BATCH_JOBS)]}))
    for n in connections:
        queue = f"bench-{uuid.uuid4().hex[:8]}"
        phase("enqueue_single", f"{server_url}/api/queues/{queue}/jobs", single, n,
              lambda f: f["requests"])
        phase("enqueue_batch", f"{server_url}/api/queues/{queue}-batch/jobs/batch", batch, n,
              lambda f: f["requests"] * BATCH_JOBS)
        drain = f"{queue}-drain"
        fill_queue(redis, drain, int(10_000 * seconds))  # more than HTTP drains in that time
        phase("drain", server_url, DRAIN.format(key=api_key, queue=drain,
                                                count=DRAIN_CLAIM_COUNT), n,
              lambda f, drain=drain: succeeded(redis, drain))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m relayq.tools.http_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per phase (default 2000)")
    parser.add_argument("--server", help="measure this server instead of a private one")
    parser.add_argument("--connections", default="",
                        help="with wrk: concurrent phases at these connection counts, e.g. 1,8,32")
    parser.add_argument("--seconds", type=float, default=5, help="per concurrent phase (5)")
    args = parser.parse_args(argv)
    connections = [int(c) for c in args.connections.split(",") if c.strip()]
    if args.server:
        print(json.dumps(measure_http(args.server, os.environ.get("RELAYQ_API_KEY"),
                                      args.jobs)))
        return 0
    from ..auth import KeyStore
    from ..connection import connect
    from .redis_process import RedisProcess
    from .server_process import ServerProcess

    with RedisProcess() as redis_server:
        r = connect(redis_server.url)
        key = KeyStore(r).create("bench", ["admin"])[1]
        with ServerProcess(redis_server.url, "--log-level", "warning") as server:
            figures = measure_http(server.url, key, args.jobs)
            if connections:
                figures.update(measure_concurrent(server.url, key, connections, args.seconds, r))
            print(json.dumps(figures))
    return 0


def fill_queue(redis: Any, queue: str, jobs: int) -> None:
    """`jobs` ready jobs in `queue`, straight to Redis (calls of BATCH_LIMIT jobs)."""
    from ..queue import Queue
    q: Queue[Any] = Queue(queue, redis)
    payloads = [{"n": i} for i in range(BATCH_LIMIT)]
    for start in range(0, jobs, BATCH_LIMIT):
        q.enqueue_many(payloads[:min(BATCH_LIMIT, jobs - start)])


def succeeded(redis: Any, queue: str) -> int:
    from ..queue import Queue
    return int(Queue(queue, redis).stats().totals["succeeded"])


if __name__ == "__main__":
    sys.exit(main())
