"""The soak: `relayq dev`'s stack (a private Redis, relayq-server, workers with the demo handler,
a steady demo load through the HTTP API) for a long time, with memory sampled every interval.

    python scripts/soak.py --minutes 60 --rate 200 --out soak.jsonl

The demo queue's retention is cut to `--retention-s` (succeeded and dead jobs, idempotency
keys), so the keyspace reaches its steady size within minutes instead of a day. Each sample is
one JSON line: the RSS of the server (its whole process tree) and of every worker (each with its
children), Redis `used_memory`, and the queue's counts. At the end it prints the first and the
last sample and the growth from the first sample after retention was reached to the last: that
is the figure that must be flat. An opt-in benchmark, never run in CI (it takes as long as you
ask it to).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from relayq.queue import Queue
from relayq.tools.devstack import QUEUE, DevStack
from relayq.tools.redis_process import free_port

PAGE = os.sysconf("SC_PAGE_SIZE")


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants (from /proc; 0 once it is gone)."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/statm") as f:
                total += int(f.read().split()[1]) * PAGE
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as f:
                    stack += [int(child) for child in f.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def sample(stack: DevStack, started: float) -> dict[str, object]:
    assert stack.redis is not None and stack.server is not None and stack.server.proc
    stats = stack.stats()
    return {
        "minute": round((time.monotonic() - started) / 60, 2),
        "server_rss_mb": round(tree_rss(stack.server.proc.pid) / 2**20, 1),
        "workers_rss_mb": [round(tree_rss(w.pid) / 2**20, 1) for w in stack.workers],
        "redis_used_memory_mb": round(int(stack.redis.info("memory")["used_memory"]) / 2**20, 2),
        "ready": stats.ready, "scheduled": stats.scheduled, "running": stats.running,
        "succeeded": stats.succeeded, "dead": stats.dead,
        "enqueued": stats.totals["enqueued"],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=60.0, help="how long (default 60)")
    p.add_argument("--interval-s", type=float, default=60.0, help="between samples (default 60)")
    p.add_argument("--rate", type=float, default=200.0, help="demo jobs per second (default 200)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--retention-s", type=int, default=300,
                   help="retention of finished jobs and idempotency keys (default 300)")
    p.add_argument("--out", type=Path, help="also write the samples here (JSON lines)")
    args = p.parse_args(argv)

    stack = DevStack(redis_url=None, port=free_port(), workers=args.workers, rate=0,
                     dead_share=0.05)
    samples: list[dict[str, object]] = []
    try:
        stack.start()
        assert stack.redis is not None and stack.load is not None
        retention_ms = args.retention_s * 1000
        Queue(QUEUE, stack.redis).configure(succeeded_ttl_ms=retention_ms,
                                            dead_ttl_ms=retention_ms,
                                            idempotency_ttl_ms=retention_ms)
        stack.load.rate = args.rate  # configured first, so no job keeps the day-long default
        started = time.monotonic()
        end = started + args.minutes * 60
        out = args.out.open("w") if args.out else None
        while True:
            failure = stack.failure()
            if failure:
                print(f"soak: {failure}", file=sys.stderr)
                return 1
            row = sample(stack, started)
            samples.append(row)
            line = json.dumps(row)
            print(line, flush=True)
            if out:
                out.write(line + "\n")
                out.flush()
            if time.monotonic() >= end:
                break
            time.sleep(min(args.interval_s, max(0.0, end - time.monotonic())))
    finally:
        stack.stop()
    steady = [s for s in samples if float(s["minute"]) * 60 >= 2 * args.retention_s]
    print(f"first: {json.dumps(samples[0])}\nlast:  {json.dumps(samples[-1])}")
    if len(steady) >= 2:
        for name in ("server_rss_mb", "redis_used_memory_mb"):
            a, b = float(steady[0][name]), float(steady[-1][name])
            print(f"{name}: {a} -> {b} after retention was reached ({b - a:+.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
