"""What the event log (lua/lib/events.lua) costs the hot path, measured inside Redis.

`relayq bench` measures the whole system and is noisy on a shared machine; this measures the
scripts alone: the microseconds Redis spends per call (INFO commandstats, `evalsha`) of enqueue
(one job a call), claim (one a call) and ack (one a call), for a queue with the log on (the
default) and with it off (`event_log_max=0`), on one private redis-server, alternating rounds.
Run it against another checkout for a before/after of the scripts themselves:

    PYTHONPATH=. python scripts/event_log_cost.py [--jobs 5000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics

import redis

import relayq
from relayq.tools.redis_process import RedisProcess


def usec_per_call(r: redis.Redis) -> float:
    stats = r.info("commandstats").get("cmdstat_evalsha", {})
    return float(stats.get("usec_per_call", 0.0))


def one_round(r: redis.Redis, name: str, jobs: int, log_max: int | None) -> dict[str, float]:
    q: relayq.Queue = relayq.Queue(name, r)
    if log_max is not None:
        q.configure(event_log_max=log_max)
    out = {}
    r.config_resetstat()
    for n in range(jobs):
        q.enqueue({"n": n})
    out["enqueue"] = usec_per_call(r)
    claimed = []
    r.config_resetstat()
    for _ in range(jobs):
        claimed.extend(q.claim(1))
    out["claim"] = usec_per_call(r)
    r.config_resetstat()
    for job in claimed:
        q.ack(job.id, job.lease or "")
    out["ack"] = usec_per_call(r)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--default-only", action="store_true",
                        help="only the queue's default settings (for a checkout without the log)")
    args = parser.parse_args()
    server = RedisProcess().start()
    try:
        r = redis.Redis.from_url(server.url, decode_responses=True)
        rows: dict[str, list[dict[str, float]]] = {"log on": []}
        if not args.default_only:
            rows["log off"] = []
        for i in range(args.rounds):
            if not args.default_only:
                rows["log off"].append(one_round(r, f"off{i}", args.jobs, 0))
            rows["log on"].append(one_round(r, f"on{i}", args.jobs, None))
        for label, runs in rows.items():
            medians = {op: statistics.median(run[op] for run in runs) for op in runs[0]}
            print(f"{label:8} " + "  ".join(f"{op} {us:.2f} us" for op, us in medians.items()))
        log = "relayq:{on0}:log"
        if r.exists(log):
            print(f"log memory: {r.memory_usage(log)} bytes, {r.xlen(log)} entries")
    finally:
        server.kill()


if __name__ == "__main__":
    main()
