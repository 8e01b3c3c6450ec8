"""`relayq-demo`: a load generator that enqueues demo jobs through the HTTP SDK.

    relayq-demo --server http://localhost:8080 --queue demo --count 200
    relayq-demo --count 10000 --rate 500 --batch 100 --fail-share 0.05 --priorities 0,5,9

Each payload asks the worker's built-in demo handler for a definite outcome:
``{"n": i, "sleep_ms": N, "fail": true|false, "pad": "..."}`` sleeps N ms, then fails when
`fail` is true (so exactly --fail-share of the jobs fail) and otherwise succeeds. Progress goes
to stderr about once a second; a summary goes to stdout at the end (--json for machines).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from typing import Any

from .client import Client
from .codec import dumps
from .errors import InvalidArgument, RelayqError
from .keys import check_queue_name
from .options import JobOptions
from .results import NewJob


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="relayq-demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", help="relayq server (default $RELAYQ_SERVER or "
                                    "http://localhost:8080); the key is $RELAYQ_API_KEY")
    p.add_argument("--queue", default="demo", help="queue to fill (default demo)")
    p.add_argument("--count", type=int, default=200, help="jobs to enqueue (default 200)")
    p.add_argument("--rate", type=float, default=0,
                   help="jobs per second at most (default 0: as fast as the server takes them)")
    p.add_argument("--batch", type=int, default=1,
                   help="jobs per request, 1-1000 (default 1: one request per job)")
    p.add_argument("--priorities", default="0",
                   help="comma-separated priorities to pick from at random (default 0)")
    p.add_argument("--delay-ms", type=int, default=0,
                   help="delayed jobs wait a random 0..N ms (default 0)")
    p.add_argument("--delayed-share", type=float, default=0.0,
                   help="share of jobs that are delayed, 0-1 (default 0)")
    p.add_argument("--payload-bytes", type=int, default=0,
                   help="pad each payload to about this many bytes (default 0)")
    p.add_argument("--fail-share", type=float, default=0.1,
                   help="share of jobs whose payload asks to fail, 0-1 (default 0.1)")
    p.add_argument("--sleep-ms", type=int, default=50,
                   help="how long the demo handler works on each job (default 50)")
    p.add_argument("--max-attempts", type=int, help="attempts per job (default: the queue's)")
    p.add_argument("--seed", type=int, help="random seed, for a repeatable load")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    return p


def check_args(args: argparse.Namespace) -> list[int]:
    """The priorities to pick from; InvalidArgument for anything out of range."""
    check_queue_name(args.queue)
    if args.count < 1 or not 1 <= args.batch <= 1000 or args.rate < 0:
        raise InvalidArgument("--count must be at least 1, --batch 1-1000, --rate at least 0")
    for name in ("delayed_share", "fail_share"):
        if not 0 <= getattr(args, name) <= 1:
            raise InvalidArgument(f"--{name.replace('_', '-')} must be between 0 and 1")
    if min(args.delay_ms, args.payload_bytes, args.sleep_ms) < 0:
        raise InvalidArgument("--delay-ms, --payload-bytes and --sleep-ms must not be negative")
    try:
        return [int(p) for p in args.priorities.split(",")]
    except ValueError:
        raise InvalidArgument(f"--priorities expects integers like 0,5,9, got "
                          f"{args.priorities!r}") from None


def make_job(i: int, args: argparse.Namespace, priorities: list[int],
             rng: random.Random) -> tuple[dict[str, Any], dict[str, Any]]:
    """One job: its payload and its enqueue options."""
    payload: dict[str, Any] = {"n": i, "sleep_ms": args.sleep_ms,
                               "fail": rng.random() < args.fail_share}
    if args.payload_bytes:  # the payload's compact JSON is then payload_bytes long
        payload["pad"] = ""
        payload["pad"] = "x" * max(0, args.payload_bytes - len(dumps(payload)))
    options: dict[str, Any] = {"type": "demo", "priority": rng.choice(priorities)}
    if args.max_attempts is not None:
        options["max_attempts"] = args.max_attempts
    if args.delay_ms > 0 and rng.random() < args.delayed_share:
        options["delay_ms"] = rng.randint(0, args.delay_ms)
    return payload, options


class Progress:
    """`relayq-demo: 120/200 enqueued (58 jobs/s)` on stderr, about once a second."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.started = self.shown = time.monotonic()

    def update(self, done: int, final: bool = False) -> None:
        now = time.monotonic()
        if final or now - self.shown >= 1.0:
            self.shown = now
            rate = done / max(now - self.started, 1e-9)
            print(f"relayq-demo: {done}/{self.total} enqueued ({rate:.0f} jobs/s)",
                  file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> dict[str, Any]:
    priorities = check_args(args)
    rng = random.Random(args.seed)
    jobs = [make_job(i, args, priorities, rng) for i in range(args.count)]
    progress = Progress(args.count)
    done = 0
    with Client(args.server) as client:
        for start in range(0, len(jobs), args.batch):
            if args.rate:  # pace: job `start` goes out no earlier than start / rate
                time.sleep(max(0.0, progress.started + start / args.rate - time.monotonic()))
            chunk = jobs[start:start + args.batch]
            if len(chunk) == 1:  # the single-job route, as most producers use it
                client.enqueue(args.queue, chunk[0][0], **chunk[0][1])
            else:
                client.enqueue_many(args.queue, [NewJob(p, JobOptions(**o)) for p, o in chunk])
            done += len(chunk)
            progress.update(done)
    progress.update(done, final=True)
    seconds = time.monotonic() - progress.started
    return {"queue": args.queue, "enqueued": done,
            "failing": sum(payload["fail"] for payload, _ in jobs),
            "delayed": sum("delay_ms" in options for _, options in jobs),
            "seconds": round(seconds, 3), "jobs_per_second": round(done / seconds, 1)}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        summary = run(args)
    except RelayqError as e:
        print(f"relayq-demo: {e.message}", file=sys.stderr)
        return 2 if isinstance(e, InvalidArgument) else 1
    except KeyboardInterrupt:
        print("relayq-demo: interrupted", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"enqueued {summary['enqueued']} jobs on {summary['queue']} in "
              f"{summary['seconds']} s ({summary['jobs_per_second']} jobs/s); "
              f"{summary['failing']} will fail, {summary['delayed']} delayed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
