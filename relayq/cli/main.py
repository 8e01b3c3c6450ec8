"""`relayq`: the operator CLI. Each subcommand lives in its own module of relayq.cli and adds
itself with `register(subparsers)`, choosing its handler with `set_defaults(handler=...)`; the
handler returns an exit code.

Errors a user can cause (bad arguments, unknown job, Redis unreachable) print one line on
stderr and exit non-zero: 2 for usage, 1 for failures (relayq.commandline.run). Never a traceback.
"""

from __future__ import annotations

import importlib
import sys

from ..commandline import Parser, run

# Subcommand modules, in the order `relayq --help` lists them.
COMMANDS = [
    "jobs",      # enqueue, job, jobs, cancel
    "work",      # claim, ack, nack, heartbeat
    "queues",    # status, pause, resume, rate-limit
    "groups",    # groups, group-limits set|clear (fair queues)
    "dlq",       # dlq list|requeue|purge
    "schedules",  # schedule set|list|show|rm|pause|resume|trigger
    "workers",
    "keys",      # keys create|list|revoke
    "bench",
    "export",
    "restore",
    "dev",       # Redis, server + dashboard, workers and a demo load, all here
    "chaos",
]


def build_parser() -> Parser:
    parser = Parser(prog="relayq", description="relayq: a Redis job queue.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMANDS:
        importlib.import_module(f"relayq.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
