"""Fair queues, measured in one run on a private redis-server (opt-in: minutes, ~1 GB of Redis).

1. Claim cost: the round trip of claim(1) (p50, p99; ack and a fresh job untimed, so the depth
   stays put) and the microseconds Redis spends per claim (INFO commandstats over claims in a
   row), for a queue without groups and with 1 and with 100,000 groups, at 1,000 and 1,000,000
   jobs (`relayq bench --depths` measures the same round trip for claim+ack).
2. Fairness: group A floods (10,000 jobs), then nine groups enqueue 100 each; one consumer
   claims one at a time. Over the first 1,000 claims (all ten groups have jobs), each group's
   share against the ideal round robin (1/10), and the claim at which the last of the nine
   small groups' jobs was taken (ideal: 1,000; FIFO without groups: 10,900).
3. The tenant scenario, with real `relayq-worker` processes: 100,000 jobs of tenant A, then
   10 of tenant B, `group_max_running=2`, 4 workers of concurrency 8 (demo handler, 10 ms a
   job): when each of B's jobs finished after the drain started, and the most running jobs of
   each tenant at any instant (the event log replayed) while the workers ran for --seconds.

    PYTHONPATH=. python scripts/fair_queues.py [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from typing import Any

import relayq
from relayq import JobOptions, NewJob
from relayq.tools.redis_process import RedisProcess

BATCH = 1000


def fill(q: relayq.Queue, jobs: int, groups: int) -> None:
    """`jobs` ready jobs spread round robin over `groups` groups (0: no group)."""
    for start in range(0, jobs, BATCH):
        batch = []
        for i in range(start, min(jobs, start + BATCH)):
            options = JobOptions(group=f"tenant-{i % groups}") if groups else JobOptions()
            batch.append(NewJob({"i": i}, options))
        q.enqueue_many(batch)


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))]


def claim_cost(r: Any, jobs: int, groups: int, samples: int) -> dict[str, Any]:
    name = f"cost-{groups}-{jobs}"
    q: relayq.Queue = relayq.Queue(name, r)
    t0 = time.perf_counter()
    fill(q, jobs, groups)
    filled_s = time.perf_counter() - t0
    rtt = []
    for _ in range(samples):
        t = time.perf_counter()
        (job,) = q.claim(1)
        rtt.append((time.perf_counter() - t) * 1000)
        q.ack(job.id, job.lease)
        q.enqueue({"again": 1}, group=job.group)  # the depth stays where it was
    r.config_resetstat()
    claimed = [q.claim(1)[0] for _ in range(min(samples, jobs // 2))]
    stats = r.info("commandstats")["cmdstat_evalsha"]
    for job in claimed:
        q.ack(job.id, job.lease)
    for key in r.scan_iter(match=f"relayq:{{{name}}}:*", count=10_000):
        r.unlink(key)
    return {
        "groups": groups,
        "jobs": jobs,
        "fill_s": round(filled_s, 1),
        "claim_p50_ms": round(percentile(rtt, 50), 3),
        "claim_p99_ms": round(percentile(rtt, 99), 3),
        "redis_us_per_claim": round(stats["usec"] / stats["calls"], 1),
    }


def fairness(r: Any) -> dict[str, Any]:
    q: relayq.Queue = relayq.Queue("fairness", r)
    for start in range(0, 10_000, BATCH):
        q.enqueue_many([NewJob(i, JobOptions(group="A")) for i in range(start, start + BATCH)])
    small = [f"S{n}" for n in range(9)]
    for group in small:
        q.enqueue_many([NewJob(i, JobOptions(group=group)) for i in range(100)])
    order = []
    while len(order) < 1000 or any(g in small for g in order[-10:]):
        got = q.claim(1)
        if not got:
            break
        order.append(got[0].group)
        q.ack(got[0].id, got[0].lease)
    window = Counter(order[:1000])
    shares = {g: window[g] / 1000 for g in ["A", *small]}
    last_small = max(i for i, g in enumerate(order) if g in small) + 1
    return {
        "shares_first_1000": shares,
        "max_share_error": round(max(abs(s - 0.1) for s in shares.values()), 4),
        "last_small_group_job_at_claim": last_small,
        "ideal": 1000,
        "fifo_without_groups": 10_900,
    }


def start_worker(url: str, queue: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "relayq.worker.cli",
            "--queue",
            queue,
            "--redis",
            url,
            "--concurrency",
            "8",
            "--log-level",
            "warning",
            "--grace",
            "5",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )


def tenants(r: Any, url: str, seconds: float) -> dict[str, Any]:
    q: relayq.Queue = relayq.Queue("tenants", r)
    q.configure(group_max_running=2, event_log_max=5_000_000)
    group_of: dict[str, str | None] = {}
    for _ in range(0, 100_000, BATCH):
        jobs = [NewJob({"sleep_ms": 10}, JobOptions(group="A")) for _ in range(BATCH)]
        group_of.update((res.id, "A") for res in q.enqueue_many(jobs))
    b_ids = [q.enqueue({"sleep_ms": 10}, group="B").id for _ in range(10)]
    group_of.update((i, "B") for i in b_ids)
    started = time.time() * 1000
    workers = [start_worker(url, q.name) for _ in range(4)]
    try:
        time.sleep(seconds)
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                w.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(w.pid, signal.SIGKILL)
    b_done = sorted(
        round((q.get(i).finished_at - started) / 1000, 2) for i in b_ids if q.get(i).finished_at
    )
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    from tests.support.fairness import peak_running

    peak, total = peak_running(q, group_of)
    done_a = q.stats().succeeded - len(b_done)
    return {
        "b_finished_s_after_start": b_done,
        "a_done_in_window": done_a,
        "window_s": seconds,
        "peak_running": dict(peak),
        "peak_running_queue": total,
        "limit": 2,
        "workers": "4 x concurrency 8",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 jobs at most, 5 s")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    big = 100_000 if args.quick else 1_000_000
    process = RedisProcess().start()
    try:
        r = relayq.connect(process.url)
        result: dict[str, Any] = {"claim_cost": []}
        for groups, jobs in ((0, 1000), (0, big), (1, 1000), (1, big), (100_000, big)):
            result["claim_cost"].append(claim_cost(r, jobs, groups, args.samples))
            if not args.json:
                print(result["claim_cost"][-1], flush=True)
        result["fairness"] = fairness(r)
        if not args.json:
            print(result["fairness"], flush=True)
        result["tenants"] = tenants(r, process.url, 5.0 if args.quick else args.seconds)
        print(json.dumps(result) if args.json else result["tenants"])
    finally:
        process.stop()


if __name__ == "__main__":
    main()
