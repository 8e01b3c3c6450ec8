"""`relayq-server`: the HTTP API, served by granian (a Rust HTTP server) with one worker process
per core (`--workers`, default: the cores this process may use); never Flask's development
server.

    relayq-server --addr 127.0.0.1:8080 --redis redis://localhost:6379/0
    relayq-server --auth off            # local experiments only: no keys checked

Each worker process runs the app through relayq.api.bridge, with threads of its own for
ordinary requests (`--threads`), for long polls and for event streams; `--max-long-polls` and
`--max-event-streams` are the server's totals, shared out among the workers. So waiting
requests can never starve enqueues, and past any of those caps the server answers 503
`server_busy` with Retry-After instead of queueing.

Connections: HTTP/1.1 only, at most `--max-connections` open (shared out among the workers);
a connection that has not sent a whole request header within `--header-timeout` seconds is
closed (idle keep-alive connections too), and a body must arrive within `--body-timeout`.
A slow client holds a connection, never a thread. Per-address connection caps belong to the
proxy or firewall in front (granian cannot count connections by address).

With auth on (the default) and no API key in Redis, the server creates an admin key and prints
it once on stdout (in the main process, before the workers start). Failed authentications are
throttled per client address and worker: after `--auth-failure-burst` failures in a row (20) an
address gets 429 with Retry-After, its key unchecked, until `--auth-failure-rate` (1 a second)
has forgiven one.

On SIGTERM or SIGINT the workers stop accepting, waiting long polls answer at once, event
streams end, and requests in progress finish (for up to `SERVER_STOP_TIMEOUT_S`).

Behind a reverse proxy that terminates TLS, `--behind-proxy N` (or $RELAYQ_BEHIND_PROXY) trusts
the X-Forwarded-For and X-Forwarded-Proto headers of the N proxies in front: the client's own
address is then the one throttled, and the session cookie is Secure. Without it those headers
are ignored, since any client could send them.

`--resp-addr HOST:PORT` also serves the Redis protocol, so that any Redis client enqueues and
consumes (LPUSH/BRPOP, XADD/XREADGROUP/XACK, ...: docs/resp.md), with the same keys and scopes,
from a process of its own that the server starts first and starts again if it dies.

A thread of the main process fires the due ticks of the periodic schedules of every queue
that has any (relayq.api.schedule_firer); workers do so for their queues too, and each tick
still becomes exactly one job.

`--export-to URI --export-every 5m` exports every queue on that schedule from a background
thread of the main process (relayq.export.ExportScheduler); several servers doing so at once
stay correct, because snapshots and manifests are written with conditional puts.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import math
import multiprocessing
import os
import sys
import threading
from functools import partial
from typing import Any

from .. import tracing
from ..auth import ADMIN, KeyStore
from ..commandline import Parser, add_logging, add_redis, number, run
from ..connection import connect
from ..errors import InvalidArgument, RelayqError
from ..export import ExportScheduler, open_store, parse_duration
from ..export.exporter import DEFAULT_KEEP
from ..gateway.process import GatewayProcess
from ..gateway.session import GatewayConfig
from ..hostport import check_can_listen, parse_host_port
from ..keys import check_queue_name
from ..limits import (
    MAX_VISIBILITY_MS,
    RESP_IDLE_TIMEOUT_MS,
    RESP_LEASE_MS,
    RESP_MAX_CONNECTIONS,
    SERVER_STOP_TIMEOUT_S,
)
from ..logs import log_event, setup_logging, stop_logging
from ..metrics_dir import make_shared_metrics_dir, remove_shared_metrics_dir
from ..queue import list_queues
from ..throttle import DEFAULT_BURST, DEFAULT_RATE
from ..worker.fact_mover import FactMover
from .bridge import Bridge, Limits
from .schedule_firer import ScheduleFirer
from .services import ServerConfig

log = logging.getLogger("relayq.server")
# granian's own log lines go through our handler (stderr, our format), not to stdout
GRANIAN_LOGGING = {"loggers": {"_granian": {"handlers": [], "propagate": True}}}
BODY_BUDGET_REQUESTS = 4  # bodies of --max-request-bytes a worker may hold at once


def parse_queues(values: list[str]) -> tuple[str, ...]:
    names = [n.strip() for v in values for n in v.split(",") if n.strip()]
    return tuple(check_queue_name(n) for n in names)


def build_parser() -> Parser:
    p = Parser(prog="relayq-server", description=__doc__,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--addr", default="127.0.0.1:8080",
                   help="address to listen on, host:port (default 127.0.0.1:8080)")
    add_redis(p)
    p.add_argument("--auth", choices=["required", "off"], default="required",
                   help="API keys required (default) or not checked at all")
    p.add_argument("--queues", action="append", default=[], metavar="NAME[,NAME...]",
                   help="queues to list even before their first use (repeatable)")
    defaults = ServerConfig()
    p.add_argument("--max-request-bytes", type=number(int, at_least=1),
                   default=defaults.max_request_bytes,
                   help="largest request body accepted, else 413 "
                        f"(default {defaults.max_request_bytes // 1024 // 1024} MiB)")
    p.add_argument("--max-payload-bytes", type=number(int, at_least=1),
                   default=defaults.max_payload_bytes,
                   help="largest job payload or result, else 413 "
                        f"(default {defaults.max_payload_bytes // 1024 // 1024} MiB)")
    p.add_argument("--max-json-values", type=number(int, at_least=1),
                   default=defaults.max_json_values, metavar="N",
                   help="JSON values in one request body (objects, arrays, strings, numbers), "
                        "else 413: bounds the memory parsing takes "
                        f"(default {defaults.max_json_values})")
    p.add_argument("--workers", type=number(int, at_least=1),
                   default=len(os.sched_getaffinity(0)),
                   help="worker processes (default: the cores this process may use)")
    p.add_argument("--threads", type=number(int, at_least=1), default=8,
                   help="threads for ordinary requests, per worker (default 8)")
    p.add_argument("--queue", type=number(int, at_least=0), default=64,
                   help="ordinary requests waiting for a thread, per worker, beyond: 503 "
                        "(default 64)")
    p.add_argument("--max-long-polls", type=number(int, at_least=0),
                   default=defaults.max_long_polls,
                   help="claims waiting (wait_ms) at once, each with its own thread "
                        f"(default {defaults.max_long_polls} in all)")
    p.add_argument("--max-event-streams", type=number(int, at_least=0),
                   default=defaults.max_event_streams,
                   help="open /api/events streams, each with its own thread "
                        f"(default {defaults.max_event_streams} in all)")
    p.add_argument("--max-connections", type=number(int, at_least=1), default=8192,
                   help="open connections at once (default 8192 in all)")
    p.add_argument("--header-timeout", type=number(float, at_least=0.001, at_most=60),
                   default=10.0, metavar="SECONDS",
                   help="a request header must arrive within this, else the connection is "
                        "closed (default 10; at most 60)")
    p.add_argument("--body-timeout", type=number(float, above=0), default=10.0,
                   metavar="SECONDS",
                   help="a request body must arrive within this, else 408 (default 10)")
    p.add_argument("--auth-failure-burst", type=number(int, at_least=0), default=DEFAULT_BURST,
                   metavar="N",
                   help="failed authentications in a row from one address before it gets 429 "
                        f"(default {DEFAULT_BURST}; 0: never throttle)")
    p.add_argument("--auth-failure-rate", type=number(float, above=0), default=DEFAULT_RATE,
                   metavar="PER_S",
                   help="failed authentications forgiven per second per address "
                        f"(default {DEFAULT_RATE:g})")
    p.add_argument("--behind-proxy", type=number(int, at_least=0), metavar="N",
                   default=os.environ.get("RELAYQ_BEHIND_PROXY", "0"),
                   help="trust X-Forwarded-For/-Proto from N proxies in front (default "
                        "$RELAYQ_BEHIND_PROXY or 0: the headers are ignored)")
    p.add_argument("--resp-addr", metavar="HOST:PORT",
                   help="also serve the Redis protocol (RESP2/RESP3) on this address: any Redis "
                        "client enqueues and consumes (docs/resp.md)")
    p.add_argument("--resp-max-connections", type=number(int, at_least=1),
                   default=RESP_MAX_CONNECTIONS, metavar="N",
                   help=f"open RESP connections at once (default {RESP_MAX_CONNECTIONS})")
    p.add_argument("--resp-idle-timeout", type=number(float, above=0),
                   default=RESP_IDLE_TIMEOUT_MS / 1000, metavar="SECONDS",
                   help="a RESP connection silent this long is closed (default "
                        f"{RESP_IDLE_TIMEOUT_MS // 1000}; not while it blocks in BRPOP and such)")
    p.add_argument("--resp-lease-ms", type=number(int, at_least=1, at_most=MAX_VISIBILITY_MS),
                   default=RESP_LEASE_MS, metavar="MS",
                   help="lease of a stream entry read with XREADGROUP: not acked within it, it "
                        f"is delivered again (default {RESP_LEASE_MS})")
    p.add_argument("--export-to", metavar="URI",
                   help="export every queue on a schedule to file:///dir or s3://bucket/prefix")
    p.add_argument("--export-every", default="5m", metavar="DURATION",
                   help="how often to export with --export-to (default 5m)")
    p.add_argument("--export-keep", type=number(int, at_least=1), default=DEFAULT_KEEP,
                   metavar="K",
                   help=f"snapshots kept per queue (default {DEFAULT_KEEP})")
    p.add_argument("--s3-endpoint-url", metavar="URL",
                   help="S3-compatible endpoint for s3:// export targets (MinIO, ...)")
    add_logging(p)
    p.set_defaults(handler=serve)
    return p


def bootstrap_key(redis_url: str | None) -> None:
    """With auth on and no key at all in Redis: make an admin key and print it once."""
    redis = connect(redis_url)
    try:
        created = KeyStore(redis).create_first("bootstrap-admin", [ADMIN])
    finally:
        redis.close()
    if created is not None:
        record, key = created
        print(f"relayq-server: no API key existed, so an admin key was created (id {record.id})."
              f"\nIt is shown only this once; keep it safe:\n{key}", flush=True)
        log_event(log, logging.WARNING, "auth.bootstrap_key_created", key=record.id)


def share(total: int, workers: int) -> int:
    """One worker's part of a server-wide cap (rounded up: the cap is never below total)."""
    return math.ceil(total / workers)


