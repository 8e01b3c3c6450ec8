"""What bounds a single enqueue's Redis time (issue 12: "enqueue's Redis CPU per call down by
half"), measured inside Redis: microseconds per EVALSHA (INFO commandstats) of the same call,
one job, with the same keys and arguments as `Queue.enqueue` sends, for

- `empty`: a script that only returns (EVALSHA's own cost for these 6 keys and 19 arguments);
- `prelude`: enqueue.lua cut right after its prelude (the limits and the lib functions it
  includes, made on every call of an EVAL script);
- `checks`: enqueue.lua cut before its writes (key, argument and payload checks, TIME, the
  settings HMGET);
- `full`: enqueue.lua as shipped;
- `flat_writes`: no checks, no functions: the Redis commands a ready job needs in this data
  model (TIME, the settings HMGET, INCRBY, the id bookkeeping HSET, the job HSET, RPUSH,
  HINCRBY, the wake LLEN), and the event log (PUBLISH, XADD): the floor a rewrite could reach;
- `flat_no_events`: the same without the event log the contract requires.

On one private redis-server, rounds alternating between the variants; prints each round and
the medians:

    python scripts/enqueue_floor.py [--calls 3000] [--rounds 5]

Timings on these shared machines move by 2x between rounds. `--callgrind` counts instructions
instead (deterministic): each variant, and enqueue.lua cut after each of its steps, on a
redis-server of its own under `valgrind --tool=callgrind --toggle-collect=evalGenericCommand`;
prints thousands of instructions per call (needs valgrind; ~2 minutes):

    python scripts/enqueue_floor.py --callgrind [--calls 1000]
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

import redis

import relayq
from relayq import scripts
from relayq.tools.redis_process import RedisProcess

RETURN = "do return {'ok'} end\n"
# where enqueue.lua's own code starts (after the limits and the libs), and its writes
MAIN = "local bad_keys = keys_problem"
WRITES = "-- writes below"

FLAT_WRITES = """
local t = redis.call('TIME')
redis.call('HMGET', KEYS[1], 'max_attempts', 'idempotency_ttl_ms', 'max_payload_bytes',
  'paused', 'id_ms', 'id_seq')
local seq = redis.call('INCRBY', KEYS[5], 1)
redis.call('HSET', KEYS[1], 'id_ms', t[1], 'id_seq', seq)
local id = t[1] .. seq
redis.call('HSET', ARGV[1] .. 'job:' .. id, 'p', ARGV[4], 's', 'ready', 'c', t[1], 'ma', 5)
if redis.call('RPUSH', ARGV[1] .. 'ready:0', id) == 1 then redis.call('ZADD', KEYS[2], 0, 0) end
redis.call('HINCRBY', KEYS[4], 'enqueued', 1)
if redis.call('LLEN', KEYS[6]) == 0 then redis.call('RPUSH', KEYS[6], '1') end
"""
EVENTS = """
redis.call('PUBLISH', ARGV[1] .. 'events', '{"ids":["' .. id .. '"]}')
redis.call('HGET', KEYS[1], 'event_log_max')
redis.call('XADD', ARGV[1] .. 'log', 'MAXLEN', '~', 10000, '*', 's', 'ready', 'ids', id)
"""
REPLY = "return {'ok', id, 'ready', 0}"


def enqueue_command(url: str, queue: str) -> tuple[Any, ...]:
    """The EVALSHA command Queue.enqueue sends for one small job (captured, then run too)."""
    sent: list[tuple[Any, ...]] = []
    send = scripts.wire.call

    def capture(client: Any, *command: Any) -> Any:
        sent.append(command)
        return send(client, *command)

    scripts.wire.call = capture
    try:
        relayq.Queue(queue, url).enqueue({"n": 1})
    finally:
        scripts.wire.call = send
    return sent[-1]


def variants() -> dict[str, str]:
    source = scripts.script("enqueue").source
    main = source.index(MAIN)
    writes = source.index(WRITES)
    return {"empty": RETURN, "prelude": source[:main] + RETURN,
            "checks": source[:writes] + RETURN, "full": source,
            "flat_writes": FLAT_WRITES + EVENTS + REPLY, "flat_no_events": FLAT_WRITES + REPLY}


# enqueue.lua cut after each step: (what the step adds, the text it is cut before); the cuts
# inside create_jobs return the reply so far
STEPS = [
    ("the generated limits", "-- enqueue.lua: create one"),
    ("every lib's functions (the prelude)", MAIN),
    ("keys_problem", "local k = {meta"),
    ("the job count and #ARGV check", "local now = now_ms()"),
    ("TIME", "local settings = job_settings"),
    ("the settings HMGET", "-- Check every job"),
    ("the job's field checks", WRITES),
    ("INCRBY of the sequence, the id_ms HSET, the id closure", "  local function next_id()"),
    ("the id, the job's fields and HSET", "  -- One push per priority"),
    ("the ready RPUSH", "  if created > 0 then redis.call('HINCRBY'"),
    ("HINCRBY of totals, the wake LLEN", "  emit(prefix, queue, 'ready', ready_ids)"),
]


def steps() -> dict[str, str]:
    """enqueue.lua cut after each step, in order, then whole."""
    source = scripts.script("enqueue").source
    create_jobs = range(source.index("local function create_jobs"), source.index(MAIN))
    cuts = {"an empty script": RETURN}
    for name, before in STEPS:
        at = source.index(before)
        cuts[name] = (source[:at] + "  do return reply end\n" + source[at:] if at in create_jobs
                      else source[:at] + RETURN)
    cuts["the event: PUBLISH, the log cap HGET, XADD (whole)"] = source
    return cuts


class UnderCallgrind(RedisProcess):
    """A private redis-server run by callgrind, which counts instructions only inside EVAL's C
    function (and all it calls); valgrind's log, with the count, goes to `log`."""

    def __init__(self, log: Path) -> None:
        super().__init__()
        self.log = log

    def command(self) -> list[str]:
        return ["valgrind", "--tool=callgrind", "--toggle-collect=evalGenericCommand",
                f"--callgrind-out-file={self.dir / 'callgrind.out'}", f"--log-file={self.log}",
                *super().command()]


