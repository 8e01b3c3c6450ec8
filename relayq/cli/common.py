"""What every `relayq` subcommand shares: output (`--json` for machines, tables for people), and
the options and client of the subcommands that talk to the HTTP API. (Errors and exit codes:
relayq.commandline.)"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from ..client import Client
from ..commandline import add_server
from ..errors import InvalidArgument


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=None, separators=(",", ":"), default=str)
    sys.stdout.write("\n")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A plain aligned table; cell text is shown escaped (no terminal control characters)."""
    cells = [[safe_text(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    print("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths)).rstrip())
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def safe_text(value: Any) -> str:
    """Text for a terminal: control characters (escape sequences included) shown escaped."""
    text = "" if value is None else (value if isinstance(value, str) else json.dumps(value)
                                      if isinstance(value, (dict, list)) else str(value))
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def add_server_args(parser: argparse.ArgumentParser) -> None:
    """--server and --json, for the subcommands that talk to the HTTP API (the key comes from
    $RELAYQ_API_KEY only, so that it never shows in a process list)."""
    add_server(parser)
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def client_for(args: argparse.Namespace) -> Client:
    return Client(args.server)


def json_arg(text: str, what: str) -> Any:
    """A JSON value given on the command line ('-' reads it from stdin)."""
    if text == "-":
        text = sys.stdin.read()
    try:
        return json.loads(text)
    except ValueError as e:
        raise InvalidArgument(f"{what} is not valid JSON: {e}") from None


def print_job(job: dict[str, Any]) -> None:
    """One job as aligned `field  value` lines."""
    width = max(map(len, job))
    for name, value in job.items():
        if name == "history" and value:  # one line per earlier attempt, newest first
            print(f"{name.ljust(width)}  {len(value)} earlier attempt(s), newest first:")
            for attempt in value:
                print(f"{''.ljust(width)}  {attempt['finished_at']}  {attempt['outcome']}  "
                      f"{safe_text(attempt['worker_id'] or '-')}  "
                      f"{safe_text((attempt['error'] or '').splitlines()[-1:] or '')}")
            continue
        print(f"{name.ljust(width)}  {safe_text(value)}")
