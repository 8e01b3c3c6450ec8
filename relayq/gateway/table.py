"""The command table of the gateway: every Redis command it answers, with its arity (Redis's
convention: n exact, -n at least n, the name included), the scope it needs (the HTTP API's,
relayq.auth: pushes `jobs:write`, pops, reads and acks `jobs:work`, counts `jobs:read`; None:
any key) and its handler (relayq.gateway.commands for lists and the connection,
relayq.gateway.streams for streams). A command without a handler (QUIT and the blocking ones)
is run by the connection itself (relayq.gateway.server). `lookup` finds a command or answers an
unknown name or a wrong arity; `run` answers one ordinary command, refusals included."""

from __future__ import annotations

from typing import Any

from ..errors import RelayqError
from . import commands as c
from . import streams as x
from .commands import READ, WORK, WRITE, Command, error_reply, text
from .resp import NIL, Error, Status
from .session import Gateway, Session


def command(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    """COMMAND, COMMAND COUNT, COMMAND INFO name..., COMMAND DOCS: what clients ask on connect."""
    def described(found: Command) -> list[Any]:
        first = 1 if found.name in KEYED else 0
        return [found.name, found.arity, [Status("fast")], first, first, first]

    sub = args[1].upper() if len(args) > 1 else b""
    if not sub:
        return [described(found) for found in TABLE.values()]
    if sub == b"COUNT":
        return len(TABLE)
    if sub == b"INFO":
        return [described(TABLE[n]) if (n := a.decode(errors="replace").lower()) in TABLE
                else NIL for a in args[2:]]
    if sub == b"DOCS":
        return {}
    raise Error(f"unknown subcommand '{text(args[1], 'subcommand')}'. Try COMMAND HELP.")


TABLE = {found.name: found for found in [
    Command("auth", -2, None, c.auth, before_auth=True),
    Command("hello", -1, None, c.hello, before_auth=True),
    Command("quit", -1, None, None, before_auth=True),
    Command("ping", -1, None, c.ping),
    Command("echo", 2, None, c.echo),
    Command("select", 2, None, c.select),
    Command("client", -2, None, c.client),
    Command("info", -1, None, c.info),
    Command("command", -1, None, command),
    Command("lpush", -3, WRITE, c.push),
    Command("rpush", -3, WRITE, c.push),
    Command("llen", 2, READ, c.llen),
    Command("rpop", -2, WORK, c.pop),
    Command("lpop", -2, WORK, c.pop),
    Command("brpop", -3, WORK, None),
    Command("blpop", -3, WORK, None),
    Command("xadd", -5, WRITE, x.xadd),
    Command("xlen", 2, READ, x.xlen),
    Command("xinfo", -3, READ, x.xinfo),
    Command("xgroup", -2, WORK, x.xgroup),
    Command("xreadgroup", -7, WORK, None),
    Command("xack", -4, WORK, x.xack),
    Command("xpending", -3, READ, x.xpending),
    Command("xclaim", -6, WORK, x.xclaim),
    Command("xautoclaim", -6, WORK, x.xautoclaim),
]}
# the commands whose first argument is a key (a queue): COMMAND tells clients so
KEYED = frozenset(found.name for found in TABLE.values() if found.scope is not None)


def lookup(args: list[bytes]) -> Command | Error:
    """The command `args` names, or the error reply for an unknown name or a wrong arity."""
    name = args[0].decode(errors="replace").lower()
    found = TABLE.get(name)
    if found is None:
        shown = " ".join(f"'{a.decode(errors='replace')[:64]}'" for a in args[1:4])
        return Error(f"unknown command '{args[0].decode(errors='replace')[:64]}', with args "
                     f"beginning with: {shown}")
    if (found.arity > 0 and len(args) != found.arity) or len(args) < abs(found.arity):
        return Error(f"wrong number of arguments for '{name}' command")
    return found


def metric_name(args: list[bytes]) -> str:
    """The command's name as a metric label: a name of the table, or 'unknown' (so that what
    clients send can never grow the label set)."""
    name = args[0].decode(errors="replace").lower()
    return name if name in TABLE else "unknown"


def run(gw: Gateway, s: Session, found: Command, args: list[bytes]) -> Any:
    """One ordinary command's reply (an Error reply for a refusal)."""
    try:
        if not found.before_auth:
            s.require(gw, found.scope)
        assert found.handler is not None
        return found.handler(gw, s, args)
    except Error as e:
        return e
    except RelayqError as e:
        return error_reply(e)
