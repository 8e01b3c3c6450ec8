"""`relayq-server`: the HTTP API, served by waitress (a production WSGI server with a thread
pool; never Flask's development server).

    relayq-server --addr 127.0.0.1:8080 --redis redis://localhost:6379/0
    relayq-server --auth off            # local experiments only: no keys checked

Threads: `--threads` serve ordinary requests; on top of them the pool has one thread for each
long poll (`--max-long-polls`) and each event stream (`--max-event-streams`) allowed at once,
so that waiting requests can never starve enqueues. Past those caps the server answers 503
`server_busy` with Retry-After instead of waiting.

Behind a reverse proxy that terminates TLS, `--behind-proxy N` (or $RELAYQ_BEHIND_PROXY) trusts
the X-Forwarded-For and X-Forwarded-Proto headers of the N proxies in front: the client's own
address is then the one throttled, and the session cookie is Secure. Without it those headers
are ignored, since any client could send them.

With auth on (the default) and no API key in Redis, the server creates an admin key and prints
it once on stdout. Failed authentications are throttled per client address: after
`--auth-failure-burst` failures in a row (20) an address gets 429 with Retry-After, its key
unchecked, until `--auth-failure-rate` (1 a second) has forgiven one.

`--export-to URI --export-every 5m` exports every queue on that schedule from a background
thread (relayq.export.ExportScheduler); several servers doing so at once stay correct, because
snapshots and manifests are written with conditional puts.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from typing import Any

import waitress

from ..auth import ADMIN
from ..commandline import Parser, add_redis, number, run
from ..errors import RelayqError
from ..export import ExportScheduler, open_store, parse_duration
from ..export.exporter import DEFAULT_KEEP
from ..hostport import parse_host_port
from ..keys import check_queue_name
from ..logs import log_event, setup_logging
from .app import create_app
from .services import ServerConfig, services
from .throttle import DEFAULT_BURST, DEFAULT_RATE

log = logging.getLogger("relayq.server")


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
    p.add_argument("--threads", type=number(int, at_least=1), default=8,
                   help="threads for ordinary requests (default 8)")
    p.add_argument("--max-long-polls", type=number(int, at_least=0),
                   default=defaults.max_long_polls,
                   help="claims waiting (wait_ms) at once, each with its own thread "
                        f"(default {defaults.max_long_polls})")
    p.add_argument("--max-event-streams", type=number(int, at_least=0),
                   default=defaults.max_event_streams,
                   help="open /api/events streams, each with its own thread "
                        f"(default {defaults.max_event_streams})")
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
    p.add_argument("--export-to", metavar="URI",
                   help="export every queue on a schedule to file:///dir or s3://bucket/prefix")
    p.add_argument("--export-every", default="5m", metavar="DURATION",
                   help="how often to export with --export-to (default 5m)")
    p.add_argument("--export-keep", type=number(int, at_least=1), default=DEFAULT_KEEP,
                   metavar="K",
                   help=f"snapshots kept per queue (default {DEFAULT_KEEP})")
    p.add_argument("--s3-endpoint-url", metavar="URL",
                   help="S3-compatible endpoint for s3:// export targets (MinIO, ...)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("--log-format", default="text", choices=["text", "json"])
    p.set_defaults(handler=serve)
    return p


def bootstrap_key() -> None:
    """With auth on and no key at all in Redis: make an admin key and print it once."""
    created = services().keys.create_first("bootstrap-admin", [ADMIN])
    if created is not None:
        record, key = created
        print(f"relayq-server: no API key existed, so an admin key was created (id {record.id})."
              f"\nIt is shown only this once; keep it safe:\n{key}", flush=True)
        log_event(log, logging.WARNING, "auth.bootstrap_key_created", key=record.id)


def main(argv: list[str] | None = None) -> int:
    return run(build_parser(), argv)


def serve(args: argparse.Namespace) -> int:
    setup_logging(args.log_level, args.log_format)
    host, port = parse_host_port(args.addr, "--addr")
    config = ServerConfig(
        redis_url=args.redis, auth=args.auth == "required", queues=parse_queues(args.queues),
        max_request_bytes=args.max_request_bytes, max_payload_bytes=args.max_payload_bytes,
        max_long_polls=args.max_long_polls, max_event_streams=args.max_event_streams,
        auth_failure_rate=args.auth_failure_rate, auth_failure_burst=args.auth_failure_burst,
        behind_proxy=args.behind_proxy)
    app = create_app(config)
    exporter = _export_scheduler(args, app)
    with app.app_context():
        if config.auth:
            bootstrap_key()
    try:
        server: Any = waitress.create_server(
            app, host=host, port=port,
            threads=args.threads + args.max_long_polls + args.max_event_streams,
            connection_limit=args.max_long_polls + args.max_event_streams + 256,
            # waitress's own limit only stops absurd bodies early; the app's limit (a JSON 413)
            # applies first to everything in between.
            max_request_body_size=2 * args.max_request_bytes,
            # read ahead so that a client that went away is seen at once (its long poll
            # stops waiting; its event stream ends)
            channel_request_lookahead=1,
            # waitress drops X-Forwarded-* itself unless told otherwise; behind a proxy they
            # must reach the app, whose ProxyFix trusts only what --behind-proxy says
            clear_untrusted_proxy_headers=not config.behind_proxy,
            asyncore_use_poll=True, ident="relayq")
    except OSError as e:
        raise RelayqError(f"cannot listen on {args.addr}: {e.strerror or e}") from e
    if not config.auth:
        print("relayq-server: WARNING: --auth off: every request is allowed without a key. "
              "Use this only for local experiments.", file=sys.stderr, flush=True)

    def stop(*_: Any) -> None:
        app.extensions["relayq"].close()  # long polls and streams end now; waitress drains
        sys.exit(0)

    if exporter is not None:
        exporter.start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log_event(log, logging.INFO, "server.listening",
              url=f"http://{args.addr.rpartition(':')[0]}:{server.effective_port}",
              auth="required" if config.auth else "off")
    try:
        server.run()
    except SystemExit:
        pass
    finally:
        server.close()
        if exporter is not None:
            exporter.stop()
    return 0


def _export_scheduler(args: argparse.Namespace, app: Any) -> ExportScheduler | None:
    """The scheduled export of --export-to, checked now (a bad URI fails at start)."""
    if not args.export_to:
        return None
    store = open_store(args.export_to, s3_endpoint_url=args.s3_endpoint_url)
    return ExportScheduler(app.extensions["relayq"].redis, store,
                           parse_duration(args.export_every), keep=args.export_keep)


if __name__ == "__main__":
    sys.exit(main())
