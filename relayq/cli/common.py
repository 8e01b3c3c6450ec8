"""What every `relayq` subcommand shares: output (`--json` for machines, tables for people),
user errors as one line on stderr with a non-zero exit, never a traceback."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

EXIT_USAGE = 2      # bad arguments or input
EXIT_FAILURE = 1    # the operation ran and failed (not found, conflict, unavailable, ...)


class CommandError(Exception):
    """A user-facing failure: printed as one line, exits with `exit_code`."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def fail(message: str, exit_code: int = EXIT_FAILURE) -> NoReturn:
    raise CommandError(message, exit_code)


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
