"""`relayq-worker`: run a worker process.

    relayq-worker --queue demo --concurrency 4
    relayq-worker --app myproject.tasks:app --queue emails --queue reports
    relayq-worker --queue high:3 --queue low:1     # weighted instead of strict order
"""

from __future__ import annotations

import argparse
import logging
import sys

from ..connection import connect_patiently, default_url
from ..errors import RedisUnavailable, RelayqError
from ..eviction import check_eviction
from ..keys import check_queue_name
from ..limits import MAX_VISIBILITY_MS
from ..logs import log_event, setup_logging
from ..replication import DEFAULT_TIMEOUT_MS
from .app import load_app
from .demo import demo_app
from .runtime import Worker

log = logging.getLogger("relayq.worker")


def parse_queues(specs: list[str]) -> tuple[list[str], list[float] | None]:
    """`name` or `name:weight` per --queue; weights must be given for all or none."""
    names, weights = [], []
    for spec in specs:
        name, _, weight = spec.partition(":")
        names.append(check_queue_name(name))
        if weight:
            try:
                weights.append(float(weight))
            except ValueError:
                raise RelayqError(f"bad weight in --queue {spec!r}: expected name:number") from None
            if weights[-1] <= 0:
                raise RelayqError(f"weight in --queue {spec!r} must be positive")
    if weights and len(weights) != len(names):
        raise RelayqError("give a weight to every --queue or to none")
    return names, weights or None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="relayq-worker", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--queue", "-q", action="append", required=True, metavar="NAME[:WEIGHT]",
                   help="queue to serve (repeatable; strict order unless weights are given)")
    p.add_argument("--concurrency", "-c", type=int, default=4,
                   help="jobs run at once (threads) (default 4)")
    p.add_argument("--prefetch", type=int, default=None,
                   help="jobs claimed ahead of free threads (default: --concurrency; 0 for "
                        "long jobs, so that idle workers get them)")
    p.add_argument("--app", metavar="MODULE:ATTR",
                   help="the relayq App with your tasks; without it the demo handler runs")
    p.add_argument("--redis", default=default_url(),
                   help="Redis URL (default $RELAYQ_REDIS_URL or redis://localhost:6379/0)")
    p.add_argument("--visibility", type=float, default=30.0,
                   help="lease length in seconds, extended while a job runs (default 30)")
    p.add_argument("--grace", type=float, default=30.0,
                   help="seconds to let running jobs finish on SIGTERM before handing them "
                        "back (default 30)")
    p.add_argument("--demo-fail-rate", type=float, default=0.1,
                   help="share of demo jobs that fail at random (default 0.1)")
    p.add_argument("--allow-eviction", action="store_true",
                   help="start even though Redis's maxmemory-policy may evict queue keys")
    p.add_argument("--replicas", type=int, default=0, metavar="N",
                   help="replicated-write mode: WAIT for N replicas after each ack and nack "
                        "(default 0: off)")
    p.add_argument("--replica-timeout-ms", type=int, default=DEFAULT_TIMEOUT_MS, metavar="MS",
                   help=f"how long that WAIT may take (default {DEFAULT_TIMEOUT_MS})")
    p.add_argument("--metrics-addr", metavar="HOST:PORT",
                   help="serve Prometheus metrics on this address")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("--log-format", default="text", choices=["text", "json"])
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    try:
        names, weights = parse_queues(args.queue)
        if args.concurrency < 1:
            raise RelayqError("--concurrency must be at least 1")
        if args.prefetch is not None and args.prefetch < 0:
            raise RelayqError("--prefetch must be 0 or more")
        if not 0 <= args.demo_fail_rate <= 1:
            raise RelayqError("--demo-fail-rate must be between 0 and 1")
        if not 0 < args.visibility <= MAX_VISIBILITY_MS / 1000:
            raise RelayqError("--visibility must be between 0 and "
                              f"{MAX_VISIBILITY_MS // 1000} seconds")
        app = load_app(args.app) if args.app else demo_app(args.demo_fail_rate)
        # Wait for Redis rather than die: a cluster client must reach a node to be made.
        client = connect_patiently(args.redis, lambda e: log_event(
            log, logging.WARNING, "redis.unavailable", part="startup", error=str(e)))
        events = None
        if args.metrics_addr:  # its own client, with a short timeout for scrapes
            from ..metrics import serve_worker_metrics

            events = serve_worker_metrics(args.metrics_addr, args.redis, names)
        worker = Worker(names, app, client, concurrency=args.concurrency,
                        prefetch=args.prefetch,
                        visibility_ms=int(args.visibility * 1000), grace_s=args.grace,
                        weights=weights, events=events, replicas=args.replicas,
                        replica_timeout_ms=args.replica_timeout_ms)
        check_redis(worker.redis, args.allow_eviction)
    except RelayqError as e:
        print(f"relayq-worker: {e.message}", file=sys.stderr)
        return 2
    worker.run()
    return 0


def check_redis(client: object, allow_eviction: bool) -> None:
    """The startup check: refuses (RelayqError) a Redis that may evict queue keys unless
    `allow_eviction`; a Redis that cannot be reached yet is only logged (the worker waits)."""
    try:
        check = check_eviction(client)
    except RedisUnavailable as e:
        log_event(log, logging.WARNING, "redis.eviction_unchecked", error=e.message)
        return
    if not check.ok and not allow_eviction:
        raise RelayqError("refusing to start:\n" + check.message())
    if check.message():
        log_event(log, logging.WARNING, "redis.eviction_risk", detail=check.message())


if __name__ == "__main__":
    sys.exit(main())