class StopSignal:
    """The main process's word to its granian workers that the server is stopping: a pipe
    whose writing end only the main process keeps open (granian forks the workers; each
    closes the copy it inherited). `send` closes it: every worker's reading end then reads an
    end of file at once, the workers still starting included, and nobody is waited for, so it
    is safe in a signal handler. (A multiprocessing.Event was not: its set() waits until every
    waiter has woken, and a worker killed first, by a SIGTERM to the whole process group as
    systemd sends, never does: the server hung.)"""

    def __init__(self) -> None:
        self._reader, self._writer = multiprocessing.Pipe(duplex=False)

    def send(self) -> None:
        self._writer.close()

    def in_worker(self) -> None:
        self._writer.close()  # the forked copy: else no worker would ever read an end of file

    def is_set(self) -> bool:
        return self._reader.poll(0)

    def wait(self) -> None:
        self._reader.poll(None)


def worker_app(config: ServerConfig, limits: Limits, log_level: str, log_format: str,
               stopping: StopSignal) -> Bridge:
    """Runs in each worker process: its own app, Redis connections and threads. `stopping`
    (set by the main process on SIGTERM) ends its long polls and event streams at once."""
    # First of all: until this worker closes the copy of the signal's writing end it inherited,
    # no worker can read the end of file that says "stop" (the app takes a while to build).
    stopping.in_worker()
    from .app import create_app  # here: the main process never builds an app
    from .native import NativeApi

    setup_logging(log_level, log_format)
    tracing.configure_test_exporter("relayq-server")
    app = create_app(config)
    if stopping.is_set():
        # The server was told to stop while this worker was still starting. granian's SIGTERM
        # reached it before it could act on one (it would serve on until killed, after
        # SERVER_STOP_TIMEOUT_S): there is nothing to drain yet, so end now.
        os._exit(0)
    services = app.extensions["relayq"]

    def stop_waiting() -> None:
        stopping.wait()
        services.close()

    def stopped() -> None:  # a worker process ends without running atexit
        services.close()
        stop_logging()

    threading.Thread(target=stop_waiting, name="relayq-stop", daemon=True).start()
    return Bridge(app, limits, stopped, NativeApi(services))


