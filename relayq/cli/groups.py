"""`relayq groups`, `relayq group-limits`: a queue's groups (fair queues, docs/fair-queues.md)
and one group's own limits, over the HTTP API.

    relayq groups emails                        # the largest backlog first
    relayq group-limits set emails tenant-42 --max-running 2 --rate 5 --burst 10
    relayq group-limits clear emails tenant-42
"""

from __future__ import annotations

import argparse
from typing import Any

from ..limits import DEFAULT_PAGE, MAX_GROUPS_PAGE
from .common import add_server_args, client_for, print_json, print_table


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "groups",
        help="a queue's groups (fair queues)",
        description="A queue's groups, the largest backlog first: ready and running jobs, "
        "their own limits (- : the queue's default) and state.",
    )
    p.add_argument("queue")
    p.add_argument("--limit", type=int, default=DEFAULT_PAGE, help=f"at most {MAX_GROUPS_PAGE}")
    p.add_argument("--cursor", help="the next_cursor of the previous page")
    add_server_args(p)
    p.set_defaults(handler=groups)

    p = subparsers.add_parser(
        "group-limits",
        help="set or clear a group's own limits",
        description="Set or clear a group's own limits, which override the queue's defaults.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    s = actions.add_parser("set", help="its concurrency limit and token bucket")
    s.add_argument("queue")
    s.add_argument("group")
    s.add_argument("--max-running", type=int, help="its jobs running at once (0: no limit)")
    s.add_argument("--rate", type=float, help="jobs per second (0: none)")
    s.add_argument("--burst", type=int, help="the bucket's size (a rate needs one)")
    add_server_args(s)
    s.set_defaults(handler=group_limits)
    c = actions.add_parser("clear", help="back to the queue's defaults")
    c.add_argument("queue")
    c.add_argument("group")
    add_server_args(c)
    c.set_defaults(handler=group_limits)


def _own(value: Any) -> str:
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def groups(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        page = client.groups(args.queue, args.limit, args.cursor)
    if args.json:
        print_json(page.to_dict())
        return 0
    print_table(
        ["group", "ready", "running", "max_running", "rate", "burst", "state"],
        [
            [g.group, g.ready, g.running, _own(g.max_running), _own(g.rate), _own(g.burst), g.state]
            for g in page.groups
        ],
    )
    print(
        f"{page.total} groups, {page.with_ready} with ready jobs, {page.limited} at their "
        f"limit, {page.throttled} throttled"
        + (f"; next page: --cursor {page.next_cursor}" if page.next_cursor else "")
    )
    return 0


def group_limits(args: argparse.Namespace) -> int:
    limits = None
    with client_for(args) as client:
        if args.action == "set":
            limits = {"max_running": args.max_running, "rate": args.rate, "burst": args.burst}
            client.set_group_limits(args.queue, args.group, **limits)
        else:
            client.clear_group_limits(args.queue, args.group)
    if args.json:
        print_json({"queue": args.queue, "group": args.group, "limits": limits})
    elif limits is None:
        print(f"{args.queue} group {args.group}: the queue's default limits")
    else:
        own = ", ".join(f"{k} {_own(v)}" for k, v in limits.items() if v is not None)
        print(f"{args.queue} group {args.group}: {own or 'no limits given'}")
    return 0
