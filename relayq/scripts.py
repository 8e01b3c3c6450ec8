"""The script registry: every Lua script of lua/, loaded once, run by SHA.

Rules that hold for every script (see lua/README.md):
- each script is one atomic state transition; Redis runs it without interleaving, so no lock is
  ever taken in Python;
- each answers a status string first; a refusal's status is an error code (relayq/errors.py);
  the calls and the parsing of their replies are relayq/protocol.py's;
- each validates before it writes, because Redis does not roll a script back.

Sources are read and their `--@include lib/<name>.lua` lines resolved when this module is
imported, so a missing or broken file fails at start, not at first use. Each script then gets a
prelude of `local NAME = value` lines, one per constant of `relayq.limits` that its source names
(`MAX_PRIORITY`, `SETTING_DEFAULTS`, ...): the limits are written once, in Python, and reach
the scripts as plain locals (a register load each, nothing per call beyond that; the values
are part of the script's text, so its SHA changes with them). Scripts run with EVALSHA
on the calling thread's kept connection (relayq/wire.py: redis-py's per-command layer costs more
than the script); after a Redis restart or SCRIPT FLUSH the first call answers NOSCRIPT, and the
script is loaded and the call repeated (a NOSCRIPT call did not run, so repeating it is safe).

Pipelines (`run_pipelined`) hold calls of one queue, so of one hash slot. On Redis Cluster they
run on the plain client of the node that owns the slot, not through redis-py's ClusterPipeline:
that one resends commands after a connection error or timeout, when they may already have run.
A call answered MOVED (the slot moved in a failover) did not run either: the slot map is re-read
and the call repeated on the new owner. With `wait`, every round trip ends with Redis `WAIT` on
the same connection, which covers exactly the writes of that round trip; fewer replicas than
asked raise NotReplicated (the writes stand on the primary, but a failover could lose them).
"""

from __future__ import annotations

import hashlib
import re
import weakref
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

import redis
from redis.exceptions import MovedError, NoScriptError

from . import limits, wire
from .connection import (
    RedisClient,
    follow_primary,
    is_cluster,
    node_client,
    redis_errors,
    refresh_topology,
)
from .errors import NotReplicated, RedisUnavailable
from .replication import Wait

INCLUDE = re.compile(r"^--@include\s+(\S+)\s*$", re.MULTILINE)
NAME = re.compile(r"\b[A-Z][A-Z0-9_]*\b")


def lua_dir() -> Path:
    """Where the .lua files are: inside the installed package, or lua/ of a source checkout."""
    packaged = Path(str(resources.files("relayq"))) / "lua"
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parent.parent / "lua"
    if checkout.is_dir():
        return checkout
    raise RuntimeError(f"relayq's Lua scripts are missing (looked in {packaged} and {checkout})")


def resolve_includes(source: str, read: Any, seen: set[str] | None = None) -> str:
    """Replaces each `--@include path` line by the file's text (resolved recursively), keeping
    only the first inclusion of each file. `read(path)` returns a file's text."""
    seen = set() if seen is None else seen

    def expand(match: re.Match[str]) -> str:
        path = match.group(1)
        if path in seen:
            return f"-- (already included: {path})"
        seen.add(path)
        return resolve_includes(read(path), read, seen)

    return INCLUDE.sub(expand, source)


