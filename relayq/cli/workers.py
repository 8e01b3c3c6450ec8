"""`relayq workers`: the live worker processes (the workers registry), over the HTTP API.

    relayq workers
    relayq workers --json
"""

from __future__ import annotations

import argparse
from typing import Any

from ..rfc3339 import format_ms
from .common import add_server_args, client_for, print_json, print_table


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "workers", help="live worker processes",
        description="The worker processes alive now: each keeps an entry in Redis while it "
                    "runs (a worker that dies disappears within three refreshes).")
    add_server_args(p)
    p.set_defaults(handler=list_workers)


def list_workers(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        workers = client.workers()
    if args.json:
        print_json({"workers": [w.to_dict() for w in workers]})
        return 0
    print_table(["id", "host", "pid", "queues", "busy", "jobs", "started", "last_seen"],
                [[w.id, w.host, w.pid, ",".join(w.queues), f"{w.busy}/{w.concurrency}",
                  " ".join(w.jobs) or "-", format_ms(w.started_at), format_ms(w.last_seen_at)]
                 for w in workers])
    return 0
