"""Drain throughput of `relayq-worker` over HTTP (`--server`) beside the same worker on Redis,
on one machine: a private redis-server and relayq-server, one worker process at a time, the
built-in demo app. Two workloads: no-op jobs (`{"sleep_ms": 0}`: relayq's own cost per job)
and the demo's default jobs (10-100 ms of sleep each, --demo-fail-rate 0: a handler-bound
drain). Each figure is jobs/s from the first job done to the last (start-up left out), and
the whole time from the worker's spawn.

    python scripts/measure_http_worker.py [--jobs 5000] [--concurrency 8] [--rounds 1]

Opt-in (not run by the tests); docs/benchmarks.md quotes one run.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import relayq
from relayq.auth import KeyStore
from relayq.tools.redis_process import RedisProcess
from relayq.tools.server_process import ServerProcess

ROOT = Path(__file__).resolve().parents[1]


def drain(q: relayq.Queue[Any], payloads: list[Any], where: list[str], env: dict[str, str],
          concurrency: int) -> tuple[float, float]:
    """(jobs/s from the first job done to the last, seconds from spawn to the last)."""
    q.enqueue_many(payloads)
    total = q.stats().totals["succeeded"] + len(payloads)
    spawned = time.perf_counter()
    worker = subprocess.Popen(
        [sys.executable, "-m", "relayq.worker.cli", "--queue", q.name, *where,
         "--concurrency", str(concurrency), "--demo-fail-rate", "0", "--log-level", "warning"],
        cwd=ROOT, env={**os.environ, **env}, start_new_session=True)
    try:
        first = None
        start_count = total - len(payloads)
        while True:
            done = q.stats().totals["succeeded"]
            now = time.perf_counter()
            if first is None and done > start_count:
                first, first_count = now, done
            if done >= total:
                break
            if now - spawned > 600:
                raise TimeoutError(f"{done - start_count} of {len(payloads)} done in 600 s")
            time.sleep(0.01)
        assert first is not None
        rate = (done - first_count) / max(now - first, 1e-9)
        return rate, now - spawned
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    with RedisProcess() as redis_server:
        key = KeyStore(relayq.connect(redis_server.url)).create("measure", ["jobs:work"])[1]
        server = ServerProcess(redis_server.url, cwd=ROOT).start()
        try:
            modes = {"redis": (["--redis", redis_server.url], {}),
                     "http": (["--server", server.url],
                              {"RELAYQ_API_KEY": key,
                               "RELAYQ_REDIS_URL": "redis://127.0.0.1:1/0"})}
            workloads = {"no-op": ([{"sleep_ms": 0}] * args.jobs, args.concurrency),
                         "demo (10-100 ms)": ([{"n": i} for i in range(args.jobs // 5)], 32)}
            print(f"{args.jobs} no-op jobs at --concurrency {args.concurrency}; "
                  f"{args.jobs // 5} demo jobs at --concurrency 32; server workers: default")
            for round_ in range(args.rounds):
                for workload, (payloads, concurrency) in workloads.items():
                    for mode, (where, env) in modes.items():
                        q = relayq.Queue(f"m-{mode}-{round_}-{len(payloads)}", redis_server.url)
                        rate, whole = drain(q, payloads, where, env, concurrency)
                        print(f"{workload:18} {mode:6} {rate:9,.0f} jobs/s  "
                              f"(spawn to last: {whole:.2f} s)", flush=True)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
