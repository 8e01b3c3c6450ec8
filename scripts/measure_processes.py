"""Drain throughput of a CPU-bound handler: `relayq-worker --processes 2` against threads only
(a one-off run, not a test).

    python scripts/measure_processes.py --jobs 200 --cpu-ms 20

Starts its own redis-server, then for each mode fills a fresh queue with `--jobs` demo jobs of
payload {"cpu_ms": N} (pure-Python work holding the GIL), starts the worker and reports two
times: the drain (the first job's start to the last job's end, Redis clock, from the jobs'
started_at and finished_at) and the total (the worker's launch to the last success, process
start-up included, as a user sees it), with the machine's load average before each mode (the
figure depends on a free second core: on a machine busy with other work, processes have none to
use). Modes:
threads (`--concurrency 2`, one process) and processes (`--processes 2 --concurrency 1`).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time

import relayq
from relayq.tools.redis_process import RedisProcess

MODES = {
    "threads (--concurrency 2)": ["--concurrency", "2"],
    "processes (--processes 2 --concurrency 1)": ["--processes", "2", "--concurrency", "1"],
}


def drain(url: str, name: str, jobs: int, cpu_ms: int, args: list[str]) -> dict[str, float]:
    q = relayq.Queue(name, url)
    ids = [r.id for r in q.enqueue_many([{"cpu_ms": cpu_ms} for _ in range(jobs)])]
    started = time.monotonic()
    worker = subprocess.Popen([sys.executable, "-m", "relayq.worker.cli", "--queue", name,
                               "--redis", url, "--demo-fail-rate", "0", "--prefetch", "0",
                               "--log-level", "warning", *args])
    try:
        while q.stats().succeeded < jobs:
            time.sleep(0.01)
        total = time.monotonic() - started
        done = [q.get(i) for i in ids]
        first = min(j.started_at for j in done if j.started_at)
        last = max(j.finished_at for j in done if j.finished_at)
        seconds = (last - first) / 1000  # ms, Redis clock
        return {"drain_s": round(seconds, 2), "jobs_per_s": round(jobs / seconds, 1),
                "total_s": round(total, 2)}
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--cpu-ms", type=int, default=20)
    args = parser.parse_args()
    redis = RedisProcess().start()
    try:
        results = {}
        for i, (mode, extra) in enumerate(MODES.items()):
            load = round(os.getloadavg()[0], 2)
            results[mode] = {"load_avg_1m": load,
                             **drain(redis.url, f"cpu{i}", args.jobs, args.cpu_ms, extra)}
        print(json.dumps({"jobs": args.jobs, "cpu_ms": args.cpu_ms, "results": results}, indent=2))
    finally:
        redis.stop()


if __name__ == "__main__":
    main()
