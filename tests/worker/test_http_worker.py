"""`relayq-worker --server URL`: the worker over a relayq-server's HTTP API alone, as real
processes. Its environment names a Redis where nothing listens: any use of Redis would fail.
Retries, dead letters, leases kept by heartbeats, the reaper, delayed jobs, a graceful drain on
SIGTERM, a server restart mid-drain (nothing lost, nothing run twice) and bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import relayq
from relayq.tools.server_process import ServerProcess
from relayq.worker_registry import list_workers
from tests.support.helpers import ROOT, wait_until, worker_process
from tests.support.server import start_server
from tests.support.workers import RECORD_ENV


def long_polls(server: ServerProcess) -> int:
    with urllib.request.urlopen(server.url + "/healthz", timeout=5) as reply:
        return int(json.load(reply)["long_polls"])


def finished(q: relayq.Queue[Any], ids: list[str], state: str) -> bool:
    return all(q.get(i).state == state for i in ids)


def test_drains_a_queue_with_retries_dead_letters_and_leases(
        q: relayq.Queue[Any], server: ServerProcess, scoped_keys: dict[str, str],
        tmp_path: Path) -> None:
    q.enqueue({"n": "lost"})
    (lost,) = q.claim(1, visibility_ms=300, worker_id="vanished")  # its worker never returns
    ok = [q.enqueue({"n": i}).id for i in range(40)]
    dead = [q.enqueue({"fail": True}, max_attempts=2, backoff_base_ms=10).id for _ in range(3)]
    slow = q.enqueue({"sleep_ms": 2500}).id  # outlives its 1 s lease: heartbeats keep it
    later = q.enqueue({"n": "later"}, delay_ms=400).id
    log = tmp_path / "worker.log"
    with worker_process(None, q.name, "--demo-fail-rate", "0", "--concurrency", "4",
                        "--visibility", "1", log=log,
                        server=(server.url, scoped_keys["jobs:work"])):
        done = [*ok, slow, later, lost.id]
        wait_until(lambda: finished(q, done, "succeeded") and finished(q, dead, "dead"),
                   timeout=20, message="the queue drained over HTTP")
        # idle now, in a long poll of up to 5 s: the server wakes it at the enqueue
        wait_until(lambda: long_polls(server) == 1, message="the idle worker's long poll")
        enqueued = time.monotonic()
        woken = q.enqueue({"sleep_ms": 0}).id
        wait_until(lambda: q.get(woken).state == "succeeded", message="an idle worker's job")
        assert time.monotonic() - enqueued < 1.0
        done.append(woken)
    assert [q.get(i).result for i in ok] == [{"n": i} for i in range(40)]
    assert q.get(slow).attempts == 1  # never reaped: its lease was extended over HTTP
    assert q.get(lost.id).attempts == 2  # reaped through POST .../reap, then run here
    assert all(q.get(i).attempts == 2 for i in dead)
    assert sorted(job.id for job in q.dead()[0]) == sorted(dead)
    stats = q.stats()
    assert (stats.ready, stats.scheduled, stats.running) == (0, 0, 0)
    assert stats.totals["succeeded"] == len(done) and stats.totals["reaped"] == 1
    text = log.read_text()
    assert "redis.unavailable" not in text and "Traceback" not in text, text[-2000:]


def listed(r: Any, queue: str) -> list[dict[str, Any]]:
    return [w for w in list_workers(r) if w["queues"] == [queue]]


def test_sigterm_drains_gracefully_and_the_registry_entry_goes(
        q: relayq.Queue[Any], r: Any, server: ServerProcess, scoped_keys: dict[str, str],
        tmp_path: Path) -> None:
    running = [q.enqueue({"sleep_ms": 1500}).id for _ in range(2)]
    prefetched = [q.enqueue({"n": i}).id for i in range(2)]
    log = tmp_path / "worker.log"
    with worker_process(None, q.name, "--demo-fail-rate", "0", "--concurrency", "2",
                        "--registry-refresh-ms", "100", log=log,
                        server=(server.url, scoped_keys["jobs:work"])) as worker:
        wait_until(lambda: finished(q, running + prefetched, "running"), message="claimed")
        # listed through PUT /api/workers/{id}, with every job it holds
        wait_until(lambda: [(e["pid"], e["busy"], sorted(e["jobs"])) for e in listed(r, q.name)]
                   == [(worker.pid, 2, sorted(running + prefetched))], message="its entry")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(15) == 0, log.read_text()[-2000:]
    assert [q.get(i).state for i in running] == ["succeeded"] * 2  # finished, then acked
    # claimed ahead and never started: handed back at once, no attempt spent
    assert [(q.get(i).state, q.get(i).attempts) for i in prefetched] == [("ready", 0)] * 2
    assert "worker.stopped" in log.read_text()
    assert listed(r, q.name) == []  # taken out at the stop (DELETE /api/workers/{id})


def drain_through_outage(q: relayq.Queue[Any], redis_url: str, key: str, tmp_path: Path,
                         visibility: str, stop: str) -> tuple[list[str], Counter[str]]:
    """A worker over HTTP (the recording app) drains 300 jobs while its server is stopped
    mid-drain (`stop`: "terminate", SIGTERM, or "kill", SIGKILL), stays down past the SDK's
    own retries (the worker's loops back off), and is started again; 300 more jobs are
    enqueued meanwhile. Returns the job ids and how many times each ran."""
    record, log = tmp_path / "ran", tmp_path / "worker.log"
    ids = [r.id for r in q.enqueue_many(range(300))]
    server = start_server(redis_url)
    try:
        with worker_process(None, q.name, "--app", "tests.support.workers:recording_app",
                            "--concurrency", "4", "--visibility", visibility, log=log,
                            server=(server.url, key),
                            env={RECORD_ENV: str(record), "PYTHONPATH": str(ROOT)}):
            wait_until(lambda: q.stats().succeeded >= 50, timeout=20, message="a first part")
            getattr(server, stop)()
            assert q.stats().succeeded < len(ids)  # mid-drain: jobs held, acks to send
            ids += [r.id for r in q.enqueue_many(range(300))]  # work for after the restart
            wait_until(lambda: "server.unavailable" in log.read_text(),
                       message="the worker to meet the outage")
            server.start()
            wait_until(lambda: q.stats().succeeded == len(ids), timeout=25,
                       message=f"all jobs done: {q.stats()}")
    finally:
        server.stop()
    return ids, Counter(record.read_text().split())


def test_a_server_restart_mid_drain_loses_and_repeats_nothing(
        q: relayq.Queue[Any], redis_url: str, scoped_keys: dict[str, str],
        tmp_path: Path) -> None:
    """SIGTERM: the server finishes its requests and answers its long polls, then stops."""
    ids, runs = drain_through_outage(q, redis_url, scoped_keys["jobs:work"], tmp_path, "5",
                                     "terminate")
    assert set(runs) == set(ids) and set(runs.values()) == {1}  # each ran once, none lost
    assert q.stats().totals["succeeded"] == len(ids) and q.stats().totals["reaped"] == 0


def test_a_server_killed_mid_drain_loses_nothing(q: relayq.Queue[Any], redis_url: str,
                                                 scoped_keys: dict[str, str],
                                                 tmp_path: Path) -> None:
    """SIGKILL: requests die half-way (an ack recorded whose reply is lost, a claim whose jobs
    never reach the worker). Held jobs come back by the reaper after their 1 s lease; a job
    may run twice (at-least-once), never be lost."""
    ids, runs = drain_through_outage(q, redis_url, scoped_keys["jobs:work"], tmp_path, "1",
                                     "kill")
    assert set(runs) == set(ids)  # none lost
    # a repeat only for what the worker held when the server died (4 running + 4 prefetched)
    assert sum(runs.values()) - len(ids) <= 8, runs.most_common(10)


@pytest.mark.parametrize("case,message", [
    ("not-a-url", "is not a server URL"),
    ("with-redis", "--redis is for a worker on Redis: not with --server"),
    ("unknown-key", "refused the key"),
    ("key-without-scope", "refused the key"),
])
def test_bad_input_is_one_line_and_exit_2(case: str, message: str, server: ServerProcess,
                                          scoped_keys: dict[str, str]) -> None:
    url, extra, key = server.url, [], scoped_keys["jobs:work"]
    if case == "not-a-url":
        url = "localhost:8080"
    elif case == "with-redis":
        extra = ["--redis", "redis://127.0.0.1:1/0"]
    elif case == "unknown-key":
        key = "rq_0123456789abcdef_" + "x" * 43
    else:
        key = scoped_keys["jobs:read"]
    proc = subprocess.run(
        [sys.executable, "-m", "relayq.worker.cli", "--server", url, "--queue", "demo", *extra],
        env={**os.environ, "RELAYQ_API_KEY": key}, cwd=ROOT, capture_output=True, text=True,
        timeout=30)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
