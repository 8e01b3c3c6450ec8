"""`relayq restore`: put a queue's jobs back from a snapshot (the latest, or one named), checked
whole before anything is written, idempotent, so that a rerun completes an interrupted one
(relayq.export.restore; docs/export.md)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..commandline import describe_redis, number
from ..connection import connect
from ..export import open_store, restore_snapshot
from ..limits import DEFAULT_MAX_PAYLOAD_BYTES
from ..queue import Queue
from .common import print_json, print_table
from .export import add_store_args
from .progress import ProgressBar


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "restore", help="load a snapshot back into a queue",
        description="Restore a queue from a snapshot made by `relayq export`. Jobs already "
        "present are left alone; running jobs come back ready; scheduled jobs keep their due "
        "time; dead jobs stay dead. A corrupt or truncated snapshot is refused with nothing "
        "written.")
    add_store_args(p, "--from")
    p.add_argument("--queue", required=True, help="the queue to restore")
    p.add_argument("--snapshot", metavar="KEY",
                   help="the snapshot's key (default: the manifest's latest)")
    p.add_argument("--dry-run", action="store_true",
                   help="check the snapshot and report what it holds; write nothing")
    p.add_argument("--max-payload-bytes", type=number(int, at_least=1),
                   default=DEFAULT_MAX_PAYLOAD_BYTES,
                   metavar="N", help="the largest payload or result to restore, as the server's "
                   "--max-payload-bytes (default %(default)s); the queue's own max_payload_bytes "
                   "setting holds too, and lines are read no longer than these allow")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    queue: Queue[Any] = Queue(args.queue, connect(args.redis),
                              max_payload_bytes=args.max_payload_bytes)
    store = open_store(args.store, s3_endpoint_url=args.s3_endpoint_url)
    bars: dict[str, ProgressBar] = {}
    last: dict[str, tuple[int, int | None]] = {}

    def progress(done: int, total: int | None, phase: str) -> None:
        bar = bars.setdefault(phase, ProgressBar(f"{phase} {args.queue}"))
        bar.update(done, total)
        last[phase] = (done, total)

    result = restore_snapshot(queue, store, args.snapshot, dry_run=args.dry_run,
                              progress=None if args.json else progress)
    for phase, bar in bars.items():
        bar.close(*last[phase])
    if args.json:
        print_json(result.to_dict())
        return 0
    if not result.verified_by_manifest:
        print(f"note: {result.key} is not in the manifest: checked by its gzip CRC only")
    rows = [("snapshot", result.key), ("jobs", result.jobs),
            *((f"  {state}", n) for state, n in result.states.items())]
    label = "would find" if result.dry_run else "restore"
    rows += [(f"{label}: {status}", n) for status, n in result.statuses.items()]
    print_table(["", "count"], rows)
    print(f"{args.prog}: {'checked against' if result.dry_run else 'wrote to'} "
          f"{describe_redis(args.redis)}", file=sys.stderr)
    return 0
