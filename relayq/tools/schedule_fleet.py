"""A fleet of real relayq processes firing one periodic schedule, for the exactly-once checks of
periodic jobs (tests/worker/test_schedule_fleet.py, a few seconds; scripts/schedule_soak.py,
minutes, with a Redis restart): worker processes and relayq-server processes that can be
SIGKILLed and started again, and the count of the jobs a schedule made, by tick."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any, NamedTuple

from ..connection import RedisClient
from ..keys import prefix
from .server_process import ServerProcess


class TickCount(NamedTuple):
    """The ticks of one schedule's jobs: how many, the duplicates (a tick with more than one
    job) and the gaps (ticks on the grid between the first and the last with no job)."""

    jobs: int
    first: int | None
    last: int | None
    duplicates: list[int]
    missing: list[int]


def count_ticks(redis: RedisClient, queue: str, schedule_id: str, every_ms: int) -> TickCount:
    """Reads every job hash of `queue` made by `schedule_id` (their tick_at)."""
    ticks: Counter[int] = Counter()
    for key in redis.scan_iter(match=f"{prefix(queue)}job:*", count=1000):
        sid, tick = redis.hmget(key, "sc", "ta")
        if sid == schedule_id and tick:
            ticks[int(tick)] += 1
    if not ticks:
        return TickCount(0, None, None, [], [])
    first, last = min(ticks), max(ticks)
    return TickCount(sum(ticks.values()), first, last,
                     sorted(t for t, n in ticks.items() if n > 1),
                     [t for t in range(first, last + 1, every_ms) if t not in ticks])


class Fleet:
    """`workers` relayq-worker processes (the demo handler, no failures) serving `queue` and
    `servers` relayq-server processes (one worker process each, auth off) on `redis_url`;
    their output under `log_dir`."""

    def __init__(self, redis_url: str, queue: str, log_dir: Path, *, workers: int = 3,
                 servers: int = 2, cwd: str | Path | None = None) -> None:
        self.redis_url = redis_url
        self.queue = queue
        self.log_dir = log_dir
        self.cwd = cwd
        self.workers: list[subprocess.Popen[bytes] | None] = [None] * workers
        self.servers = [ServerProcess(redis_url, "--workers", "1", "--auth", "off", cwd=cwd)
                        for _ in range(servers)]

    def start(self) -> Fleet:
        for i in range(len(self.workers)):
            self.start_worker(i)
        for server in self.servers:
            server.start()
        return self

    def start_worker(self, i: int) -> None:
        with (self.log_dir / f"worker-{i}.log").open("ab") as out:
            self.workers[i] = subprocess.Popen(
                [sys.executable, "-m", "relayq.worker.cli", "--queue", self.queue, "--redis",
                 self.redis_url, "--demo-fail-rate", "0", "--grace", "2"],
                stdout=out, stderr=subprocess.STDOUT, cwd=self.cwd, start_new_session=True)

    def kill_worker(self, i: int) -> None:
        """SIGKILL: no drain, no goodbye."""
        proc = self.workers[i]
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def stop(self) -> None:
        for proc in self.workers:
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for proc in self.workers:
            if proc is not None:
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(5)
        for server in self.servers:
            server.stop()

    def __enter__(self) -> Fleet:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
