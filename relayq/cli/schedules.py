"""`relayq schedule set|list|show|rm|pause|resume|trigger`: a queue's periodic schedules, over
the HTTP API (docs/periodic.md).

    relayq schedule set reports daily --cron "0 9 * * *" --tz Europe/Paris --payload '{"k": 1}'
    relayq schedule set emails digest --every-ms 60000 --type digest --misfire skip
    relayq schedule list reports
    relayq schedule pause reports daily
    relayq schedule trigger reports daily        # one job now
    relayq schedule rm reports daily
"""

from __future__ import annotations

import argparse
from typing import Any

from ..schedules import MISFIRE_POLICIES
from .common import add_server_args, client_for, json_arg, print_json, print_table


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("schedule", help="periodic schedules of a queue",
                              description="Save, list, show, delete, pause, resume or trigger "
                                          "a queue's periodic schedules.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    s = actions.add_parser("set", help="save a schedule (an upsert by id)")
    s.add_argument("queue")
    s.add_argument("id")
    when = s.add_mutually_exclusive_group(required=True)
    when.add_argument("--cron", help="5 fields, or 6 with seconds first")
    when.add_argument("--every-ms", type=int, metavar="MS", help="a fixed interval")
    s.add_argument("--tz", help="IANA time zone of --cron (default UTC)")
    s.add_argument("--payload", default="null", help="the jobs' payload, JSON ('-': stdin; "
                                                     "default null)")
    s.add_argument("--start-at", metavar="RFC3339", help="no tick before this")
    s.add_argument("--end-at", metavar="RFC3339", help="no tick after this")
    s.add_argument("--misfire", choices=MISFIRE_POLICIES,
                   help="ticks missed while nothing ran: once (default), skip or all")
    state = s.add_mutually_exclusive_group()
    state.add_argument("--paused", action="store_true", default=None, help="saved paused")
    state.add_argument("--active", dest="paused", action="store_false",
                       help="saved active (default: a new schedule is active, an existing one "
                            "keeps its state)")
    s.add_argument("--type", help="the jobs' type")
    s.add_argument("--group", help="the jobs' group (fair queues: a tenant id, say)")
    for name in ("priority", "max-attempts", "timeout-ms", "backoff-base-ms",
                 "backoff-cap-ms"):
        s.add_argument(f"--{name}", type=int)
    add_server_args(s)
    s.set_defaults(handler=save)

    s = actions.add_parser("list", help="every schedule of a queue")
    s.add_argument("queue")
    add_server_args(s)
    s.set_defaults(handler=list_all)
    for verb, text in (("show", "one schedule"), ("rm", "delete a schedule (its jobs stay)"),
                       ("pause", "stop a schedule's ticks"),
                       ("resume", "start a paused schedule again from its next tick"),
                       ("trigger", "make one job of a schedule now")):
        s = actions.add_parser(verb, help=text)
        s.add_argument("queue")
        s.add_argument("id")
        add_server_args(s)
        s.set_defaults(handler=one, verb=verb)


def save(args: argparse.Namespace) -> int:
    fields: dict[str, Any] = {
        "cron": args.cron, "every_ms": args.every_ms, "tz": args.tz, "start_at": args.start_at,
        "end_at": args.end_at, "misfire": args.misfire, "paused": args.paused,
        "type": args.type, "priority": args.priority, "max_attempts": args.max_attempts,
        "timeout_ms": args.timeout_ms, "backoff_base_ms": args.backoff_base_ms,
        "backoff_cap_ms": args.backoff_cap_ms, "group": args.group}
    payload = json_arg(args.payload, "--payload")
    with client_for(args) as client:
        saved = client.schedule(args.queue, args.id, payload, **fields)
    _show(args, saved)
    return 0


def list_all(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        schedules = client.schedules(args.queue)
    if args.json:
        print_json({"schedules": schedules})
        return 0
    print_table(["id", "when", "tz", "paused", "next_run_at", "last_run_at", "last_job_id"],
                [[s["id"], _when(s), s["tz"], "yes" if s["paused"] else "no",
                  s["next_run_at"] or "-", s["last_run_at"] or "-", s["last_job_id"] or "-"]
                 for s in schedules])
    return 0


def one(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        if args.verb == "show":
            _show(args, client.get_schedule(args.queue, args.id))
        elif args.verb == "rm":
            client.unschedule(args.queue, args.id)
            if args.json:
                print_json({"queue": args.queue, "id": args.id, "deleted": True})
            else:
                print(f"schedule {args.id} of {args.queue} deleted")
        elif args.verb == "trigger":
            job_id = client.trigger_schedule(args.queue, args.id)
            if args.json:
                print_json({"queue": args.queue, "schedule_id": args.id, "job_id": job_id})
            else:
                print(job_id)
        else:
            method = client.pause_schedule if args.verb == "pause" else client.resume_schedule
            _show(args, method(args.queue, args.id))
    return 0


def _when(schedule: dict[str, Any]) -> str:
    return schedule["cron"] or f"every {schedule['every_ms']} ms"


def _show(args: argparse.Namespace, schedule: dict[str, Any]) -> None:
    if args.json:
        print_json(schedule)
        return
    print_table(["field", "value"], [[name, "-" if value is None else value]
                                     for name, value in schedule.items()])
