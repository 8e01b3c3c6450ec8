"""The script registry and the rules of lua/README.md, checked on every script."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import redis

import relayq
import relayq.results
from relayq import limits, scripts
from relayq.tools.redis_process import RedisProcess

LUA = scripts.lua_dir()
LUA_FILES = sorted([*LUA.glob("*.lua"), *LUA.glob("lib/*.lua")])
LUA_STRING_OR_COMMENT = re.compile(r"--[^\n]*|'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
LUA_NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)")
MS_PER_SECOND = re.compile(r"[*/]\s*1000\b")
LUA_OWN_NAMES = {"KEYS", "ARGV", "FIELDS", "STATES", "FINISHED"}
WRITES = re.compile(r"redis\.call\('(HSET|HDEL|HINCRBY|RPUSH|LPUSH|LPOP|LREM|ZADD|ZREM|"
                    r"ZREMRANGEBYSCORE|SET|DEL|INCR|INCRBY|PEXPIRE|PERSIST|PUBLISH)'")


def test_include_resolves_recursively_and_once() -> None:
    files = {
        "lib/a.lua": "A\n--@include lib/b.lua\n",
        "lib/b.lua": "B\n",
    }
    source = "--@include lib/a.lua\n--@include lib/b.lua\nMAIN\n"
    resolved = scripts.resolve_includes(source, files.__getitem__)
    assert resolved.splitlines() == ["A", "B", "", "-- (already included: lib/b.lua)", "MAIN"]


def test_include_of_a_missing_file_fails_loudly(tmp_path: Path) -> None:
    (tmp_path / "broken.lua").write_text("--@include lib/nope.lua\nreturn 1\n")
    with pytest.raises(FileNotFoundError):
        scripts.load_scripts(tmp_path)


def test_every_transition_has_a_script() -> None:
    expected = {"enqueue", "claim", "ack", "nack", "heartbeat", "release", "reap", "promote",
                "requeue", "cancel", "purge", "stats", "pause", "rate_limit", "configure"}
    assert expected <= set(scripts.SCRIPTS)


@pytest.mark.parametrize("name", sorted(scripts.SCRIPTS))
def test_script_follows_the_folder_rules(name: str) -> None:
    raw = (LUA / f"{name}.lua").read_text()
    header = raw.split("\n\n", 1)[0] + raw.split("--@include", 1)[0]
    assert header.startswith(f"-- {name}.lua: "), "header names the script and its purpose"
    assert "-- KEYS[1]" in header, "header lists KEYS"
    assert "-- Reply:" in header, "header gives the reply shape"
    assert "redis.call('TIME')" not in raw, "time comes from lib/clock.lua only"
    body = raw.split("-- writes below", 1)
    if WRITES.search(raw) or "finish(" in raw or "push_ready(" in raw:
        assert len(body) == 2, "a script that writes marks where writing starts"
        assert not WRITES.search(body[0]), "no write before the marker"
    assert "math.random" not in raw, "randomness comes from the caller"


def test_scripts_run_after_script_flush(q: relayq.Queue, r) -> None:
    q.enqueue({"n": 1})
    r.script_flush()
    (job,) = q.claim()  # NOSCRIPT is answered by loading the script and running it again
    r.script_flush()
    statuses, claimed = q.settle([relayq.results.Outcome(job.id, job.lease or "", "ack")], 1)
    assert statuses == ["ok"] and claimed.status == "empty"


def test_scripts_run_after_a_redis_restart(queue_name: str) -> None:
    with RedisProcess(appendonly=True) as server:
        client = relayq.connect(server.url)
        q = relayq.Queue(queue_name, client)
        q.enqueue({"n": 1})
        server.restart()  # SIGKILL and start again: scripts are gone, AOF kept the job
        # The pooled connection died with the server; it is found dead when checked out,
        # before anything is sent, and replaced. NOSCRIPT then reloads the script.
        (job,) = q.claim()
        q.ack(job.id, job.lease or "")
        assert q.get(job.id).state == "succeeded"
        client.close()


def test_load_all_and_connection_errors_are_wrapped() -> None:
    client = relayq.connect("redis://127.0.0.1:1/0")  # nothing listens on port 1
    with pytest.raises(relayq.RedisUnavailable):
        scripts.load_all(client)
    with pytest.raises(relayq.RedisUnavailable):
        relayq.Queue("x", client).enqueue({})


def test_error_reply_is_kept_for_bugs(r, q: relayq.Queue) -> None:
    # a keyspace no script would leave behind (a key of the wrong type) is a bug, not input
    r.set(q.keys.running, "not a sorted set")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        q.stats()


def lua_code(path: Path) -> str:
    """The code of a Lua file without its comments and string literals."""
    return LUA_STRING_OR_COMMENT.sub(" ", path.read_text())


@pytest.mark.parametrize("path", LUA_FILES, ids=lambda p: p.relative_to(LUA).as_posix())
def test_lua_takes_every_limit_from_relayq_limits(path: Path) -> None:
    """A limit or default written into a script is a second copy of a rule that relayq.limits
    owns: no number of 100 or more (but the ms-per-second factor), and no number that is the
    value of a limit (20 and up; smaller ones are field offsets and counts)."""
    values = {v for v in limits.lua_constants().values() if isinstance(v, (int, float))}
    code = MS_PER_SECOND.sub(" ", lua_code(path))
    copies = [n for n in LUA_NUMBER.findall(code)
              if float(n) >= 100 or (float(n) >= 20 and float(n) in values)]
    assert not copies, f"numbers that belong in relayq/limits.py: {copies}"


@pytest.mark.parametrize("name", sorted(scripts.SCRIPTS))
def test_every_upper_case_name_of_a_script_is_a_limit_it_gets(name: str) -> None:
    """A misspelt limit would be a nil global in Lua (and a comparison with nil fails only when
    that line runs): every upper-case name a script uses is one of relayq.limits, declared by
    its prelude."""
    source = scripts.SCRIPTS[name].source
    body = source.lstrip("\n")
    prelude = ""
    while body.startswith("local "):
        line, _, body = body.partition("\n")
        prelude += line + "\n"
    used = set(scripts.NAME.findall(LUA_STRING_OR_COMMENT.sub(" ", body))) - LUA_OWN_NAMES
    assert used <= set(limits.lua_constants()), used - set(limits.lua_constants())
    declared = set(re.findall(r"^local (\w+) = ", prelude, re.MULTILINE))
    assert used <= declared


def test_a_limit_changed_in_python_is_the_limit_of_the_scripts(
        r, q: relayq.Queue, monkeypatch: pytest.MonkeyPatch) -> None:
    """The scripts read their limits from relayq.limits at load time: change one there and the
    script refuses by the new value (and has a new SHA, so no stale copy runs)."""
    monkeypatch.setattr(limits, "MAX_PRIORITY", 7)
    enqueue = scripts.load_scripts()["enqueue"]
    assert "local MAX_PRIORITY = 7\n" in enqueue.source
    assert enqueue.sha != scripts.SCRIPTS["enqueue"].sha
    k = q.keys
    call = scripts.ScriptCall(enqueue, (k.meta, k.prios, k.scheduled, k.totals, k.seq, k.wake),
                              (k.prefix, q.name, "1", '{"a":1}', "", "8", *[""] * 9))
    reply = scripts.run(r, call)
    assert reply == ["invalid_argument", "priority must be between 0 and 7, got 8"]


def test_lua_literals_read_back_as_the_same_values() -> None:
    assert scripts.lua_literal(limits.MIN_RATE) == "0.001"
    assert scripts.lua_literal(limits.MAX_SEQUENCE) == "9007199254740991"
    assert scripts.lua_literal({"a": (1, 2)}) == "{a = {1, 2}}"


def test_a_pipeline_of_scripts_runs_in_order_on_a_redis_that_never_saw_them(
        redis_url: str, queue_name: str) -> None:
    # A NOSCRIPT call is run again after the calls behind it, which already ran: so the first
    # pipeline of a client loads the scripts it has not seen first. Here the release is the
    # script this client never ran: the claim behind it must see the released job.
    with RedisProcess() as server:
        client = relayq.connect(server.url)
        try:
            q = relayq.Queue(queue_name, client)
            q.enqueue({"n": 1})
            (job,) = q.claim(1)
            statuses, claimed = q.settle(
                [relayq.results.Outcome(job.id, job.lease or "", "release")], 1)
            assert statuses == ["ok"]
            assert claimed is not None and [j.id for j in claimed] == [job.id]
        finally:
            client.close()
