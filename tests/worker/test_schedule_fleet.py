"""Each tick exactly once, against real processes (issue 13 #5): three relayq-worker processes
and two relayq-server processes fire one `every_ms` schedule (the shortest allowed) while
workers are SIGKILLed and started again; every tick between the first and the last has exactly
one job. The misfire policies after every process was down for longer than the grace: `all`
makes up every tick, `once` one job for the missed ones, `skip` none. The long version, with a
Redis restart, is scripts/schedule_soak.py."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import relayq
from relayq import Queue
from relayq.limits import MIN_EVERY_MS, MISFIRE_GRACE_MS
from relayq.tools.redis_process import RedisProcess
from relayq.tools.schedule_fleet import Fleet, count_ticks
from tests.support.helpers import wait_until
from tests.support.server import ROOT

RUN_S = 8


@pytest.fixture
def private_redis() -> Iterator[tuple[str, Any]]:
    with RedisProcess() as server:
        client = relayq.connect(server.url)
        yield server.url, client
        client.close()


def test_each_tick_once_with_workers_killed(private_redis: tuple[str, Any],
                                            tmp_path: Path) -> None:
    redis_url, r = private_redis
    q = Queue("fleet", r)
    with Fleet(redis_url, q.name, tmp_path, cwd=ROOT) as fleet:
        q.schedule("tick", {}, every_ms=MIN_EVERY_MS)
        rng = random.Random(13)
        deadline = time.monotonic() + RUN_S
        kills = 0
        while time.monotonic() < deadline:
            time.sleep(rng.uniform(0.5, 1.5))  # the chaos's pace, not a wait for a condition
            victim = rng.randrange(len(fleet.workers))
            fleet.kill_worker(victim)
            kills += 1
            fleet.start_worker(victim)
        last = q.get_schedule("tick").last_tick_at
        wait_until(lambda: (q.get_schedule("tick").last_tick_at or 0) > (last or 0) + 1000,
                   timeout=10, message="ticks fired after the chaos")
    q.pause_schedule("tick")
    counted = count_ticks(r, q.name, "tick", MIN_EVERY_MS)
    assert kills >= 4
    assert counted.duplicates == [] and counted.missing == []
    assert counted.jobs >= RUN_S * 1000 // MIN_EVERY_MS * 0.9, counted


def test_misfire_policies_after_every_process_was_down(private_redis: tuple[str, Any],
                                                       tmp_path: Path) -> None:
    redis_url, r = private_redis
    queues = {policy: Queue(f"misfire-{policy}", r) for policy in ("once", "skip", "all")}
    for policy, q in queues.items():
        q.schedule("tick", {}, every_ms=MIN_EVERY_MS, misfire=policy)
    args = [arg for q in queues.values() for arg in ("--queue", q.name)]

    def worker(name: str) -> subprocess.Popen[bytes]:
        with (tmp_path / name).open("wb") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "relayq.worker.cli", *args, "--redis", redis_url,
                 "--demo-fail-rate", "0", "--log-format", "json"],
                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)

    first = worker("first.log")
    wait_until(lambda: all(q.get_schedule("tick").last_tick_at for q in queues.values()),
               timeout=15, message="every schedule fired")
    first.terminate()
    assert first.wait(15) == 0
    stopped = {p: q.get_schedule("tick").last_tick_at for p, q in queues.items()}
    # nothing of relayq runs: ticks pass by, more than the grace (a clock, not a condition)
    time.sleep(MISFIRE_GRACE_MS / 1000 + 1.5)
    second = worker("second.log")
    try:
        wait_until(lambda: all(q.get_schedule("tick").last_tick_at > stopped[p] + 1000
                               for p, q in queues.items()),
                   timeout=15, message="every schedule fired again")
    finally:
        second.terminate()
        assert second.wait(15) == 0
    missed = {}
    for line in (tmp_path / "second.log").read_text().splitlines():
        entry = json.loads(line) if line.startswith("{") else {}
        if entry.get("event") == "schedules.misfired":
            missed[entry["queue"]] = int(entry["missed"])
    for policy, q in queues.items():
        counted = count_ticks(r, q.name, "tick", MIN_EVERY_MS)
        k = missed[q.name]
        assert k >= 5, (policy, k)  # the second worker found the ticks of the downtime
        assert counted.duplicates == []
        gap = {"all": 0, "once": k - 1, "skip": k}[policy]
        assert len(counted.missing) == gap, (policy, k, counted.missing)
        if gap:  # one run of missing ticks, right after the last one fired before the stop
            assert counted.missing == list(range(stopped[policy] + MIN_EVERY_MS,
                                                 stopped[policy] + (gap + 1) * MIN_EVERY_MS,
                                                 MIN_EVERY_MS))