def main(argv: list[str] | None = None) -> int:
    return run(build_parser(), argv)


def serve(args: argparse.Namespace) -> int:
    setup_logging(args.log_level, args.log_format)
    if args.max_connections < args.workers:
        raise InvalidArgument("--max-connections must be at least --workers")
    host, port = parse_host_port(args.addr, "--addr")
    check_can_listen(host, port, "--addr")
    resp_addr = parse_host_port(args.resp_addr, "--resp-addr") if args.resp_addr else None
    workers = args.workers
    config = ServerConfig(
        redis_url=args.redis, auth=args.auth == "required", queues=parse_queues(args.queues),
        max_request_bytes=args.max_request_bytes, max_payload_bytes=args.max_payload_bytes,
        max_json_values=args.max_json_values,
        max_long_polls=share(args.max_long_polls, workers),
        max_event_streams=share(args.max_event_streams, workers),
        auth_failure_rate=args.auth_failure_rate, auth_failure_burst=args.auth_failure_burst,
        behind_proxy=args.behind_proxy)
    limits = Limits(threads=args.threads, queue=args.queue,
                    long_polls=config.max_long_polls, event_streams=config.max_event_streams,
                    max_request_bytes=args.max_request_bytes,
                    body_budget_bytes=BODY_BUDGET_REQUESTS * args.max_request_bytes,
                    body_timeout_s=args.body_timeout)
    exporter = _export_scheduler(args)
    if config.auth:
        bootstrap_key(config.redis_url)
    if not config.auth:
        print("relayq-server: WARNING: --auth off: every request is allowed without a key. "
              "Use this only for local experiments.", file=sys.stderr, flush=True)
    stopping = StopSignal()
    server = _granian(args, host, port, stopping)
    # one /metrics sums every granian worker's counts (the main process never imports
    # prometheus_client, so the directory is set before any worker does)
    metrics_dir = make_shared_metrics_dir("relayq-server-metrics-")
    # Before any thread of this process starts: granian forks its workers from here, and a
    # module that a thread is importing at that moment stays locked in the child for good, so
    # the child's own import of it hangs (seen: a worker stuck importing relayq.metrics, which
    # the schedule firer's first round was importing; the server never answered, about one
    # start in three on a busy 2-core machine). Everything the workers and these threads
    # import is imported now, once (after the metrics directory: prometheus_client reads it).
    for module in ("relayq.metrics", "relayq.api.app", "relayq.api.native"):
        importlib.import_module(module)
    gateway = None
    # fires every queue's due schedule ticks (counted into the metrics directory just set)
    firer = ScheduleFirer(connect(config.redis_url))
    firer.start()
    mover_redis = connect(config.redis_url)  # workflows: facts across queues, of every queue
    mover = FactMover(mover_redis, lambda: list_queues(mover_redis))
    mover.start()
    try:
        # after the metrics directory: the gateway counts into it too
        gateway = _gateway(resp_addr, args, config) if resp_addr else None
        if exporter is not None:
            exporter.start()
        log_event(log, logging.INFO, "server.listening", url=f"http://{args.addr}",
                  auth="required" if config.auth else "off", workers=workers)
        server.serve(target_loader=partial(worker_app, config, limits, args.log_level,
                                           args.log_format, stopping), wrap_loader=False)
    except OSError as e:
        raise RelayqError(f"cannot listen on {args.addr}: {e.strerror or e}") from e
    finally:
        # both told first, then waited for: their rounds in flight end together
        firer.stop_soon()
        mover.stop_soon()
        firer.stop()
        mover.stop()
        if exporter is not None:
            exporter.stop()
        if gateway is not None:
            gateway.stop()
        remove_shared_metrics_dir(metrics_dir)
    return 0


