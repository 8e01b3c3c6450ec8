"""`relayq chaos`: kill -9 workers, the server and Redis under load, then check that every
confirmed job succeeded (see relayq/tools/chaos.py for what each figure means).

    relayq chaos --jobs 300 --workers 2 --kills 6 --kill-interval 1
    relayq chaos --jobs 20000 --workers 4 --kills 30 --kill-interval 1 --targets redis

Progress goes to stderr; the report to stdout, its last line `result: ZERO LOSS` or
`result: LOST <n>`. Exit 0 only with zero loss (and every submit confirmed, no job created
twice).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..tools.chaos import TARGETS, Chaos, ChaosConfig
from .common import EXIT_FAILURE, EXIT_USAGE, CommandError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "chaos", help="kill workers, server and Redis under load; check nothing was lost",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", "-n", type=int, default=1000, help="jobs to submit (1000)")
    p.add_argument("--workers", "-w", type=int, default=2, help="worker processes (2)")
    p.add_argument("--kills", "-k", type=int, default=6, help="kills in all (6)")
    p.add_argument("--kill-interval", type=float, default=2.0, metavar="SECONDS",
                   help="seconds between kills (2)")
    p.add_argument("--targets", default=",".join(TARGETS),
                   help=f"what to kill, in turn: some of {','.join(TARGETS)} (all)")
    p.add_argument("--concurrency", "-c", type=int, default=4,
                   help="handler threads per worker (4)")
    p.add_argument("--producers", type=int, default=4, help="submitting threads (4)")
    p.add_argument("--rate", type=float, default=None, metavar="JOBS_PER_S",
                   help="submit pace (default: spread over the kill schedule; 0: unpaced)")
    p.add_argument("--visibility", type=float, default=2.0, metavar="SECONDS",
                   help="the workers' lease length (2)")
    p.add_argument("--sleep-ms", type=int, default=5,
                   help="each job sleeps up to this long (5)")
    p.add_argument("--flaky", type=float, default=0.05,
                   help="share of jobs that fail their first attempt (0.05)")
    p.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS",
                   help="longest wait to submit, and to drain, each (120)")
    p.add_argument("--seed", type=int, help="seed for the job mix and the choice of victims")
    p.set_defaults(handler=run)


def config_from(args: argparse.Namespace) -> ChaosConfig:
    targets = tuple(t.strip() for t in args.targets.split(",") if t.strip())
    problems = [
        (not targets or not set(targets) <= set(TARGETS),
         f"--targets must name some of {','.join(TARGETS)}"),
        (args.jobs < 1, "--jobs must be at least 1"),
        (args.workers < 1, "--workers must be at least 1"),
        (args.kills < 0, "--kills must be 0 or more"),
        (args.kill_interval <= 0, "--kill-interval must be positive"),
        (args.concurrency < 1 or args.producers < 1,
         "--concurrency and --producers must be at least 1"),
        (args.rate is not None and args.rate < 0, "--rate must be 0 or more"),
        (not 0 < args.visibility <= 3600, "--visibility must be between 0 and 3600 seconds"),
        (args.sleep_ms < 0, "--sleep-ms must be 0 or more"),
        (not 0 <= args.flaky <= 1, "--flaky must be between 0 and 1"),
        (args.timeout <= 0, "--timeout must be positive"),
    ]
    for bad, message in problems:
        if bad:
            raise CommandError(message, EXIT_USAGE)
    return ChaosConfig(
        jobs=args.jobs, workers=args.workers, kills=args.kills,
        kill_interval_s=args.kill_interval, targets=targets, concurrency=args.concurrency,
        producers=args.producers, rate=args.rate, visibility_s=args.visibility,
        sleep_ms=args.sleep_ms, flaky=args.flaky, timeout_s=args.timeout, seed=args.seed)


def run(args: argparse.Namespace) -> int:
    config = config_from(args)

    def log(message: str) -> None:
        print(f"[relayq chaos] {message}", file=sys.stderr, flush=True)

    log(f"{config.jobs} jobs, {config.workers} workers, {config.kills} kills every "
        f"{config.kill_interval_s:g} s of {', '.join(config.targets)}")
    report = Chaos(config, log).run()
    for line in report.lines():
        print(line, flush=True)
    return 0 if report.ok else EXIT_FAILURE