def lua_literal(value: Any) -> str:
    """A Python number, tuple or dict of them as Lua source (numbers exactly: repr of a float
    reads back as the same double)."""
    if isinstance(value, bool):
        raise TypeError("no booleans among the limits")
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, tuple):
        return "{" + ", ".join(map(lua_literal, value)) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {lua_literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no Lua literal for {value!r}")


def limits_prelude(source: str) -> str:
    """`local NAME = value` for every constant of relayq.limits that `source` names."""
    constants = limits.lua_constants()
    used = sorted(set(NAME.findall(source)) & set(constants))
    return "".join(f"local {name} = {lua_literal(constants[name])}\n" for name in used)


@dataclass(frozen=True)
class Script:
    name: str
    source: str
    sha: str


class ScriptCall(NamedTuple):
    """One script invocation, ready to run alone or in a pipeline."""

    script: Script
    keys: tuple[str, ...]
    args: tuple[Any, ...]


def load_scripts(directory: Path | None = None) -> dict[str, Script]:
    """Every top-level .lua file of `directory`, includes resolved and the limits it names
    prepended, by name."""
    directory = directory or lua_dir()

    def read(path: str) -> str:
        return (directory / path).read_text()

    scripts = {}
    for path in sorted(directory.glob("*.lua")):
        source = resolve_includes(path.read_text(), read)
        source = limits_prelude(source) + source
        sha = hashlib.sha1(source.encode()).hexdigest()
        scripts[path.stem] = Script(path.stem, source, sha)
    return scripts


SCRIPTS = load_scripts()

def script(name: str) -> Script:
    return SCRIPTS[name]


def evalsha(call: ScriptCall) -> tuple[Any, ...]:
    """The command that runs `call`."""
    return ("EVALSHA", call.script.sha, len(call.keys), *call.keys, *call.args)


def load_all(client: redis.Redis) -> None:
    """SCRIPT LOAD every script (done by the server's readiness check; runs work without it)."""
    with redis_errors():
        for s in SCRIPTS.values():
            client.script_load(s.source)


def run(client: RedisClient, call: ScriptCall) -> Any:
    """Runs one script by SHA, loading it first if Redis does not have it. A cluster client
    sends it itself (it follows MOVED; run_pipelined repeats instead), any other client on
    this thread's kept connection."""
    command = evalsha(call)
    if is_cluster(client):
        def send() -> Any:
            return client.execute_command(*command)
    else:
        follow_primary(client)

        def send() -> Any:
            return wire.call(client, *command)
    with redis_errors():
        try:
            return send()
        except NoScriptError:
            client.script_load(call.script.source)
            return send()


MAX_ROUNDS = 4  # round trips for one pipeline: the first, then repeats after NOSCRIPT/MOVED


def run_pipelined(client: RedisClient, calls: Iterable[ScriptCall], wait: Wait | None = None
                  ) -> list[Any]:
    """Runs several scripts in one round trip per Redis node (not a transaction: each script is
    atomic on its own); replies in the order of `calls`. Calls of one queue share a node; calls
    of several queues (stats of every queue) are grouped by the node holding each queue on
    Redis Cluster. Calls that did not run (NOSCRIPT, MOVED) are repeated, in order, once the
    script is loaded or the slot map re-read. With `wait`, NotReplicated when a round trip's
    WAIT saw fewer replicas than asked; its `result` holds the replies."""
    calls = list(calls)
    groups = by_node(client, calls, is_cluster(client))
    if len(groups) == 1:
        return _run_on_node(client, calls, wait)
    replies: list[Any] = [None] * len(calls)
    for indexes in groups:
        for i, reply in zip(indexes, _run_on_node(client, [calls[i] for i in indexes], wait)):
            replies[i] = reply
    return replies


def by_node(client: Any, calls: list[ScriptCall], cluster: bool) -> list[list[int]]:
    """Indexes of `calls`, grouped by the node that serves their first key (one group unless
    the client is a cluster client, `cluster`, and the calls span nodes). `client` is sync or
    asyncio (relayq.aio): both cluster clients answer `get_node_from_key` from their slot map."""
    if not calls or not cluster:
        return [list(range(len(calls)))]
    groups: dict[str, list[int]] = {}
    with redis_errors():
        for i, call in enumerate(calls):
            groups.setdefault(client.get_node_from_key(call.keys[0]).name, []).append(i)
    return list(groups.values())


class Round(NamedTuple):
    """One round trip of a pipeline (`rounds`): send `calls` (then WAIT when `wait`), after
    re-reading the slot map (`refresh`) and loading `load` on the node when asked."""

    calls: list[ScriptCall]
    wait: Wait | None
    refresh: bool
    load: frozenset[Script]


def rounds(calls: list[ScriptCall], wait: Wait | None, loaded: set[str] | None = None
           ) -> Generator[Round, list[Any], list[Any]]:
    """The rule of a pipeline on one node, without its I/O (the sync registry below and
    relayq.aio run it): yields each round trip to make and is sent its replies (each error reply
    in its call's place, then WAIT's); returns the replies of `calls`. Calls answered NOSCRIPT
    or MOVED did not run and are repeated, in order, after the script is loaded or the slot
    map re-read. Raises the first error reply (the I/O wraps it: RedisUnavailable, RedisBusy),
    RedisUnavailable when the slot keeps moving, and NotReplicated when a WAIT saw fewer
    replicas than asked (its `result` holds the replies).

    A repeat runs after the calls behind it, which already ran: out of order. So `loaded`, the
    SHAs the I/O knows its node holds (kept per node across pipelines), makes the first round
    of a pipeline of several calls load the scripts it does not know first; a NOSCRIPT (the
    node restarted, failed over or was flushed) empties it. Only the first pipeline after such
    an event can still run out of order."""
    replies: list[Any] = [None] * len(calls)
    todo = list(range(len(calls)))
    acked: int | None = None
    refresh, load = False, frozenset[Script]()
    if loaded is not None and len(calls) > 1:
        load = frozenset(c.script for c in calls if c.script.sha not in loaded)
    for _ in range(MAX_ROUNDS):
        got = yield Round([calls[i] for i in todo], wait, refresh, load)
        repeat = []
        for i, reply in zip(todo, got):
            replies[i] = reply
            if isinstance(reply, (NoScriptError, MovedError)):
                repeat.append(i)
        if loaded is not None:
            if any(isinstance(replies[i], NoScriptError) for i in repeat):
                loaded.clear()
            loaded.update(calls[i].script.sha for i in todo if i not in repeat)
            loaded.update(s.sha for s in load)
        refresh = any(isinstance(replies[i], MovedError) for i in repeat)
        if wait is not None and not refresh:  # a redirected round wrote nothing to wait for
            waited = got[len(todo)]
            if isinstance(waited, Exception):
                if not any(isinstance(r, Exception) for r in replies):
                    raise waited
            else:
                acked = waited if acked is None else min(acked, waited)
        if not repeat:
            break
        load = frozenset(calls[i].script for i in repeat
                         if isinstance(replies[i], NoScriptError))
        todo = repeat
    else:
        raise RedisUnavailable(f"the slot of {calls[0].keys[0]} kept moving")
    for reply in replies:  # CLUSTERDOWN, READONLY, ... become RedisUnavailable in the I/O
        if isinstance(reply, Exception):
            raise reply
    if wait is not None and acked is not None and acked < wait.replicas:
        raise NotReplicated(
            f"written on the primary, but {acked} of {wait.replicas} replicas confirmed it "
            f"within {wait.timeout_ms} ms: a failover now could lose it",
            wanted=wait.replicas, acked=acked, result=replies)
    return replies


def commands_of(calls: list[ScriptCall], wait: Wait | None) -> list[tuple[Any, ...]]:
    """The commands of one round trip: EVALSHA per call, then WAIT when asked."""
    commands: list[tuple[Any, ...]] = [evalsha(call) for call in calls]
    if wait is not None:
        commands.append(("WAIT", wait.replicas, wait.timeout_ms))
    return commands


def _run_on_node(client: RedisClient, calls: list[ScriptCall], wait: Wait | None) -> list[Any]:
    """run_pipelined for calls that all live on one node: `rounds` on this thread's kept
    connection to the node."""
    if not calls:
        return []
    follow_primary(client)
    # (one call cannot run out of order: no memory of loaded scripts needed, nor its lookup)
    loaded = loaded_on(node_client(client, calls[0].keys[0])) if len(calls) > 1 else None
    plan = rounds(calls, wait, loaded)
    with redis_errors():
        round_ = next(plan)
        while True:
            if round_.refresh:
                refresh_topology(client)
            target = node_client(client, calls[0].keys[0])
            for s in round_.load:
                target.script_load(s.source)
            try:
                round_ = plan.send(_round_trip(client, target, round_.calls, round_.wait))
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]


