"""`host:port` as people write it on command lines and in Redis URLs: the one parser for the
server's `--addr`, the worker's `--metrics-addr` and the host lists of `redis+sentinel://` and
`redis+cluster://` URLs. IPv6 hosts are written in brackets (`[::1]:8080`). And whether such an
address can be listened on, asked before a server starts anything."""

from __future__ import annotations

import os
import socket

from .errors import InvalidArgument, RelayqError
from .options import is_digits


def parse_host_port(text: str, what: str, *, any_host: str | None = None) -> tuple[str, int]:
    """(host, port) of `host:port`. With `any_host` (an address to listen on), the host may be
    left out (`:9100`) and means `any_host`. InvalidArgument, naming `what`, otherwise."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]") or (any_host or "")
    if not sep or not host or not is_digits(port) or not 0 <= int(port) <= 65535:
        raise InvalidArgument(f"bad {what} {text!r}: expected host:port")
    return host, int(port)


def check_can_listen(host: str, port: int, what: str) -> None:
    """RelayqError naming `what` when nothing can listen on host:port now (in use, a host that
    is not this machine's, a port below 1024 without the right): a server asks before it
    starts anything, so the user reads one line, not the traceback of its HTTP server's bind.
    Bound with SO_REUSEADDR, as servers bind: a port whose last connections wait out TIME_WAIT
    is free."""
    try:
        socket.create_server((host, port), family=socket.AF_INET6 if ":" in host
                             else socket.AF_INET).close()
    except OSError as e:
        reason = os.strerror(e.errno) if e.errno else str(e)
        raise RelayqError(f"cannot listen on {what} {host}:{port}: {reason}") from e
