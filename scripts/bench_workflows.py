"""Workflows at scale (issue 14 #7), opt-in: a 10,000-job fan-out/fan-in drained by several
worker processes, next to 10,000 independent jobs, on a private redis-server, in alternation:

    python scripts/bench_workflows.py --jobs 10000 --workers 3 --concurrency 8 --rounds 2 [--kill]

The graph: a root, then `--jobs` parts spread over two queues (each depending on the root,
each part a job in the other queue than the root half of the time: the facts cross queues
through the outbox), then one sub-total per MAX_PARENTS parts (a job has at most that many
parents), then the total over the sub-totals, in the root's queue. The independent run is the
same parts with no dependencies. A run's time is from the first job that finished to the last
(Redis clock: the queues' succeeded indexes), so worker start-up counts for neither;
throughput = jobs / that time. `--kill` SIGKILLs one worker after a fifth of the jobs and
starts another (its jobs are reaped after the 3 s lease and run again). `--one-queue` puts
everything in one queue: no fact crosses queues. Checks the total's result. Prints one JSON
line per run and the medians.

    python scripts/bench_workflows.py --chain 50 --workers 1 --rounds 3

`--chain N` measures instead the latency of a hop: a chain of N jobs, each depending on the one
before, alternating between the two queues (every hop crosses queues, unless --one-queue);
hop_ms = (last finish - first finish) / (N - 1).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import relayq  # noqa: E402
from relayq import JobOptions, NewJob, Queue  # noqa: E402
from relayq.limits import BATCH_LIMIT, MAX_PARENTS  # noqa: E402
from relayq.tools.redis_process import RedisProcess  # noqa: E402
from tests.support.workers import WorkerProcesses  # noqa: E402

APP = "tests.support.apps.fanout:app"


def finished_span(client: object, queues: list[Queue]) -> tuple[float, int]:
    """(last finish - first finish in s, jobs finished) over the queues' succeeded indexes."""
    first, last, count = None, None, 0
    for q in queues:
        head = client.zrange(q.keys.succeeded, 0, 0, withscores=True)  # type: ignore[attr-defined]
        tail = client.zrange(q.keys.succeeded, -1, -1, withscores=True)  # type: ignore[attr-defined]
        count += client.zcard(q.keys.succeeded)  # type: ignore[attr-defined]
        if head:
            first = head[0][1] if first is None else min(first, head[0][1])
            last = tail[0][1] if last is None else max(last, tail[0][1])
    return ((last or 0) - (first or 0)) / 1000, count


def make_independent(queues: list[Queue], jobs: int) -> int:
    for i, q in enumerate(queues):  # (one queue twice with --one-queue: half each time)
        mine = [NewJob({"n": n}) for n in range(i, jobs, len(queues))]
        for start in range(0, len(mine), BATCH_LIMIT):
            q.enqueue_many(mine[start:start + BATCH_LIMIT])
    return jobs


def make_graph(queues: list[Queue], jobs: int) -> tuple[int, str]:
    """The fan-out/fan-in; (jobs made, the total's id)."""
    home, away = queues
    root = home.enqueue({"n": 0}).id
    part_ids: list[str] = []
    for i, q in enumerate(queues):
        mine = [NewJob({"n": n}, JobOptions(depends_on=[root]))
                for n in range(1 + i, jobs + 1, len(queues))]
        for start in range(0, len(mine), BATCH_LIMIT):
            part_ids += [r.id for r in q.enqueue_many(mine[start:start + BATCH_LIMIT])]
    subtotals = [home.enqueue({}, type="total", depends_on=part_ids[s:s + MAX_PARENTS]).id
                 for s in range(0, len(part_ids), MAX_PARENTS)]
    total = away.enqueue({}, type="total", depends_on=subtotals).id
    return 1 + len(part_ids) + len(subtotals) + 1, total


def make_chain(queues: list[Queue], length: int) -> int:
    parent = None
    for n in range(length):
        options = {"depends_on": [parent]} if parent else {}
        parent = queues[n % 2].enqueue({"n": n}, **options).id
    return length


def run(url: str, mode: str, args: argparse.Namespace, round_no: int) -> dict:
    client = relayq.connect(url)
    queues = [Queue(f"{mode}{round_no}-{side}", client) for side in ("a", "b")]
    if args.one_queue:  # every fact settled inside the ack that ends the parent
        queues = [queues[0], queues[0]]
    total_id = None
    if mode == "chain":
        made = make_chain(queues, args.chain)
    elif mode == "graph":
        made, total_id = make_graph(queues, args.jobs)
    else:
        made = make_independent(queues, args.jobs)
    with tempfile.TemporaryDirectory() as tmp:
        workers = WorkerProcesses(args.workers, url, list(dict.fromkeys(q.name for q in queues)),
                                  Path(tmp),
                                  concurrency=args.concurrency, app=APP)
        killed = False
        try:
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                done = sum(q.stats().succeeded for q in dict.fromkeys(queues))
                if args.kill and not killed and done >= made // 5:
                    workers.kill(0)
                    workers.add()
                    killed = True
                if done >= made:
                    break
                time.sleep(0.05)
            else:
                raise SystemExit(f"{mode}: not drained in 600 s\n{workers.logs()}")
        finally:
            workers.stop()
    seconds, count = finished_span(client, list(dict.fromkeys(queues)))
    report = {"mode": mode, "round": round_no, "jobs": count, "seconds": round(seconds, 3),
              "jobs_per_s": round(count / seconds, 1) if seconds else None, "killed": killed}
    if mode == "chain":
        report["hop_ms"] = round(seconds * 1000 / (count - 1), 2)
    if total_id is not None:  # every part counted once in the fan-in of fan-ins
        result = queues[1].get(total_id).result
        assert result == {"parts": args.jobs, "sum": sum(range(1, args.jobs + 1))}, result
    client.close()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--kill", action="store_true")
    parser.add_argument("--one-queue", action="store_true",
                        help="the whole graph in one queue (no fact crosses queues)")
    parser.add_argument("--chain", type=int, default=0,
                        help="measure a hop's latency on a chain of this many jobs instead")
    args = parser.parse_args()
    server = RedisProcess().start()
    try:
        if args.chain:
            hops = [run(server.url, "chain", args, round_no) for round_no in range(args.rounds)]
            for report in hops:
                print(json.dumps(report), flush=True)
            print(json.dumps({"median_hop_ms": statistics.median(r["hop_ms"] for r in hops)}))
            return
        reports: dict[str, list[float]] = {"independent": [], "graph": []}
        for round_no in range(args.rounds):
            for mode in ("independent", "graph"):
                report = run(server.url, mode, args, round_no)
                print(json.dumps(report), flush=True)
                reports[mode].append(report["jobs_per_s"])
        medians = {mode: statistics.median(v) for mode, v in reports.items()}
        print(json.dumps({"median_jobs_per_s": medians,
                          "graph_vs_independent": round(medians["graph"]
                                                        / medians["independent"], 3)}))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
