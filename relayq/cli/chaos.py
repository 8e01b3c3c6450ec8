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

from ..commandline import EXIT_FAILURE, number
from ..tools.chaos import TARGETS, Chaos, ChaosConfig


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "chaos", help="kill workers, server and Redis under load; check nothing was lost",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", "-n", type=number(int, at_least=1), default=1000,
                   help="jobs to submit (1000)")
    p.add_argument("--workers", "-w", type=number(int, at_least=1), default=2,
                   help="worker processes (2)")
    p.add_argument("--kills", "-k", type=number(int, at_least=0), default=6,
                   help="kills in all (6)")
    p.add_argument("--kill-interval", type=number(float, above=0), default=2.0,
                   metavar="SECONDS", help="seconds between kills (2)")
    p.add_argument("--targets", type=targets, default=",".join(TARGETS),
                   help=f"what to kill, in turn: some of {','.join(TARGETS)} (all)")
    p.add_argument("--concurrency", "-c", type=number(int, at_least=1), default=4,
                   help="handler threads per worker (4)")
    p.add_argument("--producers", type=number(int, at_least=1), default=4,
                   help="submitting threads (4)")
    p.add_argument("--rate", type=number(float, at_least=0), default=None, metavar="JOBS_PER_S",
                   help="submit pace (default: spread over the kill schedule; 0: unpaced)")
    p.add_argument("--visibility", type=number(float, above=0, at_most=3600), default=2.0,
                   metavar="SECONDS", help="the workers' lease length (2)")
    p.add_argument("--sleep-ms", type=number(int, at_least=0), default=5,
                   help="each job sleeps up to this long (5)")
    p.add_argument("--flaky", type=number(float, at_least=0, at_most=1), default=0.05,
                   help="share of jobs that fail their first attempt (0.05)")
    p.add_argument("--timeout", type=number(float, above=0), default=120.0, metavar="SECONDS",
                   help="longest wait to submit, and to drain, each (120)")
    p.add_argument("--seed", type=int, help="seed for the job mix and the choice of victims")
    p.set_defaults(handler=run)


def targets(text: str) -> tuple[str, ...]:
    """`--targets`: some of TARGETS, comma-separated."""
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    if not names or not set(names) <= set(TARGETS):
        raise argparse.ArgumentTypeError(f"must name some of {','.join(TARGETS)}")
    return names


def config_from(args: argparse.Namespace) -> ChaosConfig:
    return ChaosConfig(
        jobs=args.jobs, workers=args.workers, kills=args.kills,
        kill_interval_s=args.kill_interval, targets=args.targets, concurrency=args.concurrency,
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
