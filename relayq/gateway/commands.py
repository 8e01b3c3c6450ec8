"""The command table of the gateway: every Redis command it answers, with its arity (Redis's
convention: n exact, -n at least n, the name included), the scope it needs (the HTTP API's:
relayq.auth) and its handler. Handlers call the same `Queue` operations as the HTTP API.

Lists are queues taken at most once: LPUSH and RPUSH enqueue (a value that is JSON becomes that
payload, anything else the string), LLEN is the ready count, RPOP/LPOP/BRPOP/BLPOP claim and
ack at once. relayq queues are FIFO by priority, so both ends are the same: LPUSH + RPOP and
RPUSH + LPOP both take the oldest job first. The stream commands are in
relayq.gateway.streams; the blocking ones (BRPOP, BLPOP, XREADGROUP BLOCK) wait in
relayq.gateway.wake and are run by the connection (relayq.gateway.server).

Errors: a RelayqError's code picks the Redis error kind (`KINDS`), its message follows the code:
`-ERR invalid_queue_name: ...`. Nothing is written when a command is refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..codec import dumps
from ..errors import InvalidArgument, PayloadTooLarge, RelayqError
from ..limits import MAX_CLAIM_COUNT
from ..metrics import record_claimed, record_enqueued
from ..queue import Queue
from ..results import NewJob
from .resp import NIL, NIL_ARRAY, OK, Error, Status
from .session import Gateway, Session

REDIS_VERSION = "7.2.0"  # what INFO and HELLO say: the commands' behaviour clients may expect
# a RelayqError's code -> the first word of its Redis error reply (ERR for every other code)
KINDS = {"unauthorized": "NOAUTH", "forbidden": "NOPERM", "redis_unavailable": "TRYAGAIN",
         "redis_busy": "BUSY", "lease_lost": "ERR"}
WRITE, READ, WORK = "jobs:write", "jobs:read", "jobs:work"

Handler = Callable[[Gateway, Session, list[bytes]], Any]


@dataclass(frozen=True)
class Command:
    name: str
    arity: int
    scope: str | None  # None: any authenticated key
    handler: Handler | None  # None: run by the connection itself (blocking, QUIT)
    before_auth: bool = False  # AUTH, HELLO, QUIT


def error_reply(e: RelayqError) -> Error:
    return Error(f"{e.code}: {e.message}", KINDS.get(e.code, "ERR"))


def text(arg: bytes, what: str = "value") -> str:
    try:
        return arg.decode()
    except UnicodeDecodeError:
        raise InvalidArgument(f"{what} must be UTF-8 text") from None


def integer(arg: bytes, what: str, low: int, high: int) -> int:
    try:
        value = int(arg)
    except ValueError:
        raise Error("value is not an integer or out of range") from None
    if not low <= value <= high:
        raise Error(f"{what} must be between {low} and {high}")
    return value


def queue_of(gw: Gateway, arg: bytes) -> Queue[Any]:
    """The queue a key names (InvalidQueueName for anything that is not a queue name)."""
    return gw.queue(text(arg, "queue name"))


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def payload_of(gw: Gateway, value: bytes) -> Any:
    """A pushed value as a payload: its JSON when it is JSON text, else the string."""
    if len(value) > gw.config.max_payload_bytes:
        raise PayloadTooLarge(f"value of {len(value)} bytes is over the payload limit of "
                              f"{gw.config.max_payload_bytes} bytes")
    string = text(value)
    try:
        return json.loads(string, parse_constant=_reject_constant)
    except ValueError:
        return string


def value_of(payload: Any) -> str:
    """A payload as a popped value: a string as it is, anything else as compact JSON."""
    return payload if isinstance(payload, str) else dumps(payload)


def worker_id(session: Session, consumer: str | None = None) -> str:
    return consumer or f"resp:{session.name or session.address}"


# -- connection -------------------------------------------------------------------------------

def ping(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    if len(args) > 2:
        raise Error("wrong number of arguments for 'ping' command")
    return Status("PONG") if len(args) == 1 else args[1]


def echo(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    return args[1]


def select(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    if args[1] != b"0":
        raise Error("DB index is out of range (relayq has one database: 0)")
    return OK


def auth(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    """AUTH key, or AUTH user key (the user name is not checked: the key says who it is)."""
    if len(args) > 3:
        raise Error("syntax error")
    s.login(gw, text(args[-1], "key"))
    return OK


def hello(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    """HELLO [2|3 [AUTH user key] [SETNAME name]]: switches the protocol, may authenticate."""
    version = s.writer.version
    rest = args[1:]
    if rest:
        if rest[0] not in (b"2", b"3"):
            raise Error("unsupported protocol version", "NOPROTO")
        version = int(rest[0])
        rest = rest[1:]
    name = None
    while rest:
        option = rest[0].upper()
        if option == b"AUTH" and len(rest) >= 3:
            s.login(gw, text(rest[2], "key"))
            rest = rest[3:]
        elif option == b"SETNAME" and len(rest) >= 2:
            name = text(rest[1], "name")
            rest = rest[2:]
        else:
            raise Error(f"syntax error in HELLO option {text(option, 'option')!r}")
    s.require(gw, None)
    if name is not None:
        s.name = name
    s.writer.version = version
    return {"server": "relayq", "version": REDIS_VERSION,
            "proto": version, "id": s.id, "mode": "standalone", "role": "master",
            "modules": []}


def client(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    sub = args[1].upper()
    if sub == b"SETNAME" and len(args) == 3:
        name = text(args[2], "name")
        if " " in name or "\n" in name:
            raise Error("Client names cannot contain spaces, newlines or special characters.")
        s.name = name or None
        return OK
    if sub == b"GETNAME" and len(args) == 2:
        return s.name if s.name is not None else NIL
    if sub == b"SETINFO" and len(args) == 4:
        s.info[text(args[2], "attribute").lower()] = text(args[3])
        return OK
    if sub == b"ID" and len(args) == 2:
        return s.id
    raise Error(f"unknown subcommand or wrong number of arguments for "
                f"'{text(args[1], 'subcommand')}'. Try CLIENT HELP.")


def info(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    lines = ["# Server", f"redis_version:{REDIS_VERSION}", "redis_mode:standalone",
             "relayq_gateway:1", f"tcp_port:{gw.config.port}", "",
             "# Clients", f"connected_clients:{gw.connections}",
             f"maxclients:{gw.config.max_connections}", "",
             "# Persistence", "loading:0", "", "# Replication", "role:master", "",
             "# Keyspace", ""]
    return "\r\n".join(lines)


def command(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    """COMMAND, COMMAND COUNT, COMMAND INFO name..., COMMAND DOCS: what clients ask on connect."""
    def described(c: Command) -> list[Any]:
        first = 0 if c.scope is None and c.name not in KEYED else 1
        return [c.name, c.arity, [Status("fast")], first, first, first]

    sub = args[1].upper() if len(args) > 1 else b""
    if not sub:
        return [described(c) for c in TABLE.values()]
    if sub == b"COUNT":
        return len(TABLE)
    if sub == b"INFO":
        return [described(TABLE[n]) if (n := a.decode(errors="replace").lower()) in TABLE
                else NIL for a in args[2:]]
    if sub == b"DOCS":
        return {}
    raise Error(f"unknown subcommand '{text(args[1], 'subcommand')}'. Try COMMAND HELP.")


# -- lists --------------------------------------------------------------------------------------

def push(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    """LPUSH/RPUSH q v [v ...] alone (the connection merges runs of pushes: push_many)."""
    return push_many(gw, args[1], [args])[0]


def push_many(gw: Gateway, key: bytes, commands: list[list[bytes]]) -> list[Any]:
    """Consecutive pushes to one queue as one enqueue (one round trip) and one stats read: a
    reply per command, the ready count after its values (as of this batch)."""
    q = queue_of(gw, key)
    replies: list[Any] = [None] * len(commands)
    jobs: list[NewJob[Any]] = []
    counts: list[tuple[int, int]] = []  # (command index, values) of the accepted commands
    for i, args in enumerate(commands):
        try:
            new = [NewJob(payload_of(gw, value)) for value in args[2:]]
        except RelayqError as e:
            replies[i] = error_reply(e)
            continue
        jobs.extend(new)
        counts.append((i, len(new)))
    if jobs:
        try:
            results = q.enqueue_many(jobs)
            ready = q.stats().ready
        except RelayqError as e:
            for i, _ in counts:
                replies[i] = error_reply(e)
            return replies
        record_enqueued(q.name, sum(not r.duplicate for r in results))
        later = len(jobs)
        for i, n in counts:
            later -= n
            replies[i] = max(0, ready - later)
    return replies


def llen(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    return queue_of(gw, args[1]).stats().ready


def pop_now(gw: Gateway, s: Session, q: Queue[Any], count: int) -> list[str]:
    """Takes up to `count` jobs at most once: claimed, then acked at once."""
    claimed = q.claim(count, worker_id=worker_id(s))
    if not claimed:
        return []
    q.ack_many([(job.id, job.lease, None) for job in claimed])
    record_claimed(q.name, claimed)
    return [value_of(job.payload) for job in claimed]


def pop(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    """RPOP/LPOP q [count]: one value (nil when none), or with count an array (nil when none)."""
    if len(args) > 3:
        raise Error(f"wrong number of arguments for '{args[0].decode().lower()}' command")
    q = queue_of(gw, args[1])
    if len(args) == 2:
        values = pop_now(gw, s, q, 1)
        return values[0] if values else NIL
    count = integer(args[2], "count", 0, MAX_CLAIM_COUNT)
    if count == 0:
        return []
    return pop_now(gw, s, q, count) or NIL_ARRAY


def _table() -> dict[str, Command]:
    from . import streams

    commands = [
        Command("auth", -2, None, auth, before_auth=True),
        Command("hello", -1, None, hello, before_auth=True),
        Command("quit", -1, None, None, before_auth=True),
        Command("ping", -1, None, ping),
        Command("echo", 2, None, echo),
        Command("select", 2, None, select),
        Command("client", -2, None, client),
        Command("info", -1, None, info),
        Command("command", -1, None, command),
        Command("lpush", -3, WRITE, push),
        Command("rpush", -3, WRITE, push),
        Command("llen", 2, READ, llen),
        Command("rpop", -2, WORK, pop),
        Command("lpop", -2, WORK, pop),
        Command("brpop", -3, WORK, None),
        Command("blpop", -3, WORK, None),
        Command("xadd", -5, WRITE, streams.xadd),
        Command("xlen", 2, READ, streams.xlen),
        Command("xinfo", -3, READ, streams.xinfo),
        Command("xgroup", -2, WORK, streams.xgroup),
        Command("xreadgroup", -7, WORK, None),
        Command("xack", -4, WORK, streams.xack),
        Command("xpending", -3, READ, streams.xpending),
        Command("xclaim", -6, WORK, streams.xclaim),
        Command("xautoclaim", -6, WORK, streams.xautoclaim),
    ]
    return {c.name: c for c in commands}


KEYED = frozenset(("lpush", "rpush", "llen", "rpop", "lpop", "brpop", "blpop", "xadd", "xlen",
                   "xack", "xpending", "xclaim", "xautoclaim"))
TABLE = _table()


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


def run(gw: Gateway, s: Session, found: Command, args: list[bytes]) -> Any:
    """One non-blocking command's reply (an Error reply for a refusal)."""
    try:
        if not found.before_auth:
            s.require(gw, found.scope)
        assert found.handler is not None
        return found.handler(gw, s, args)
    except Error as e:
        return e
    except RelayqError as e:
        return error_reply(e)
