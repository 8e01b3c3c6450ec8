"""`relayq dlq list|requeue|purge`: the dead-letter queue of a queue, over the HTTP API.

    relayq dlq list emails --limit 20
    relayq dlq requeue emails emails.1795379690080000001     # one job (attempts reset)
    relayq dlq requeue emails --all
    relayq dlq purge emails --all
"""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import InvalidArgument, InvalidJobId
from ..job import parse_job_id
from ..limits import DEFAULT_PAGE, MAX_PAGE
from ..rfc3339 import format_ms
from .common import add_server_args, client_for, print_json, print_table


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("dlq", help="list, requeue or purge dead jobs",
                              description="The dead-letter queue of a queue.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    s = actions.add_parser("list", help="dead jobs, most recent first")
    s.add_argument("queue")
    s.add_argument("--limit", type=int, default=DEFAULT_PAGE,
                   help=f"jobs per page, 1-{MAX_PAGE} (default {DEFAULT_PAGE})")
    s.add_argument("--cursor", help="the next_cursor of the previous page")
    add_server_args(s)
    s.set_defaults(handler=list_dead)
    for verb, text in (("requeue", "back to ready with attempts reset"),
                       ("purge", "delete for good")):
        s = actions.add_parser(verb, help=f"{text}: one job, or --all")
        s.add_argument("queue")
        s.add_argument("id", nargs="?", help="the dead job (or give --all)")
        s.add_argument("--all", action="store_true", help="every dead job of the queue")
        add_server_args(s)
        s.set_defaults(handler=requeue_or_purge)


def list_dead(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        jobs, next_cursor = client.dead(args.queue, args.limit, args.cursor)
    if args.json:
        print_json({"jobs": [j.to_dict() for j in jobs], "next_cursor": next_cursor})
        return 0
    print_table(["id", "type", "attempts", "died", "last_error"],
                [[j.id, j.type or "-", j.attempts, format_ms(j.finished_at), j.last_error]
                 for j in jobs])
    if next_cursor:
        print(f"more: --cursor {next_cursor}")
    return 0


def requeue_or_purge(args: argparse.Namespace) -> int:
    if (args.id is None) == (not args.all):
        raise InvalidArgument("give a job id or --all (not both)")
    requeue = args.action == "requeue"
    with client_for(args) as client:
        if args.all:
            count = (client.requeue_all_dead if requeue else client.purge_all_dead)(args.queue)
        else:
            queue = parse_job_id(args.id)[0]
            if queue != args.queue:
                raise InvalidJobId(f"job {args.id} belongs to queue {queue}, not {args.queue}")
            (client.requeue_dead_job if requeue else client.purge_dead_job)(args.id)
            count = 1
    key = "requeued" if args.action == "requeue" else "purged"
    if args.json:
        print_json({key: count})
    else:
        print(f"{key} {count} dead job{'s' if count != 1 else ''} of {args.queue}")
    return 0