def _granian(args: argparse.Namespace, host: str, port: int, stopping: StopSignal) -> Any:
    """The granian server: HTTP/1.1 only, since the HTTP/2 detection of its "auto" mode reads a
    new connection's first bytes with no deadline (an idle connection would stay forever)."""
    from granian.constants import HTTPModes, Interfaces, RuntimeModes
    from granian.http import HTTP1Settings
    from granian.server import Server

    class RelayqServer(Server):  # type: ignore[misc, valid-type]
        def signal_handler_interrupt(self, *a: Any, **kw: Any) -> None:
            stopping.send()  # workers end their long polls and streams now
            super().signal_handler_interrupt(*a, **kw)

    level = {"debug": "debug", "info": "warning"}.get(args.log_level, args.log_level)
    return RelayqServer(
        "relayq", address=host, port=port, interface=Interfaces.RSGI, workers=args.workers,
        runtime_mode=RuntimeModes.st, http=HTTPModes.http1, websockets=False,
        backlog=max(128, args.max_connections),
        backpressure=share(args.max_connections, args.workers),
        http1_settings=HTTP1Settings(header_read_timeout=max(1, round(args.header_timeout * 1000))),
        log_level=level, log_dictconfig=GRANIAN_LOGGING,
        workers_kill_timeout=SERVER_STOP_TIMEOUT_S, respawn_failed_workers=True)


def _gateway(addr: tuple[str, int], args: argparse.Namespace, config: ServerConfig
             ) -> GatewayProcess:
    """The RESP gateway of --resp-addr, listening before the HTTP side starts."""
    host, port = addr
    gateway = GatewayProcess(GatewayConfig(
        host=host, port=port, redis_url=config.redis_url, auth=config.auth,
        max_payload_bytes=config.max_payload_bytes, max_connections=args.resp_max_connections,
        idle_timeout_ms=round(args.resp_idle_timeout * 1000), lease_ms=args.resp_lease_ms,
        auth_failure_rate=config.auth_failure_rate, auth_failure_burst=config.auth_failure_burst),
        args.log_level, args.log_format)
    return gateway.start()


def _export_scheduler(args: argparse.Namespace) -> ExportScheduler | None:
    """The scheduled export of --export-to, checked now (a bad URI fails at start)."""
    if not args.export_to:
        return None
    store = open_store(args.export_to, s3_endpoint_url=args.s3_endpoint_url)
    return ExportScheduler(connect(args.redis), store,
                           parse_duration(args.export_every), keep=args.export_keep)


if __name__ == "__main__":
    sys.exit(main())
