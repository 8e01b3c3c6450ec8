"""`relayq export`: snapshot queues to object storage (file://, s3://, memory://), once or on a
schedule. Snapshots and the manifest are written with conditional puts, so several exporters may
run at once (relayq.export; docs/export.md)."""

from __future__ import annotations

import argparse
import sys
import threading
from typing import Any

from ..commandline import add_redis, number
from ..connection import connect
from ..export import ExportResult, ExportScheduler, export_queue, open_store, parse_duration
from ..export.exporter import DEFAULT_KEEP
from ..queue import list_queues
from .common import print_json, print_table
from .progress import ProgressBar


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "export", help="snapshot queues to object storage",
        description="Snapshot queue state to file:///dir, s3://bucket/prefix or memory://. "
        "Each snapshot is a new object; the queue's manifest.json is updated by "
        "compare-and-set; the newest --keep snapshots are kept.")
    add_store_args(p, "--to")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--queue", help="the queue to export")
    which.add_argument("--all", action="store_true", help="every queue Redis knows")
    p.add_argument("--every", metavar="DURATION",
                   help="keep exporting on this schedule (e.g. 30s, 5m, 1h) until interrupted")
    p.add_argument("--keep", type=number(int, at_least=1), default=DEFAULT_KEEP, metavar="K",
                   help=f"snapshots to keep per queue (default {DEFAULT_KEEP})")
    p.set_defaults(handler=run)


def add_store_args(p: argparse.ArgumentParser, flag: str) -> None:
    """The options export and restore share: the store URI, S3 endpoint, Redis, --json."""
    p.add_argument(flag, dest="store", required=True, metavar="URI",
                   help="file:///dir, s3://bucket/prefix or memory://")
    p.add_argument("--s3-endpoint-url", metavar="URL",
                   help="an S3-compatible endpoint (MinIO, SeaweedFS, ...); credentials come "
                   "from the standard AWS chain (AWS_ACCESS_KEY_ID, ...)")
    add_redis(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    every_s = parse_duration(args.every) if args.every else None
    redis = connect(args.redis)
    store = open_store(args.store, s3_endpoint_url=args.s3_endpoint_url)
    queues = [args.queue] if args.queue else None
    if every_s is not None:
        return _every(args, redis, store, queues, every_s)
    results = []
    for queue in queues or list_queues(redis):
        bar = ProgressBar(f"export {queue}")
        result = export_queue(redis, store, queue, keep=args.keep,
                              progress=None if args.json else bar.update)
        if not args.json:
            bar.close(result.jobs, result.jobs)
        results.append(result)
    _report(results, args.json)
    return 0


def _report(results: list[ExportResult], as_json: bool) -> None:
    if as_json:
        for r in results:
            print_json(r.to_dict())
        return
    print_table(["queue", "jobs", "bytes", "seconds", "snapshot"],
                [(r.queue, r.jobs, r.bytes, r.seconds, r.key) for r in results])
    sys.stdout.flush()


def _every(args: argparse.Namespace, redis: Any, store: Any, queues: list[str] | None,
           every_s: float) -> int:
    """Exports on a schedule until interrupted (Ctrl-C, SIGTERM as KeyboardInterrupt)."""
    scheduler = ExportScheduler(redis, store, every_s, args.keep, queues,
                                on_export=lambda results: _report(results, args.json))
    scheduler.start()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        print("relayq export: stopping after the export under way", file=sys.stderr)
    finally:
        scheduler.stop()
    return 0
