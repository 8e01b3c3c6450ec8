"""Measures export and restore throughput and peak memory (a one-off run, not a test).

    python scripts/measure_export.py --jobs 100000 [--s3]

Starts its own redis-server (and, with --s3, moto's S3 server on loopback), fills one queue with
`--jobs` ready jobs (small JSON payloads, a tenth with idempotency keys), then runs each step in
a fresh child process and reports its wall time, jobs/s and peak RSS (`ru_maxrss` of the child,
which includes the interpreter and imports: the baseline of an idle child is reported too).
While the export runs, a probe PINGs Redis every millisecond and reports the worst round trip
(which includes this busy machine's scheduling), and Redis's SLOWLOG (threshold 1 ms) reports
every command that itself ran for over a millisecond: how long export ever blocked Redis."""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import tempfile
import threading
import time
from typing import Any

import redis

import relayq
from relayq.tools.redis_process import RedisProcess, free_port

QUEUE = "bench"


def fill(url: str, jobs: int) -> float:
    q = relayq.Queue(QUEUE, url)
    started = time.monotonic()
    batch = 1000
    for start in range(0, jobs, batch):
        q.enqueue_many([relayq.NewJob({"order": i, "sku": f"SKU-{i % 977}", "qty": i % 7},
                                      relayq.JobOptions(priority=i % 3,
                                                        idempotency_key=f"k{i}" if i % 10 == 0
                                                        else None))
                        for i in range(start, min(start + batch, jobs))])
    return time.monotonic() - started


def _child(step: str, url: str, uri: str, endpoint: str | None, out: Any) -> None:
    from relayq.export import export_queue, open_store, restore_snapshot

    started = time.monotonic()
    if step == "idle":
        result = 0
    else:
        store = open_store(uri, s3_endpoint_url=endpoint)
        q = relayq.Queue(QUEUE, relayq.connect(url))
        if step == "export":
            result = export_queue(q.redis, store, QUEUE).jobs
        else:
            result = restore_snapshot(q, store).restored
    out.send((result, time.monotonic() - started,
              resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def run_child(step: str, url: str, uri: str, endpoint: str | None) -> tuple[int, float, float]:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    p = ctx.Process(target=_child, args=(step, url, uri, endpoint, child))
    p.start()
    result = parent.recv()
    p.join()
    return result


def probe(url: str, stop: threading.Event, worst: list[float]) -> None:
    client = redis.Redis.from_url(url)
    while not stop.is_set():
        t = time.perf_counter()
        client.ping()
        worst[0] = max(worst[0], time.perf_counter() - t)
        time.sleep(0.001)


def quiet_period(url: str, admin: Any, seconds: float) -> tuple[float, int]:
    """The probe alone for `seconds`: what this machine's load does to the figures."""
    admin.slowlog_reset()
    stop, worst = threading.Event(), [0.0]
    watcher = threading.Thread(target=probe, args=(url, stop, worst))
    watcher.start()
    time.sleep(seconds)
    stop.set()
    watcher.join()
    return worst[0] * 1000, len(admin.slowlog_get(1024))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--s3", action="store_true", help="use moto's S3 server, not file://")
    args = parser.parse_args()
    server = RedisProcess().start()
    moto = None
    try:
        if args.s3:
            from moto.server import ThreadedMotoServer

            os.environ.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
                              AWS_DEFAULT_REGION="us-east-1")
            port = free_port()
            moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
            moto.start()
            endpoint: str | None = f"http://127.0.0.1:{port}"
            import boto3

            boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bench")
            uri = "s3://bench/snapshots"
        else:
            endpoint = None
            uri = f"file://{tempfile.mkdtemp(prefix='relayq-measure-')}"
        fill_s = fill(server.url, args.jobs)
        print(f"filled {args.jobs:,} jobs in {fill_s:.1f}s; store {uri}")
        _, _, idle_mb = run_child("idle", server.url, uri, endpoint)
        print(f"idle child peak RSS: {idle_mb:.0f} MiB")

        admin = redis.Redis.from_url(server.url)
        admin.config_set("slowlog-log-slower-than", 1000)  # log every command over 1 ms
        admin.config_set("slowlog-max-len", 1024)
        baseline = quiet_period(server.url, admin, 5.0)
        print(f"baseline, 5 s with no export: worst PING {baseline[0]:.1f} ms, "
              f"{baseline[1]} commands over 1 ms inside Redis")
        admin.slowlog_reset()
        admin.config_resetstat()
        stop, worst = threading.Event(), [0.0]
        watcher = threading.Thread(target=probe, args=(server.url, stop, worst))
        watcher.start()
        jobs, seconds, mb = run_child("export", server.url, uri, endpoint)
        stop.set()
        watcher.join()
        print(f"export: {jobs:,} jobs in {seconds:.1f}s = {jobs / seconds:,.0f} jobs/s, "
              f"peak RSS {mb:.0f} MiB, worst Redis PING during export {worst[0] * 1000:.1f} ms")
        slow = admin.slowlog_get(1024)
        worst_by_command: dict[str, float] = {}
        for entry in slow:
            name = entry["command"].split()[0].decode().upper()
            worst_by_command[name] = max(worst_by_command.get(name, 0), entry["duration"] / 1000)
        print(f"commands that ran over 1 ms inside Redis during export: {len(slow)}; longest "
              f"per command (ms): {worst_by_command}")
        stats = admin.execute_command("INFO", "latencystats")
        for name in ("scan", "hgetall"):
            print(f"  {name} inside Redis (us): {stats.get(f'latency_percentiles_usec_{name}')}")

        admin.flushall()  # our own server: Redis lost
        admin.config_resetstat()
        jobs, seconds, mb = run_child("restore", server.url, uri, endpoint)
        print(f"restore: {jobs:,} jobs in {seconds:.1f}s = {jobs / seconds:,.0f} jobs/s, "
              f"peak RSS {mb:.0f} MiB")
        stats = admin.execute_command("INFO", "latencystats")
        print(f"  restore.lua calls (50 jobs each) inside Redis (us): "
              f"{stats.get('latency_percentiles_usec_evalsha')}")
    finally:
        if moto is not None:
            moto.stop()
        server.stop()


if __name__ == "__main__":
    main()
