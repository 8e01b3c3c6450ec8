"""The connection and list commands of the gateway (the table is relayq.gateway.table), and
the helpers every handler shares. Handlers call the same `Queue` operations as the HTTP API.

Lists are queues taken at most once: LPUSH and RPUSH enqueue (a value that is JSON becomes that
payload, anything else the string), LLEN is the ready count, RPOP/LPOP/BRPOP/BLPOP claim and
ack at once. relayq queues are FIFO by priority, so both ends are the same: LPUSH + RPOP and
RPUSH + LPOP both take the oldest job first. The stream commands are in
relayq.gateway.streams; the blocking ones (BRPOP, BLPOP, XREADGROUP BLOCK) are run by the
connection (relayq.gateway.server) and wait in relayq.gateway.wake.

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
from .resp import NIL, NIL_ARRAY, OK, Error, Status
from .session import Gateway, Session

REDIS_VERSION = "7.2.0"  # what INFO and HELLO say: the commands' behaviour clients may expect
# a RelayqError's code -> the first word of its Redis error reply (ERR for every other code)
KINDS = {"unauthorized": "NOAUTH", "forbidden": "NOPERM", "redis_unavailable": "TRYAGAIN",
         "redis_busy": "BUSY"}
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


# -- lists --------------------------------------------------------------------------------------

def push(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    """LPUSH/RPUSH q v [v ...] alone (the connection merges runs of pushes: push_many)."""
    return push_many(gw, args[1], [args])[0]


def push_many(gw: Gateway, key: bytes, commands: list[list[bytes]]) -> list[Any]:
    """Consecutive pushes to one queue as one enqueue with the ready count read after it, in
    one round trip (Queue.push): a reply per command, the ready count after its values (as of
    this batch)."""
    q = queue_of(gw, key)
    replies: list[Any] = [None] * len(commands)
    payloads: list[Any] = []
    counts: list[tuple[int, int]] = []  # (command index, values) of the accepted commands
    for i, args in enumerate(commands):
        try:
            new = [payload_of(gw, value) for value in args[2:]]
        except RelayqError as e:
            replies[i] = error_reply(e)
            continue
        payloads.extend(new)
        counts.append((i, len(new)))
    if payloads:
        try:
            results, ready = q.push(payloads)
        except RelayqError as e:
            for i, _ in counts:
                replies[i] = error_reply(e)
            return replies
        record_enqueued(q.name, sum(not r.duplicate for r in results))
        later = len(payloads)
        for i, n in counts:
            later -= n
            replies[i] = max(0, ready - later)
    return replies


def llen(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    return queue_of(gw, args[1]).stats().ready


def pop_now(gw: Gateway, s: Session, q: Queue[Any], count: int) -> tuple[list[str], int | None]:
    """Takes up to `count` jobs at most once (claimed, then acked at once): their values, and
    when there are none, in how many ms to ask again (a scheduled job's due time; None: no
    hint)."""
    claimed = q.claim(count, worker_id=worker_id(s))
    if not claimed:
        return [], claimed.retry_in_ms
    q.ack_many([(job.id, job.lease, None) for job in claimed])
    record_claimed(q.name, claimed)
    return [value_of(job.payload) for job in claimed], None


def pop(gw: Gateway, s: Session, args: list[bytes]) -> Any:
    """RPOP/LPOP q [count]: one value (nil when none), or with count an array (nil when none)."""
    if len(args) > 3:
        raise Error(f"wrong number of arguments for '{args[0].decode().lower()}' command")
    q = queue_of(gw, args[1])
    if len(args) == 2:
        values, _ = pop_now(gw, s, q, 1)
        return values[0] if values else NIL
    count = integer(args[2], "count", 0, MAX_CLAIM_COUNT)
    if count == 0:
        return []
    return pop_now(gw, s, q, count)[0] or NIL_ARRAY
