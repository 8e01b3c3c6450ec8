"""`relayq`: the operator CLI. Each subcommand lives in its own module of relayq.cli and adds
itself with `register(subparsers)`; its handler returns an exit code.

Errors a user can cause (bad arguments, unknown job, Redis unreachable) print one line on
stderr and exit non-zero: 2 for usage, 1 for failures. Never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import InvalidArgument, RelayqError
from .common import EXIT_FAILURE, EXIT_USAGE, CommandError

# Subcommand modules, in the order `relayq --help` lists them.
COMMANDS = [
    "jobs",      # enqueue, job, cancel
    "work",      # claim, ack, nack, heartbeat
    "queues",    # status, pause, resume, rate-limit
    "dlq",       # dlq list|requeue|purge
    "keys",      # keys create|list|revoke
    "bench",
    "export",
    "restore",
    "dev",       # Redis, server + dashboard, workers and a demo load, all here
    "chaos",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relayq", description="relayq: a Redis job queue.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMANDS:
        importlib.import_module(f"relayq.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except CommandError as e:
        print(f"relayq {args.command}: {e}", file=sys.stderr)
        return e.exit_code
    except InvalidArgument as e:
        print(f"relayq {args.command}: {e.message}", file=sys.stderr)
        return EXIT_USAGE
    except RelayqError as e:
        print(f"relayq {args.command}: {e.message}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(f"relayq {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
