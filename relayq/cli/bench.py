"""`relayq bench`: measure enqueue, bulk enqueue, drain, enqueue-to-start latency and memory per
job, with the workload of the peer benchmark (see relayq/tools/bench.py)."""

from __future__ import annotations

import argparse
import sys

from ..commandline import add_redis
from ..tools.bench import run_bench
from .common import print_json


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "bench", help="benchmark relayq on a private (or given) Redis",
        description="Runs the peer benchmark's workload on relayq and prints the figures. "
                    "Starts its own redis-server unless --redis is given; with --redis it "
                    "touches only its own keys.")
    p.add_argument("--jobs", "-n", type=int, default=20000, help="jobs per phase (20000)")
    p.add_argument("--workers", "-w", type=int, default=2, help="worker processes (2)")
    p.add_argument("--concurrency", "-c", type=int, default=8,
                   help="handler threads per worker process (8)")
    p.add_argument("--rate", type=float, default=200.0, help="latency phase: jobs/s (200)")
    p.add_argument("--duration", type=float, default=10.0, help="latency phase: seconds (10)")
    p.add_argument("--depths", default="",
                   help="also measure claim+ack latency at these queue depths, e.g. 1000,1000000")
    p.add_argument("--http", type=int, default=0, metavar="JOBS",
                   help="also measure the HTTP API through the SDK with this many jobs per "
                        "phase (a private relayq-server on the same Redis), and with wrk at "
                        "--http-connections")
    p.add_argument("--http-connections", default="1,8,32", metavar="N,N",
                   help="with --http and wrk installed: single enqueue, batch enqueue and a "
                        "worker draining over HTTP at each number of connections (1,8,32)")
    p.add_argument("--http-seconds", type=float, default=5.0,
                   help="with --http-connections: seconds per phase (5)")
    add_redis(p, private=True)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    depths = [int(d) for d in args.depths.split(",") if d.strip()]
    result = run_bench(jobs=args.jobs, workers=args.workers, concurrency=args.concurrency,
                       rate=args.rate, duration=args.duration, redis_url=args.redis,
                       depths=depths, http_jobs=args.http,
                       http_connections=[int(c) for c in args.http_connections.split(",")
                                         if c.strip()],
                       http_seconds=args.http_seconds,
                       log=lambda m: print(f"[relayq bench] {m}", file=sys.stderr, flush=True))
    if args.json:
        print_json(result)
    else:
        for key in sorted(result):
            value = result[key]
            print(f"{key:28} {value:,.2f}" if isinstance(value, float) else f"{key:28} {value}")
    return 0
