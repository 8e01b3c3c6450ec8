"""The script registry: every Lua script of lua/, loaded once, run by SHA.

Rules that hold for every script (see lua/README.md):
- each script is one atomic state transition; Redis runs it without interleaving, so no lock is
  ever taken in Python;
- each answers a status string first (mapped to exceptions in relayq/errors.py);
- each validates before it writes, because Redis does not roll a script back.

Sources are read and their `--@include lib/<name>.lua` lines resolved when this module is
imported, so a missing or broken file fails at start, not at first use. Scripts run with EVALSHA;
after a Redis restart or SCRIPT FLUSH the first call answers NOSCRIPT, and the script is loaded
and the call repeated (a NOSCRIPT call did not run, so repeating it is safe).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

import redis
from redis.exceptions import NoScriptError

from .connection import redis_errors

INCLUDE = re.compile(r"^--@include\s+(\S+)\s*$", re.MULTILINE)


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
    """Every top-level .lua file of `directory`, includes resolved, by name."""
    directory = directory or lua_dir()

    def read(path: str) -> str:
        return (directory / path).read_text()

    scripts = {}
    for path in sorted(directory.glob("*.lua")):
        source = resolve_includes(path.read_text(), read)
        sha = hashlib.sha1(source.encode()).hexdigest()
        scripts[path.stem] = Script(path.stem, source, sha)
    return scripts


SCRIPTS = load_scripts()

def script(name: str) -> Script:
    return SCRIPTS[name]


def load_all(client: redis.Redis) -> None:
    """SCRIPT LOAD every script (done by the server's readiness check; runs work without it)."""
    with redis_errors():
        for s in SCRIPTS.values():
            client.script_load(s.source)


def run(client: redis.Redis, call: ScriptCall) -> Any:
    """Runs one script by SHA, loading it first if Redis does not have it."""
    with redis_errors():
        try:
            return client.evalsha(call.script.sha, len(call.keys), *call.keys, *call.args)
        except NoScriptError:
            client.script_load(call.script.source)
            return client.evalsha(call.script.sha, len(call.keys), *call.keys, *call.args)


def run_pipelined(client: redis.Redis, calls: Iterable[ScriptCall]) -> list[Any]:
    """Runs several scripts in one round trip (not a transaction: each script is atomic on its
    own). Calls that answered NOSCRIPT did not run; they are repeated, in order, once loaded."""
    calls = list(calls)
    with redis_errors():
        replies = _pipeline(client, calls)
        missing = [i for i, r in enumerate(replies) if isinstance(r, NoScriptError)]
        if missing:
            for s in {calls[i].script for i in missing}:
                client.script_load(s.source)
            for i, reply in zip(missing, _pipeline(client, [calls[i] for i in missing])):
                replies[i] = reply
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


def _pipeline(client: redis.Redis, calls: list[ScriptCall]) -> list[Any]:
    pipe = client.pipeline(transaction=False)
    for call in calls:
        pipe.evalsha(call.script.sha, len(call.keys), *call.keys, *call.args)
    return pipe.execute(raise_on_error=False)
