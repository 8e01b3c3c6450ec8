"""`relayq enqueue`, `relayq job`, `relayq jobs`, `relayq cancel`: producing and looking at
jobs, over the HTTP API.

    relayq enqueue emails '{"to": "ada@example.com"}' --type send_email --priority 5
    relayq job emails.1795379690080000001 --wait 30
    relayq jobs emails --state running
    relayq jobs emails --state dead --search timeout
    relayq cancel emails.1795379690080000001
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..commandline import EXIT_FAILURE
from ..job import LISTED_STATES
from ..limits import DEFAULT_PAGE, MAX_PAGE, MAX_PRIORITY, MIN_PRIORITY, SEARCH_SCAN_LIMIT
from ..rfc3339 import format_ms, parse_ms
from .common import add_server_args, client_for, json_arg, print_job, print_json, print_table


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("enqueue", help="add a job to a queue",
                              description="Add a job to a queue (prints its id).")
    p.add_argument("queue")
    p.add_argument("payload", help="the payload as JSON ('-' reads it from stdin)")
    p.add_argument("--type", help="job type (the task that runs it)")
    p.add_argument("--priority", type=int, default=0,
                   help=f"{MIN_PRIORITY}-{MAX_PRIORITY}, higher first (default 0)")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--delay-ms", type=int, help="run no earlier than this many ms from now")
    when.add_argument("--run-at", metavar="TIME",
                      help="run no earlier than this RFC 3339 time (e.g. 2030-01-02T03:04:05Z)")
    p.add_argument("--max-attempts", type=int, help="attempts before the dead-letter queue")
    p.add_argument("--idempotency-key", help="enqueue at most once per key (within its TTL)")
    p.add_argument("--timeout-ms", type=int, help="a run that lasts longer fails")
    p.add_argument("--depends-on", metavar="ID", action="append",
                   help="a parent job (repeat for more): the job waits until each succeeded")
    p.add_argument("--on-parent-failure", choices=("cancel", "run"),
                   help="when a parent ends dead or cancelled: cancel the job (default) or "
                        "run it anyway")
    p.add_argument("--group", help="its group (fair queues: a tenant id, say)")
    add_server_args(p)
    p.set_defaults(handler=enqueue)

    p = subparsers.add_parser("job", help="show a job", description="Show a job.")
    p.add_argument("id")
    p.add_argument("--wait", type=float, metavar="SECONDS",
                   help="first wait up to SECONDS for it to finish (exit 1 if it does not)")
    add_server_args(p)
    p.set_defaults(handler=show)

    p = subparsers.add_parser(
        "jobs", help="list a queue's jobs of one state",
        description="A page of a queue's jobs of one state: ready in claim order (priority, "
                    "then FIFO), scheduled by due time, running by lease deadline, succeeded "
                    "and dead newest first, waiting oldest first. cancelled is always empty "
                    "(no index keeps them).")
    p.add_argument("queue")
    p.add_argument("--state", required=True, choices=LISTED_STATES)
    p.add_argument("--limit", type=int, default=DEFAULT_PAGE,
                   help=f"jobs per page, 1-{MAX_PAGE} (default {DEFAULT_PAGE})")
    p.add_argument("--cursor", help="the next_cursor of the previous page")
    p.add_argument("--search", metavar="TEXT",
                   help="only jobs whose id, type or last error contains TEXT (a page reads "
                        f"at most {SEARCH_SCAN_LIMIT} jobs: follow the cursor for more)")
    add_server_args(p)
    p.set_defaults(handler=list_jobs)

    p = subparsers.add_parser(
        "cancel", help="cancel a job (a running one by request)",
        description="Cancel a job. A ready or scheduled one is cancelled at once; a running "
                    "one has its cancel requested: its handler learns it within a second and "
                    "the job ends cancelled, never retried. A finished job cannot be "
                    "cancelled.")
    p.add_argument("id")
    add_server_args(p)
    p.set_defaults(handler=cancel)


def enqueue(args: argparse.Namespace) -> int:
    options = {name: getattr(args, name) for name in (
        "type", "delay_ms", "max_attempts", "idempotency_key", "timeout_ms", "group",
        "depends_on", "on_parent_failure")
        if getattr(args, name) is not None}
    if args.run_at is not None:
        options["run_at"] = parse_ms(args.run_at, "--run-at")  # refused here, before a request
    with client_for(args) as client:
        result = client.enqueue(args.queue, json_arg(args.payload, "payload"),
                                priority=args.priority, **options)
    if args.json:
        print_json(result._asdict())
    else:
        print(f"{result.id} {result.state}{' (duplicate)' if result.duplicate else ''}")
    return 0


def show(args: argparse.Namespace) -> int:
    code = 0
    with client_for(args) as client:
        if args.wait is None:
            job = client.get(args.id)
        else:
            try:
                job = client.wait(args.id, args.wait, on_change=lambda j: print(
                    f"relayq job: {j.id} is {j.state}", file=sys.stderr))
            except TimeoutError as e:
                print(f"relayq job: {e}", file=sys.stderr)
                job, code = client.get(args.id), EXIT_FAILURE
    if args.json:
        print_json(job.to_dict())
    else:
        print_job(job.to_dict())
    return code


# The columns of `relayq jobs` per state: (header, value of a job).
COMMON_COLUMNS = [("id", lambda j: j.id), ("type", lambda j: j.type or "-"),
                  ("prio", lambda j: j.priority), ("attempts", lambda j: j.attempts)]
STATE_COLUMNS: dict[str, list[tuple[str, Any]]] = {
    "ready": [("created", lambda j: format_ms(j.created_at))],
    "scheduled": [("run_at", lambda j: format_ms(j.run_at)),
                  ("last_error", lambda j: j.last_error)],
    "running": [("worker", lambda j: j.worker_id), ("started", lambda j: format_ms(j.started_at)),
                ("lease_deadline", lambda j: format_ms(j.lease_deadline))],
    "succeeded": [("finished", lambda j: format_ms(j.finished_at))],
    "dead": [("died", lambda j: format_ms(j.finished_at)), ("last_error", lambda j: j.last_error)],
}


def list_jobs(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        jobs, next_cursor = client.jobs(args.queue, args.state, args.limit, args.cursor,
                                        args.search)
    if args.json:
        print_json({"jobs": [j.to_dict() for j in jobs], "next_cursor": next_cursor})
        return 0
    columns = COMMON_COLUMNS + STATE_COLUMNS.get(args.state, [])
    print_table([name for name, _ in columns],
                [[value(j) for _, value in columns] for j in jobs])
    if next_cursor:
        print(f"more: --cursor {next_cursor}")
    return 0


def cancel(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        state = client.cancel(args.id)
    if args.json:
        print_json({"id": args.id, "state": state, "cancel_requested": state == "running"})
    elif state == "running":
        print(f"{args.id} is running: cancel requested")
    else:
        print(f"{args.id} cancelled")
    return 0
