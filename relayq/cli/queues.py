"""`relayq status`, `pause`, `resume`, `rate-limit`, `settings`: looking at and steering queues
over the HTTP API.

    relayq status                   # every queue
    relayq pause emails
    relayq rate-limit set emails 50 --burst 100
    relayq rate-limit clear emails
    relayq settings emails          # every setting of Queue.configure
    relayq settings emails --set max_running=20 --set group_max_running=2
"""

from __future__ import annotations

import argparse
import difflib
from typing import Any

from ..client import Client
from ..errors import InvalidArgument, NotFound
from ..limits import FRACTIONAL_SETTINGS, SETTING_DEFAULTS
from ..results import QueueStats
from .common import add_server_args, client_for, print_json, print_table


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("status", help="queue stats",
                              description="Stats of one queue, or of every queue.")
    p.add_argument("queue", nargs="?")
    add_server_args(p)
    p.set_defaults(handler=status)

    for verb, text in (("pause", "stop handing out a queue's jobs (enqueues still work)"),
                       ("resume", "hand out a paused queue's jobs again")):
        p = subparsers.add_parser(verb, help=text, description=text.capitalize() + ".")
        p.add_argument("queue")
        add_server_args(p)
        p.set_defaults(handler=pause_or_resume, verb=verb)

    p = subparsers.add_parser("rate-limit", help="set or clear a queue's rate limit",
                              description="Set or clear a queue's rate limit (token bucket).")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    s = actions.add_parser("set", help="at most RATE jobs per second, in bursts of --burst")
    s.add_argument("queue")
    s.add_argument("rate", type=float)
    s.add_argument("--burst", type=int, help="default: one second's worth")
    add_server_args(s)
    s.set_defaults(handler=rate_limit)
    c = actions.add_parser("clear", help="no rate limit")
    c.add_argument("queue")
    add_server_args(c)
    c.set_defaults(handler=rate_limit)

    p = subparsers.add_parser(
        "settings", help="show or change a queue's settings",
        description="Show a queue's settings (defaults of new jobs, retention, the event log's "
                    "length, the fair-queue limits), or change some with --set (all or none). "
                    f"Settings: {', '.join(SETTING_DEFAULTS)}.")
    p.add_argument("queue")
    p.add_argument("--set", metavar="NAME=VALUE", action="append", default=[],
                   help="a setting to change (repeat for more)")
    add_server_args(p)
    p.set_defaults(handler=settings)


def status(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        stats = [used_queue_stats(client, args.queue)] if args.queue else client.queues()
    if args.json:
        views = [s.to_dict() for s in stats]
        print_json(views[0] if args.queue else {"queues": views})
        return 0
    print_table(["queue", "ready", "scheduled", "running", "dead", "succeeded", "paused",
                 "rate_limit", "enqueued", "latency"],
                [[s.queue, s.ready, s.scheduled, s.running, s.dead, s.succeeded,
                  "yes" if s.paused else "no", _rate(s.rate_limit), s.totals["enqueued"],
                  _latency(s.latency_ms)]
                 for s in stats])
    return 0


def used_queue_stats(client: Client, name: str) -> QueueStats:
    """The stats of queue `name`; NotFound (exit 1) when it has never been used, which the
    server would show as an empty queue (a typo looks just like an idle queue)."""
    stats = client.stats(name)
    untouched = not any(stats.totals.values()) and not stats.paused and not stats.rate_limit
    if untouched:
        known = [s.queue for s in client.queues()]
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3)
            hint = (f"did you mean {' or '.join(close)}?" if close else
                    f"known queues: {', '.join(known[:10])}{' ...' if len(known) > 10 else ''}"
                    if known else "no queue has been used yet")
            raise NotFound(f"queue {name!r} has never been used ({hint})")
    return stats


def _latency(ms: int) -> str:
    """The age of the oldest ready job, in the largest unit that keeps it short."""
    seconds = ms / 1000
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{ms}ms"


def _rate(limit: dict[str, Any] | None) -> str:
    return "-" if limit is None else f"{limit['rate']:g}/s burst {limit['burst']}"


def pause_or_resume(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        (client.pause if args.verb == "pause" else client.resume)(args.queue)
    if args.json:
        print_json({"queue": args.queue, "paused": args.verb == "pause"})
    else:
        print(f"{args.queue} {'paused' if args.verb == 'pause' else 'resumed'}")
    return 0


def rate_limit(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        if args.action == "set":
            client.set_rate_limit(args.queue, args.rate, args.burst)
        else:
            client.clear_rate_limit(args.queue)
        limit = client.stats(args.queue).rate_limit
    if args.json:
        print_json({"queue": args.queue, "rate_limit": limit})
    else:
        print(f"{args.queue} rate limit: {_rate(limit)}")
    return 0


def settings(args: argparse.Namespace) -> int:
    changes = dict(_setting(text) for text in args.set)
    with client_for(args) as client:
        values = (client.configure(args.queue, **changes) if changes
                  else client.settings(args.queue))
    if args.json:
        print_json({"queue": args.queue, "settings": values})
    else:
        print_table(["setting", "value"], [[name, f"{value:g}"] for name, value in values.items()])
    return 0


def _setting(text: str) -> tuple[str, float]:
    """NAME=VALUE of --set, the value a number (an integer unless the setting takes fractions)."""
    name, sep, value = text.partition("=")
    if not sep or name not in SETTING_DEFAULTS:
        raise InvalidArgument(f"--set {text!r}: expected NAME=VALUE, NAME one of "
                              f"{', '.join(SETTING_DEFAULTS)}")
    try:
        return name, float(value) if name in FRACTIONAL_SETTINGS else int(value)
    except ValueError:
        kind = "a number" if name in FRACTIONAL_SETTINGS else "an integer"
        raise InvalidArgument(f"--set {text!r}: {name} must be {kind}") from None
