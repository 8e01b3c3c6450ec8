"""`relayq-worker`: run a worker process.

    relayq-worker --app tasks:app                  # the queues of its tasks, its Redis
    relayq-worker --app myproject.tasks:app --queue emails --queue reports
    relayq-worker --queue demo --concurrency 4     # no --app: the built-in demo handler
    relayq-worker --queue high:3 --queue low:1     # weighted instead of strict order
    relayq-worker --app tasks:app --prune-schedules  # also delete periodic tasks removed

--app imports from the working directory first. Redis: --redis, else the App's redis=, else
$RELAYQ_REDIS_URL, else redis://localhost:6379/0. A Redis that cannot be reached at start is
waited for, with a line per try (--exit-if-unreachable exits instead).
"""

from __future__ import annotations

import argparse
import logging
import sys

from ..commandline import Parser, add_logging, add_redis, checked, number, run
from ..connection import connect_patiently, default_url, display_url
from ..errors import InvalidArgument, RedisUnavailable
from ..eviction import check_eviction
from ..keys import check_queue_name
from ..limits import DEFAULT_VISIBILITY_MS, MAX_VISIBILITY_MS, WORKER_REFRESH_MS
from ..logs import log_event, setup_logging
from ..replication import DEFAULT_TIMEOUT_MS
from .app import load_app
from .demo_app import demo_app
from .runtime import Worker

log = logging.getLogger("relayq.worker")


def queue_spec(spec: str) -> tuple[str, float | None]:
    """`--queue`: `name` or `name:weight` (a positive number)."""
    name, _, weight = spec.partition(":")
    check_queue_name(name)
    if not weight:
        return name, None
    try:
        value = float(weight)
    except ValueError:
        raise InvalidArgument(f"bad weight in {spec!r}: expected name:number") from None
    if not value > 0:
        raise InvalidArgument(f"weight in {spec!r} must be positive")
    return name, value


def split_queues(specs: list[tuple[str, float | None]]) -> tuple[list[str], list[float] | None]:
    """The names and the weights of the --queue options: weights for all or none."""
    names = [name for name, _ in specs]
    weights = [weight for _, weight in specs if weight is not None]
    if weights and len(weights) != len(names):
        raise InvalidArgument("give a weight to every --queue or to none")
    return names, weights or None


def build_parser() -> Parser:
    p = Parser(prog="relayq-worker", description=__doc__,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--queue", "-q", action="append", metavar="NAME[:WEIGHT]",
                   type=checked(queue_spec),
                   help="queue to serve (repeatable; strict order unless weights are given; "
                        "default with --app: the queues of its tasks)")
    p.add_argument("--concurrency", "-c", type=number(int, at_least=1), default=4,
                   help="jobs run at once (threads) (default 4)")
    p.add_argument("--prefetch", type=number(int, at_least=0), default=None,
                   help="jobs claimed ahead of free threads (default: --concurrency; 0 for "
                        "long jobs, so that idle workers get them)")
    p.add_argument("--app", metavar="MODULE:ATTR",
                   help="the relayq App with your tasks, imported from the working directory "
                        "first; without it the demo handler runs")
    add_redis(p, help="; with --app, the App's redis= comes before $RELAYQ_REDIS_URL")
    p.set_defaults(redis=None)  # resolved in work(): the App may name one
    p.add_argument("--exit-if-unreachable", action="store_true",
                   help="exit (1) when Redis cannot be reached at start, instead of waiting "
                        "for it")
    p.add_argument("--visibility", type=number(float, above=0, at_most=MAX_VISIBILITY_MS / 1000),
                   default=DEFAULT_VISIBILITY_MS / 1000,
                   help="lease length in seconds, extended while a job runs (default 30)")
    p.add_argument("--grace", type=float, default=30.0,
                   help="seconds to let running jobs finish on SIGTERM before handing them "
                        "back (default 30)")
    p.add_argument("--demo-fail-rate", type=number(float, at_least=0, at_most=1), default=0.1,
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
    p.add_argument("--registry-refresh-ms", type=number(int, at_least=100),
                   default=WORKER_REFRESH_MS, metavar="MS",
                   help="how often this worker refreshes its entry in the workers registry "
                        f"(relayq workers; default {WORKER_REFRESH_MS}); it expires after "
                        "three missed refreshes")
    p.add_argument("--prune-schedules", action="store_true",
                   help="delete the schedules of its queues that the app made (from periodic "
                        "tasks) but no longer defines; without it they are only named in a "
                        "warning")
    add_logging(p)
    p.set_defaults(handler=work)
    return p


def main(argv: list[str] | None = None) -> int:
    return run(build_parser(), argv)


def work(args: argparse.Namespace) -> int:
    setup_logging(args.log_level, args.log_format)
    app = load_app(args.app) if args.app else demo_app(args.demo_fail_rate)
    if args.queue is None and not args.app:
        raise InvalidArgument("give --queue NAME (or --app, whose tasks name their queues)")
    names, weights = split_queues(args.queue or [(name, None) for name in app.queue_names()])
    redis = args.redis or app.redis or default_url()
    client = redis if not isinstance(redis, str) else connect_patiently(
        redis, lambda error, delay: unreachable(redis, error, delay, args.exit_if_unreachable))
    app.use_redis(client)  # handles used inside handlers enqueue where this worker works
    events = None
    if args.metrics_addr:  # its own client, with a short timeout for scrapes
        from ..metrics import serve_worker_metrics

        if not isinstance(redis, str):
            raise InvalidArgument("--metrics-addr needs a Redis URL: give --redis")
        events = serve_worker_metrics(args.metrics_addr, redis, names)
    worker = Worker(names, app, client, concurrency=args.concurrency,
                    prefetch=args.prefetch,
                    visibility_ms=int(args.visibility * 1000), grace_s=args.grace,
                    weights=weights, events=events, replicas=args.replicas,
                    replica_timeout_ms=args.replica_timeout_ms,
                    registry_interval_s=args.registry_refresh_ms / 1000,
                    prune_schedules=args.prune_schedules)
    check_redis(worker.redis, args.allow_eviction)
    worker.run()
    return 0


def unreachable(url: str, error: RedisUnavailable, delay_s: float, give_up: bool) -> None:
    """One line per failed try at start: which Redis, why, and when the next try is (or, with
    --exit-if-unreachable, the error that ends the process)."""
    if give_up:
        raise RedisUnavailable(f"cannot reach Redis at {display_url(url)}: {error.message}")
    log_event(log, logging.WARNING, "redis.unreachable", redis=display_url(url),
              error=error.message, retry_in=f"{delay_s:.1f}s",
              hint="waiting for Redis (--exit-if-unreachable exits instead)")


def check_redis(client: object, allow_eviction: bool) -> None:
    """The startup check: refuses (InvalidArgument: start with --allow-eviction to accept the
    risk) a Redis that may evict queue keys unless `allow_eviction`; a Redis that cannot be
    reached yet is only logged (the worker waits)."""
    try:
        check = check_eviction(client)
    except RedisUnavailable as e:
        log_event(log, logging.WARNING, "redis.eviction_unchecked", error=e.message)
        return
    if not check.ok and not allow_eviction:
        raise InvalidArgument("refusing to start:\n" + check.message())
    if check.message():
        log_event(log, logging.WARNING, "redis.eviction_risk", detail=check.message())


if __name__ == "__main__":
    sys.exit(main())
