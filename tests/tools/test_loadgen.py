"""`relayq-demo`: the load generator, as a process, through the real server; and the whole way
round: demo -> HTTP -> Redis -> a real `relayq-worker` running the demo handler."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from relayq import Queue
from tests.support.helpers import wait_until
from tests.support.server import ROOT


def demo(server, key: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "relayq.tools.loadgen", "--server", server.url, *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "RELAYQ_API_KEY": key})


def test_the_demo_load_is_what_was_asked_for(server, admin_key: str, r, q: Queue) -> None:
    done = demo(server, admin_key, "--queue", q.name, "--count", "60", "--fail-share", "0.25",
                "--delay-ms", "60000", "--delayed-share", "0.2", "--payload-bytes", "300",
                "--priorities", "1,9", "--seed", "7", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["enqueued"] == 60 and "relayq-demo: 60/60 enqueued" in done.stderr
    stats = q.stats()
    assert stats.totals["enqueued"] == 60
    assert (stats.ready, stats.scheduled) == (60 - summary["delayed"], summary["delayed"])
    assert 0 < summary["delayed"] < 60 and 0 < summary["failing"] < 60
    jobs = [q.get(f"{q.name}.{local}") for local in _local_ids(r, q)]
    assert sum(j.payload["fail"] for j in jobs) == summary["failing"]
    assert {j.priority for j in jobs} == {1, 9} and {j.type for j in jobs} == {"demo"}
    assert {len(json.dumps(j.payload, separators=(",", ":"))) for j in jobs} == {300}


def _local_ids(r, q: Queue) -> list[str]:
    prefix = q.keys.prefix + "job:"
    return [key[len(prefix):] for key in r.scan_iter(match=prefix + "*", count=1000)]


def test_demo_jobs_run_on_a_real_worker(server, admin_key: str, redis_url: str,
                                        q: Queue) -> None:
    worker = subprocess.Popen(
        [sys.executable, "-m", "relayq.worker.cli", "--queue", q.name, "--redis", redis_url,
         "--concurrency", "4"], cwd=ROOT, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        done = demo(server, admin_key, "--queue", q.name, "--count", "20", "--batch", "10",
                    "--fail-share", "0.25", "--max-attempts", "1", "--sleep-ms", "1",
                    "--seed", "3", "--json")
        assert done.returncode == 0, done.stderr
        failing = json.loads(done.stdout)["failing"]
        wait_until(lambda: q.stats().succeeded + q.stats().dead == 20, timeout=60,
                   message="the worker to finish the demo jobs")
        assert q.stats().dead == failing
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)


def test_bad_arguments_exit_2_with_one_line(server, admin_key: str) -> None:
    done = demo(server, admin_key, "--count", "5", "--fail-share", "2")
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "argument --fail-share: must be between 0 and 1" in done.stderr


def test_rate_paces_the_load(server, admin_key: str, q: Queue) -> None:
    done = demo(server, admin_key, "--queue", q.name, "--count", "6", "--rate", "20", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["seconds"] >= 0.25  # 5 gaps of 1/20 s at the least
    assert q.stats().ready == 6