# The SHAs each node client has seen its node hold (see `rounds`), kept while the client lives.
_LOADED: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


def loaded_on(target: Any) -> set[str]:
    """The SHAs `target` (a client of one node, sync or asyncio) has seen its node hold."""
    try:
        return _LOADED.setdefault(target, set())
    except TypeError:  # a client that cannot be weakly referenced: no memory, as before
        return set()


# The same memory for the nodes of an asyncio cluster client (relayq.aio), whose nodes cannot
# be weakly referenced: per client, by node name.
_LOADED_BY_NAME: weakref.WeakKeyDictionary[Any, dict[str, set[str]]] = weakref.WeakKeyDictionary()


def loaded_on_node(client: Any, node: str) -> set[str]:
    """The SHAs `client` (a cluster client) has seen its node named `node` hold."""
    return _LOADED_BY_NAME.setdefault(client, {}).setdefault(node, set())


def _round_trip(client: RedisClient, target: redis.Redis, calls: list[ScriptCall],
                wait: Wait | None) -> list[Any]:
    """One pipeline on one connection: the calls, then WAIT when asked. A broken connection
    makes a cluster client re-read its slot map before the error goes up."""
    try:
        return wire.call_many(target, commands_of(calls, wait))
    except (redis.ConnectionError, redis.TimeoutError):
        refresh_topology(client)
        raise
