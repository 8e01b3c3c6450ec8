"""The long exactly-once check of periodic jobs: a private Redis with AOF (appendfsync always),
three relayq-worker processes and two relayq-server processes fire one `every_ms` schedule for
`--minutes`, while a worker is SIGKILLed and started again every few seconds, a server now and
then, and Redis itself is SIGKILLed and restarted every `--redis-restart-every-s` (the AOF
brings the schedules and their jobs back). At the end it counts the schedule's jobs by tick_at
and prints the duplicates and the missed ticks: both must be 0.

    python scripts/schedule_soak.py --minutes 5 --every-ms 1000

An opt-in benchmark, never run in CI (tests/worker/test_schedule_fleet.py is its 8-second
version). A Redis restart that outlasts the misfire grace (MISFIRE_GRACE_MS) would leave a gap
by design (the schedule's misfire policy decides); the restarts here take well under a second.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import relayq
from relayq.tools.redis_process import RedisProcess
from relayq.tools.schedule_fleet import Fleet, count_ticks

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=5)
    p.add_argument("--every-ms", type=int, default=1000)
    p.add_argument("--kill-every-s", type=float, default=3, help="SIGKILL a worker this often")
    p.add_argument("--server-kill-every-s", type=float, default=30,
                   help="SIGKILL a server this often (started again at once)")
    p.add_argument("--redis-restart-every-s", type=float, default=60,
                   help="SIGKILL Redis this often and start it again on its AOF")
    args = p.parse_args()
    rng = random.Random(13)
    log_dir = Path(tempfile.mkdtemp(prefix="relayq-schedule-soak-"))
    kills = server_kills = redis_restarts = 0
    with RedisProcess(appendonly=True) as redis_server:
        client = relayq.connect(redis_server.url)
        q = relayq.Queue("soak", client)
        fleet = Fleet(redis_server.url, q.name, log_dir, cwd=ROOT).start()
        try:
            q.schedule("tick", {}, every_ms=args.every_ms)
            started = time.monotonic()
            end = started + args.minutes * 60
            next_server_kill = started + args.server_kill_every_s
            next_redis_restart = started + args.redis_restart_every_s
            while time.monotonic() < end:
                time.sleep(rng.uniform(0.5, 1.5) * args.kill_every_s)
                victim = rng.randrange(len(fleet.workers))
                fleet.kill_worker(victim)
                fleet.start_worker(victim)
                kills += 1
                now = time.monotonic()
                if now >= next_server_kill:
                    server = rng.choice(fleet.servers)
                    server.kill()
                    server.start()
                    server_kills += 1
                    next_server_kill = now + args.server_kill_every_s
                if now >= next_redis_restart:
                    redis_server.restart()
                    redis_restarts += 1
                    next_redis_restart = now + args.redis_restart_every_s
            time.sleep(3 * args.every_ms / 1000 + 2)  # the last ticks fire
        finally:
            fleet.stop()
        counted = count_ticks(client, q.name, "tick", args.every_ms)
        result = {"minutes": args.minutes, "every_ms": args.every_ms, "jobs": counted.jobs,
                  "expected": (counted.last - counted.first) // args.every_ms + 1
                  if counted.first is not None else 0,
                  "duplicates": len(counted.duplicates), "missed": len(counted.missing),
                  "worker_kills": kills, "server_kills": server_kills,
                  "redis_restarts": redis_restarts, "logs": str(log_dir)}
        print(json.dumps(result))
        client.close()
    return 0 if result["duplicates"] == 0 and result["missed"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
