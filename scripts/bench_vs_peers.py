"""Side by side: `relayq bench` and the peer harness (../shared/bench/peers/run.py) on one private
redis-server, in alternation, for several rounds; prints the medians and relayq's ratio to each
peer. The peers need their own venv (see ../shared/bench/peers/README.md):

    PEERS_PYTHON=/path/to/peers-venv/bin/python python scripts/bench_vs_peers.py \
        --systems huey,dramatiq,bullmq --rounds 3 --jobs 20000 --workers 2 --concurrency 16

The peers FLUSHALL the server they are given, so this script always starts its own.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from relayq.tools.redis_process import RedisProcess

ROOT = Path(__file__).resolve().parent.parent
PEERS_BENCH = ROOT.parent / "shared" / "bench"
KEYS = ["enqueue_per_s", "bulk_enqueue_per_s", "drain_per_s", "drain_steady_per_s",
        "lat_p50_ms", "lat_p95_ms", "lat_p99_ms", "bytes_per_job"]
LOWER_IS_BETTER = {"lat_p50_ms", "lat_p95_ms", "lat_p99_ms", "bytes_per_job"}


def run_relayq(url: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, "-m", "relayq.cli.main", "bench", "--json", "--redis", url,
           "--jobs", str(args.jobs), "--workers", str(args.workers),
           "--concurrency", str(args.concurrency)]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_peer(system: str, url: str, args: argparse.Namespace, logs: str) -> dict:
    python = os.environ.get("PEERS_PYTHON")
    if not python:
        raise SystemExit("set PEERS_PYTHON to the python of a venv with the peers installed")
    cmd = [python, "peers/run.py", "--system", system, "--jobs", str(args.jobs),
           "--workers", str(args.workers), "--redis", url, "--log-dir", logs]
    out = subprocess.run(cmd, cwd=PEERS_BENCH, capture_output=True, text=True, timeout=1200)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--systems", default="huey,dramatiq,bullmq")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--jobs", type=int, default=20000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--concurrency", type=int, default=16, help="relayq threads per worker")
    p.add_argument("--json-out", help="write every run's figures here")
    args = p.parse_args()
    systems = ["relayq", *[s for s in args.systems.split(",") if s]]
    runs: dict[str, list[dict]] = {s: [] for s in systems}
    logs = tempfile.mkdtemp(prefix="peer-logs-")
    with RedisProcess() as server:
        for rnd in range(1, args.rounds + 1):
            for system in systems:
                print(f"round {rnd}: {system}", file=sys.stderr, flush=True)
                result = (run_relayq(server.url, args) if system == "relayq"
                          else run_peer(system, server.url, args, logs))
                runs[system].append(result)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(runs, indent=1))
    medians = {s: {k: statistics.median(r[k] for r in rs if r.get(k) is not None)
                   for k in KEYS if any(r.get(k) is not None for r in rs)}
               for s, rs in runs.items()}
    print("| system | " + " | ".join(KEYS) + " |")
    print("|---|" + "---:|" * len(KEYS))
    for s in systems:
        print(f"| {s} | " + " | ".join(f"{medians[s].get(k, float('nan')):,.2f}" for k in KEYS)
              + " |")
    for peer in systems[1:]:
        ratios = []
        for k in KEYS:
            a, b = medians["relayq"].get(k), medians[peer].get(k)
            if a and b:
                ratios.append(f"{k} {(b / a if k in LOWER_IS_BETTER else a / b):.2f}x")
        print(f"relayq vs {peer}: " + ", ".join(ratios) + "  (>1 = relayq better)")


if __name__ == "__main__":
    main()
