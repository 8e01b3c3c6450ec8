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
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

import redis

import relayq
from relayq import scripts
from relayq.tools.redis_process import RedisProcess

RETURN = "do return {'ok'} end\n"

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
    main = source.index("local bad_keys = keys_problem")
    writes = source.index("-- writes below")
    return {"empty": RETURN, "prelude": source[:main] + RETURN,
            "checks": source[:writes] + RETURN, "full": source,
            "flat_writes": FLAT_WRITES + EVENTS + REPLY, "flat_no_events": FLAT_WRITES + REPLY}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
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
