"""What every console command shares (`relayq`, `relayq-server`, `relayq-worker`,
`relayq-demo`): the parser, the options they have in common with their defaults, the `type=`
validators that check a value while it is parsed, and the one path from an error to an exit code.

- `Parser`: an ArgumentParser whose usage errors are one line on stderr (exit 2).
- `add_redis` / `add_server`: `--redis` defaults to $RELAYQ_REDIS_URL, else
  redis://localhost:6379/0 (relayq.connection.default_url); `--server` to $RELAYQ_SERVER, else
  http://localhost:8080 (relayq.client.default_server). The commands that start a private
  redis-server unless told otherwise (`relayq dev`, `relayq bench`) take `private=True`.
- `number`, `checked`: validators for `type=`, so that a bad value is a usage error before
  anything runs.
- `run`: parses, calls the handler the command chose (`set_defaults(handler=...)`) and turns a
  RelayqError into one line on stderr and the exit code of its code in `EXIT_CODES`; never a
  traceback (a closed pipe on stdout ends the command quietly with 141, like SIGPIPE).

Imports only the core: the worker and the server use it without loading the SDK or the tools.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from .connection import DEFAULT_URL, default_url, display_url
from .errors import RelayqError

T = TypeVar("T")
Number = TypeVar("Number", int, float)

EXIT_FAILURE = 1      # the operation ran and failed (not found, conflict, unavailable, ...)
EXIT_USAGE = 2        # bad arguments or input: the command line must change
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for `yes | head -1`

# RelayqError code -> exit code. Any other code: EXIT_FAILURE.
EXIT_CODES: dict[str, int] = {
    "invalid_argument": EXIT_USAGE,
    "invalid_queue_name": EXIT_USAGE,
    "invalid_job_id": EXIT_USAGE,
    "invalid_payload": EXIT_USAGE,
    "invalid_json": EXIT_USAGE,
    "payload_too_large": EXIT_USAGE,
}


def exit_code(error: RelayqError) -> int:
    return EXIT_CODES.get(error.code, EXIT_FAILURE)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser (its subcommands' parsers too) whose usage errors are one line,
    `<prog>: <message>`, and whose namespace names the (sub)command that ran in `prog`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.set_defaults(prog=self.prog)  # a subcommand's parser sets it again, last

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def run(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    """Runs a command: parses `argv` (usage errors exit 2 from here), calls the handler chosen
    with `set_defaults(handler=...)` and answers its exit code (None is 0). A RelayqError is one
    line on stderr and the exit code of its code; Ctrl-C is 130."""
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except RelayqError as e:
        print(f"{args.prog}: {e.message}", file=sys.stderr)
        return exit_code(e)
    except KeyboardInterrupt:
        print(f"{args.prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`relayq dlq list q | head -5`): stop quietly, as a command
        # killed by SIGPIPE would. Python would complain again flushing stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


def add_redis(parser: Any, *, private: bool = False, help: str = "") -> None:
    """`--redis URL`. `private`: the command starts a redis-server of its own unless given one
    (then $RELAYQ_REDIS_URL is not read: such a command never touches a Redis by accident).
    `help` adds to the text. `parser` may be a group (mutually exclusive with --server)."""
    if private:
        parser.add_argument("--redis", metavar="URL", default=None,
                            help="use this Redis instead of starting a private one" + help)
    else:
        parser.add_argument("--redis", metavar="URL", default=default_url(),
                            help="Redis URL (default $RELAYQ_REDIS_URL or "
                                 "redis://localhost:6379/0)" + help)


def describe_redis(url: str) -> str:
    """`url` (password hidden) and where it came from, for the commands that write to Redis to
    say which one they wrote to."""
    if os.environ.get("RELAYQ_REDIS_URL") == url:
        origin = "from $RELAYQ_REDIS_URL"
    elif url == DEFAULT_URL:
        origin = "the default: --redis or $RELAYQ_REDIS_URL name another"
    else:
        origin = "--redis"
    return f"Redis at {display_url(url)} ({origin})"


def add_server(parser: Any, *, default_from_env: bool = True, help: str = "") -> None:
    """`--server URL`, the relayq server of the commands that talk HTTP. Without
    `default_from_env` it has no default (`relayq keys`, where leaving it out means Redis)."""
    from .client import default_server  # here: the worker and the server never load the SDK

    parser.add_argument(
        "--server", metavar="URL", default=default_server() if default_from_env else None,
        help=("relayq server (default $RELAYQ_SERVER or http://localhost:8080)"
              if default_from_env else "relayq server") + help)


def add_logging(parser: Any) -> None:
    """`--log-level` and `--log-format` of the long-running processes (relayq.logs)."""
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"])
    parser.add_argument("--log-format", default="text", choices=["text", "json"],
                        help="text for people, json for log collectors (default text)")


def number(kind: Callable[[str], Number], *, at_least: Number | None = None,
           above: Number | None = None, at_most: Number | None = None
           ) -> Callable[[str], Number]:
    """A `type=` for an int or float (`kind`) in a range; NaN and infinities are refused."""
    if at_least is not None:
        low = f"at least {at_least:g}"
    elif above is not None:
        low = "positive" if above == 0 else f"more than {above:g}"
    else:
        low = ""
    if at_most is None:
        wanted = low or "a finite number"
    elif at_least is not None:
        wanted = f"between {at_least:g} and {at_most:g}"
    else:
        wanted = f"{low} and at most {at_most:g}" if low else f"at most {at_most:g}"

    def parse(text: str) -> Number:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None
        if not math.isfinite(value) or (at_least is not None and value < at_least) or (
                above is not None and value <= above) or (at_most is not None and value > at_most):
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text}")
        return value

    parse.__name__ = getattr(kind, "__name__", "number")
    return parse


def checked(check: Callable[[str], T]) -> Callable[[str], T]:
    """A `type=` from one of relayq's own checks (which raise RelayqError): its refusal becomes a
    usage error, with the check's message."""

    def parse(text: str) -> T:
        try:
            return check(text)
        except RelayqError as e:
            raise argparse.ArgumentTypeError(e.message) from None

    parse.__name__ = getattr(check, "__name__", "value")
    return parse