def callgrind_instructions(text: str, command: tuple[Any, ...], calls: int) -> float:
    """Instructions per call of `text` (run as `command` runs enqueue.lua) on a redis-server of
    its own under callgrind."""
    with tempfile.TemporaryDirectory(prefix="relayq-callgrind-") as tmp:
        log = Path(tmp) / "valgrind.log"
        server = UnderCallgrind(log).start(timeout=60)  # valgrind starts it slowly
        try:
            r = redis.Redis.from_url(server.url)
            numkeys = int(command[2])
            keys, argv = command[3:3 + numkeys], command[3 + numkeys:]
            sha = r.script_load(text)
            for _ in range(calls):
                r.evalsha(sha, numkeys, *keys, *argv)
            r.close()
        finally:
            server.stop()  # Redis stops on SIGTERM; valgrind then writes its count
        found = re.search(r"Collected : (\d+)", log.read_text())
    if found is None:
        raise RuntimeError("no instruction count in valgrind's log")
    return int(found.group(1)) / calls


def run_callgrind(calls: int) -> None:
    if shutil.which("valgrind") is None:
        raise SystemExit("--callgrind needs valgrind (apt-get install valgrind)")
    server = RedisProcess().start()
    try:
        command = enqueue_command(server.url, "floor")
    finally:
        server.stop()
    cuts = {**steps(), **{name: text for name, text in variants().items()
                          if name.startswith("flat")}}
    previous = 0.0
    print(f"{'enqueue.lua cut after':58s} {'k instr/call':>12s} {'step':>8s}")
    for name, text in cuts.items():
        count = callgrind_instructions(text, command, calls) / 1000
        step = count - previous if not name.startswith("flat") else float("nan")
        print(f"{name:58s} {count:12.1f} {step:8.1f}", flush=True)
        previous = count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--callgrind", action="store_true",
                        help="count instructions per call with callgrind instead of timing")
    args = parser.parse_args()
    if args.callgrind:
        run_callgrind(min(args.calls, 1000))
        return
    server = RedisProcess().start()
    try:
        r = redis.Redis.from_url(server.url)
        command = enqueue_command(server.url, "floor")
        numkeys = int(command[2])
        keys, argv = command[3:3 + numkeys], command[3 + numkeys:]
        shas = {name: r.script_load(text) for name, text in variants().items()}
        results: dict[str, list[float]] = {name: [] for name in shas}
        for round_no in range(args.rounds):
            for name, sha in shas.items():
                r.config_resetstat()
                for _ in range(args.calls):
                    r.evalsha(sha, numkeys, *keys, *argv)
                stats = r.info("commandstats")["cmdstat_evalsha"]
                results[name].append(stats["usec"] / stats["calls"])
            print(f"round {round_no + 1}: " + ", ".join(
                f"{name} {v[-1]:.1f}" for name, v in results.items()), flush=True)
        print("median us per call: " + ", ".join(
            f"{name} {statistics.median(v):.1f}" for name, v in results.items()))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
