"""`host:port` as people write it on command lines and in Redis URLs: the one parser for the
server's `--addr`, the worker's `--metrics-addr` and the host lists of `redis+sentinel://` and
`redis+cluster://` URLs. IPv6 hosts are written in brackets (`[::1]:8080`)."""

from __future__ import annotations

from .errors import InvalidArgument
from .options import is_digits


def parse_host_port(text: str, what: str, *, any_host: str | None = None) -> tuple[str, int]:
    """(host, port) of `host:port`. With `any_host` (an address to listen on), the host may be
    left out (`:9100`) and means `any_host`. InvalidArgument, naming `what`, otherwise."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]") or (any_host or "")
    if not sep or not host or not is_digits(port) or not 0 <= int(port) <= 65535:
        raise InvalidArgument(f"bad {what} {text!r}: expected host:port")
    return host, int(port)
