"""`relayq claim`, `ack`, `nack`, `heartbeat`: working jobs by hand (or from a shell script) over
the HTTP API.

    relayq claim emails --count 5 --wait-ms 10000 --json
    relayq ack emails.1795379690080000001 --lease 3fa2b1c0e --result '{"sent": true}'
    relayq nack emails.1795379690080000001 --lease 3fa2b1c0e --error "smtp down" --delay-ms 60000
"""

from __future__ import annotations

import argparse
from typing import Any

from ..limits import DEFAULT_VISIBILITY_MS, MAX_HTTP_CLAIM_COUNT, MAX_WAIT_MS
from ..rfc3339 import format_ms
from .common import add_server_args, client_for, json_arg, print_json, print_table


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("claim", help="claim jobs under a lease",
                              description="Claim jobs under a lease; prints each with its lease.")
    p.add_argument("queue")
    p.add_argument("--count", type=int, default=1,
                   help=f"most jobs to take, 1-{MAX_HTTP_CLAIM_COUNT} (default 1)")
    p.add_argument("--wait-ms", type=int, default=0,
                   help=f"wait up to this long for a job (long poll, at most {MAX_WAIT_MS})")
    p.add_argument("--visibility-ms", type=int,
                   help=f"lease length (default {DEFAULT_VISIBILITY_MS})")
    p.add_argument("--worker-id", help="who holds the lease (default: the server names you)")
    add_server_args(p)
    p.set_defaults(handler=claim)

    for verb, text, handler in (("ack", "mark a running job succeeded", ack),
                                ("nack", "mark a running job failed (retried, or dead)", nack),
                                ("heartbeat", "extend a running job's lease", heartbeat)):
        p = subparsers.add_parser(verb, help=text, description=text.capitalize() + ".")
        p.add_argument("id")
        p.add_argument("--lease", required=True, help="the lease the claim handed out")
        if verb == "ack":
            p.add_argument("--result", help="the job's result as JSON ('-' reads stdin)")
        elif verb == "nack":
            p.add_argument("--error", default="", help="what went wrong")
            p.add_argument("--no-retry", action="store_true", help="straight to the dead letters")
            p.add_argument("--delay-ms", type=int, help="retry after this long (default: backoff)")
        else:
            p.add_argument("--visibility-ms", type=int, help="new lease length from now")
        add_server_args(p)
        p.set_defaults(handler=handler)


def claim(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        jobs = client.claim(args.queue, args.count, wait_ms=args.wait_ms,
                            visibility_ms=args.visibility_ms, worker_id=args.worker_id)
    if args.json:
        print_json({"jobs": [job.to_dict(with_lease=True) for job in jobs]})
    elif not jobs:
        print(f"nothing to claim ({jobs.status})")
    else:
        print_table(["id", "type", "priority", "attempts", "lease", "lease_deadline"],
                    [[j.id, j.type or "-", j.priority, j.attempts, j.lease,
                      format_ms(j.lease_deadline)] for j in jobs])
    return 0


def ack(args: argparse.Namespace) -> int:
    result = None if args.result is None else json_arg(args.result, "--result")
    with client_for(args) as client:
        client.ack(args.id, args.lease, result)
    _report(args, {"id": args.id, "state": "succeeded"})
    return 0


def nack(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        outcome = client.nack(args.id, args.lease, args.error, retry=not args.no_retry,
                              delay_ms=args.delay_ms)
    _report(args, {"id": args.id, "state": outcome.state, "attempts": outcome.attempts,
                   "run_at": format_ms(outcome.run_at)})
    return 0


def heartbeat(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        deadline = client.heartbeat(args.id, args.lease, args.visibility_ms)
    _report(args, {"id": args.id, "lease_deadline": format_ms(deadline)})
    return 0


def _report(args: argparse.Namespace, outcome: dict[str, Any]) -> None:
    if args.json:
        print_json(outcome)
    else:
        print(" ".join(f"{k}={v}" for k, v in outcome.items() if v is not None))
