"""Throughput of the RESP gateway, beside the direct and HTTP figures of `relayq bench` from the
same run (docs/benchmarks.md, "The RESP gateway"). An opt-in benchmark, not a test.

Starts a private redis-server and a `relayq-server --resp-addr` on it (auth on), then measures
with redis-py over one connection:
- pipelined LPUSH: `--jobs` pushes of one value each, `--pipeline` commands per round trip
  (and, for scale, a tenth as many LPUSHes one round trip each);
- XREADGROUP + XACK: the same number of entries (added first, pipelined XADD), read COUNT
  `--count` at a time and each batch acked with one XACK;
then runs `relayq bench --jobs N --http N --redis <the same Redis>` for the direct (Python
`Queue`) and HTTP figures.

    python scripts/resp_bench.py --jobs 20000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import redis

from relayq.auth import KeyStore
from relayq.connection import connect
from relayq.tools.redis_process import RedisProcess, free_port
from relayq.tools.server_process import ServerProcess

ROOT = Path(__file__).resolve().parents[1]


def pipelined_lpush(client: redis.Redis, queue: str, jobs: int, pipeline: int) -> float:
    started = time.perf_counter()
    for start in range(0, jobs, pipeline):
        pipe = client.pipeline(transaction=False)
        for n in range(start, min(jobs, start + pipeline)):
            pipe.lpush(queue, f'{{"n": {n}}}')
        pipe.execute()
    return jobs / (time.perf_counter() - started)


def readgroup_ack(client: redis.Redis, queue: str, jobs: int, count: int) -> float:
    done = 0
    started = time.perf_counter()
    while done < jobs:
        reply = client.xreadgroup("bench", "c1", {queue: ">"}, count=count)
        if not reply:
            break
        ids = [entry_id for entry_id, _ in reply[0][1]]
        done += client.xack(queue, "bench", *ids)
    elapsed = time.perf_counter() - started
    if done != jobs:
        raise SystemExit(f"acked {done} of {jobs}")
    return jobs / elapsed


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=20_000)
    p.add_argument("--pipeline", type=int, default=100, help="LPUSH commands per round trip")
    p.add_argument("--count", type=int, default=100, help="XREADGROUP COUNT")
    p.add_argument("--no-http", action="store_true", help="skip relayq bench --http")
    args = p.parse_args()
    redis_server = RedisProcess().start()
    resp_port = free_port()
    server = ServerProcess(redis_server.url, "--resp-addr", f"127.0.0.1:{resp_port}",
                           cwd=ROOT).start()
    figures: dict[str, object] = {"jobs": args.jobs}
    try:
        key = KeyStore(connect(redis_server.url)).create("resp-bench", ["admin"])[1]
        client = redis.Redis(port=resp_port, password=key, decode_responses=True)
        figures["resp_lpush_pipelined_per_s"] = round(
            pipelined_lpush(client, "resp-bench-list", args.jobs, args.pipeline))
        figures["resp_lpush_one_by_one_per_s"] = round(
            pipelined_lpush(client, "resp-bench-list", max(1, args.jobs // 10), 1))
        pipe = client.pipeline(transaction=False)
        for n in range(args.jobs):
            pipe.xadd("resp-bench-stream", {"n": str(n)})
            if len(pipe) >= args.pipeline:
                pipe.execute()
        pipe.execute()
        figures["resp_xreadgroup_xack_per_s"] = round(
            readgroup_ack(client, "resp-bench-stream", args.jobs, args.count))
        client.close()
        if not args.no_http:
            bench = subprocess.run(
                [sys.executable, "-m", "relayq.cli.main", "bench", "--jobs", str(args.jobs),
                 "--http", str(args.jobs), "--http-connections", "8", "--http-seconds", "3",
                 "--duration", "2", "--redis", redis_server.url, "--json"],
                capture_output=True, text=True, cwd=ROOT, check=True)
            figures["relayq_bench"] = json.loads(bench.stdout)
    finally:
        server.stop()
        redis_server.stop()
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
