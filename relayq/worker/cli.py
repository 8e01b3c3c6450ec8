"""`relayq-worker`: run a worker process.

    relayq-worker --app tasks:app                  # the queues of its tasks, its Redis
    relayq-worker --app myproject.tasks:app --queue emails --queue reports
    relayq-worker --queue demo --concurrency 4     # no --app: the built-in demo handler
    relayq-worker --queue high:3 --queue low:1     # weighted instead of strict order
    relayq-worker --server https://relayq.example.com --queue demo   # HTTP only, no Redis
    relayq-worker --app tasks:app --processes 4    # 4 processes under a supervisor: CPU-bound
                                                   # tasks, and timeout_ms stops a stuck one
    relayq-worker --app tasks:app --prune-schedules  # also delete periodic tasks removed

--app imports from the working directory first. Redis: --redis, else the App's redis=, else
$RELAYQ_REDIS_URL, else redis://localhost:6379/0. With --server the worker reaches its queues
through that relayq-server alone (key: $RELAYQ_API_KEY, scope jobs:work). A Redis (or server)
that cannot be reached at start is waited for, with a line per try (--exit-if-unreachable exits
instead); a key the server refuses exits at once (2).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from .. import tracing
from ..backoff import Backoff
from ..commandline import Parser, add_logging, add_redis, add_server, checked, number, run
from ..connection import connect, connect_patiently, default_url, display_url
from ..errors import (
    OUTAGES,
    Forbidden,
    InvalidArgument,
    NotFound,
    RedisUnavailable,
    Unauthorized,
)
from ..eviction import check_eviction
from ..keys import check_queue_name
from ..limits import DEFAULT_VISIBILITY_MS, MAX_VISIBILITY_MS, WORKER_REFRESH_MS
from ..logs import log_event, setup_logging
from ..metrics_dir import make_shared_metrics_dir, remove_shared_metrics_dir
from ..replication import DEFAULT_TIMEOUT_MS
from .app import App, load_app
from .demo_app import demo_app
from .events import WorkerEvents
from .runtime import Worker
from .supervisor import Reporter, Supervisor, child_fds, memory_size, rss_bytes

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
    add_server(p, default_from_env=False,
               help=": work over its HTTP API alone, no Redis needed (key: $RELAYQ_API_KEY "
                    "with scope jobs:work); not with --redis")
    p.add_argument("--exit-if-unreachable", action="store_true",
                   help="exit (1) when Redis (or the --server) cannot be reached at start, "
                        "instead of waiting for it")
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
    p.add_argument("--processes", type=number(int, at_least=1), metavar="N",
                   help="run N worker processes (each with --concurrency threads) under a "
                        "supervisor that replaces one that dies; in this mode timeout_ms stops "
                        "a stuck synchronous handler by stopping its process")
    p.add_argument("--max-jobs-per-process", type=number(int, at_least=1), metavar="N",
                   help="with --processes: replace a process after N jobs")
    p.add_argument("--max-memory-per-process", type=checked(memory_size), metavar="SIZE",
                   help="with --processes: replace a process whose resident memory exceeds "
                        "SIZE (e.g. 512M, 2G)")
    p.add_argument("--supervisor-fds", type=child_fds, help=argparse.SUPPRESS)
    p.add_argument("--prune-schedules", action="store_true",
                   help="delete the schedules of its queues that the app made (from periodic "
                        "tasks) but no longer defines; without it they are only named in a "
                        "warning")
    add_logging(p)
    p.set_defaults(handler=work)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # the supervisor starts its processes with the same arguments
    parser.set_defaults(argv=list(sys.argv[1:] if argv is None else argv))
    return run(parser, argv)


def work(args: argparse.Namespace) -> int:
    setup_logging(args.log_level, args.log_format)
    tracing.configure_test_exporter("relayq-worker")
    if args.server is not None:
        check_server_options(args)
    app = load_app(args.app) if args.app else demo_app(args.demo_fail_rate)
    if args.queue is None and not args.app:
        raise InvalidArgument("give --queue NAME (or --app, whose tasks name their queues)")
    names, weights = split_queues(args.queue or [(name, None) for name in app.queue_names()])
    if args.server is not None:
        client = connect_server(args.server, names, args.exit_if_unreachable)
        Worker(names, app, concurrency=args.concurrency, prefetch=args.prefetch,
               visibility_ms=int(args.visibility * 1000), grace_s=args.grace,
               weights=weights, client=client,
               registry_interval_s=args.registry_refresh_ms / 1000).run()
        return 0
    if args.supervisor_fds is None and args.processes is not None:
        return supervise(args, app, names)
    if args.supervisor_fds is None and (args.max_jobs_per_process or args.max_memory_per_process):
        raise InvalidArgument("--max-jobs-per-process and --max-memory-per-process need "
                              "--processes")
    redis = args.redis or app.redis or default_url()
    client = redis if not isinstance(redis, str) else connect_patiently(
        redis, lambda error, delay: unreachable(redis, error, delay, args.exit_if_unreachable))
    app.use_redis(client)  # handles used inside handlers enqueue where this worker works
    events: WorkerEvents | None = None
    if args.supervisor_fds is not None:  # a process of `--processes`: reports to its supervisor
        if args.metrics_addr:  # counted into the supervisor's directory; it serves them
            from ..metrics import MetricsEvents

            events = MetricsEvents(names)
        report_fd, lifeline_fd = args.supervisor_fds
        events = Reporter(report_fd, lifeline_fd, app, events or WorkerEvents(),
                          stop=lambda: worker.request_stop(),
                          max_jobs=args.max_jobs_per_process)
    elif args.metrics_addr:  # its own client, with a short timeout for scrapes
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
                    enforce_timeouts=args.supervisor_fds is None,
                    prune_schedules=args.prune_schedules)
    check_redis(worker.redis, args.allow_eviction)
    worker.run()
    return 0


def check_server_options(args: argparse.Namespace) -> None:
    """--server: an http(s) URL, and none of the options that only make sense over Redis."""
    parts = urlsplit(args.server)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgument(f"--server {args.server!r} is not a server URL: give "
                              "http://HOST:PORT or https://HOST")
    for given, option in ((args.redis, "--redis"), (args.metrics_addr, "--metrics-addr"),
                          (args.replicas, "--replicas"), (args.processes, "--processes")):
        if given:
            raise InvalidArgument(f"{option} is for a worker on Redis: not with --server")


def connect_server(url: str, queues: list[str], give_up: bool) -> Any:
    """A client of the relayq-server at `url`, once it answered a first reap of the first of
    `queues` (which needs the worker's scope, jobs:work), with a connection for each thread
    that calls it at once (a long poll per queue, the dispatcher, leases, maintenance,
    registry). A key the server refuses, or a URL that is not a
    relayq-server, is InvalidArgument (exit 2); a server that cannot be reached is waited for
    with a line per try, unless `give_up`."""
    from ..client import Client  # here: a worker over Redis never loads the SDK

    # urllib3 logs each of the SDK's retries; the worker's loops say once per failed round
    # that the server is away (server.unavailable), which is enough
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    client = Client(url, pool_size=len(queues) + 4)
    backoff = Backoff(first_s=1.0, cap_s=10.0, equal_jitter=True)
    while True:
        try:
            client.reap(queues[0])
            return client
        except (Unauthorized, Forbidden) as e:
            raise InvalidArgument(f"relayq-server at {client.server} refused the key "
                                  f"($RELAYQ_API_KEY; the worker needs scope jobs:work): "
                                  f"{e.message}") from None
        except NotFound as e:
            raise InvalidArgument(f"{client.server} does not look like a relayq-server: "
                                  f"{e.message}") from None
        except OUTAGES as e:
            # the SDK's hint names $RELAYQ_SERVER, which the worker does not read
            e.message = e.message.replace("set $RELAYQ_SERVER to use another",
                                          "--server names it")
            if give_up:
                raise
            delay = backoff.next_delay()
            log_event(log, logging.WARNING, "server.unreachable", server=client.server,
                      error=e.message, retry_in=f"{delay:.1f}s",
                      hint="waiting for the server (--exit-if-unreachable exits instead)")
            time.sleep(delay)


def supervise(args: argparse.Namespace, app: App, names: list[str]) -> int:
    """`--processes N`: the app imported here first (a bad one is exit 2 before any process
    starts), the limits checked, then the supervisor runs until SIGTERM."""
    limit = args.max_memory_per_process
    if limit is not None:
        own = rss_bytes(os.getpid())
        if own is None:
            raise InvalidArgument("--max-memory-per-process reads /proc, which this system "
                                  "does not have")
        if own > limit:
            raise InvalidArgument(f"--max-memory-per-process {limit / 1024**2:.0f} MiB is "
                                  "below a worker process's start-up size (about "
                                  f"{own / 1024**2:.0f} MiB)")
    redis = args.redis or app.redis or default_url()
    if args.metrics_addr and not isinstance(redis, str):
        raise InvalidArgument("--metrics-addr needs a Redis URL: give --redis")
    metrics_dir = make_shared_metrics_dir("relayq-worker-metrics-") if args.metrics_addr \
        else None
    endpoint = None
    try:
        if args.metrics_addr:  # after the directory is set: every process counts into it
            from ..metrics import serve_worker_metrics

            endpoint = serve_worker_metrics(args.metrics_addr, redis, names)
        client = connect(redis) if isinstance(redis, str) else redis
        return Supervisor(args.argv, args.processes, client, grace_s=args.grace,
                          max_jobs=args.max_jobs_per_process, max_memory=limit,
                          metrics=bool(args.metrics_addr)).run()
    finally:
        if endpoint is not None:
            endpoint.close()
        remove_shared_metrics_dir(metrics_dir)


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
