"""`relayq chaos`: proves that no confirmed job is lost while the processes around it are killed.

The harness owns everything it runs: a private `redis-server` (AOF with `appendfsync always`, in
a temp dir), one `relayq-server`, W `relayq-worker` processes running this module's task `app`,
producer threads that submit the load over HTTP through `relayq.Client`, a killer thread that
SIGKILLs and restarts the chosen targets at intervals, and the final check. Nothing outlives
`Chaos.run()`: every process is stopped (its process group killed if need be) on the way out.

What the words of the report mean:

- **submitted**: jobs the server *confirmed* (201, or 200 with `duplicate: true`). Every job
  carries an idempotency key, so a submit whose reply was lost (the server or Redis was killed
  mid-request) is sent again with the same key until the server confirms it; the engine answers
  the original id and creates nothing. That no second job was ever created is checked too: the
  queue's `enqueued` total must equal the number of confirmed jobs.
- **lost**: confirmed jobs that did not end `succeeded`, or whose handler never completed.
- **duplicate deliveries**: completed handler runs beyond the first (at-least-once at work: a
  worker killed after its handler finished but before its ack). The task records every completed
  run in Redis outside relayq's keys (`chaos:done:{<queue>}`, job id -> runs).
- **latency**: from the first submit attempt of a job to its `finished_at` (the harness and
  Redis share one host, so one clock).

Some jobs fail their first attempt on purpose (`flaky`), so retries, backoff and the promoter
are under fire too.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..client import Client
from ..connection import RedisClient, connect
from ..errors import JobNotFound, RedisUnavailable, ServerBusy, ServerUnavailable
from ..queue import Queue
from ..worker import App, Retry, current_job
from .bench import percentile, stop_processes
from .redis_process import RedisProcess
from .server_process import ServerProcess

TARGETS = ("worker", "server", "redis")
RUNS_ENV = "RELAYQ_CHAOS_REDIS"
# Errors a submit meets while something is being killed; the submit is repeated (same key).
TRANSIENT = (ServerUnavailable, RedisUnavailable, ServerBusy)

# -- the task the workers run -------------------------------------------------------------------

app = App("chaos")
_redis: dict[str, RedisClient] = {}
_redis_lock = threading.Lock()


def done_key(queue: str) -> str:
    """The HASH (job id -> completed runs) the task keeps, outside relayq's `relayq:` keys."""
    return f"chaos:done:{{{queue}}}"


def _runs_client() -> RedisClient:
    with _redis_lock:
        if "r" not in _redis:
            _redis["r"] = connect(os.environ[RUNS_ENV])  # no hidden retries: one run, one count
        return _redis["r"]


@app.task(name="chaos", default=True)
def chaos_task(payload: dict[str, Any]) -> dict[str, Any]:
    job = current_job()
    if payload.get("flaky") and job.attempts == 1:
        raise Retry("fails its first attempt on purpose", delay_ms=50)
    if payload.get("sleep_ms"):
        time.sleep(payload["sleep_ms"] / 1000)
    _runs_client().hincrby(done_key(job.queue), job.id, 1)
    return {"i": payload["i"]}


# -- settings and report ------------------------------------------------------------------------


@dataclass(frozen=True)
class ChaosConfig:
    jobs: int = 1000
    workers: int = 2
    kills: int = 6
    kill_interval_s: float = 2.0
    targets: tuple[str, ...] = TARGETS
    concurrency: int = 4
    producers: int = 4
    rate: float | None = None  # jobs/s; None: spread over the kill schedule; 0: unpaced
    visibility_s: float = 2.0
    sleep_ms: int = 5  # each job sleeps uniform(0, sleep_ms)
    flaky: float = 0.05  # share of jobs that fail their first attempt
    timeout_s: float = 120.0  # for submitting and for draining, each
    seed: int | None = None
    queue: str = "chaos"

    def pace(self) -> float:
        """Jobs per second to submit at (0: as fast as the server takes them)."""
        if self.rate is not None:
            return self.rate
        window = (self.kills + 1) * self.kill_interval_s  # the last kill still meets load
        return self.jobs / window if window > 0 else 0.0


@dataclass
class Kill:
    target: str
    at_s: float  # since the load started
    back_s: float  # from the kill until the target answered again
    under_load: bool  # some confirmed job was not finished yet


@dataclass
class Report:
    config: ChaosConfig
    submitted: int = 0
    unconfirmed: int = 0
    resubmitted: int = 0
    succeeded: int = 0
    dead: int = 0
    lost: list[str] = field(default_factory=list)
    duplicate_deliveries: int = 0
    extra_jobs: int = 0
    kills: list[Kill] = field(default_factory=list)
    elapsed_s: float = 0.0
    latency_ms: dict[str, float | None] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.lost and not self.extra_jobs and not self.unconfirmed

    def lines(self) -> list[str]:
        c = self.config
        by_target = ", ".join(f"{t} {sum(k.target == t for k in self.kills)}" for t in c.targets)
        loaded = sum(k.under_load for k in self.kills)
        slowest = max((k.back_s for k in self.kills), default=0.0)
        rate = self.submitted / self.elapsed_s if self.elapsed_s else 0.0
        lat = self.latency_ms
        out = [
            f"submitted: {self.submitted} (confirmed by the server; {self.resubmitted} "
            f"resubmitted after a lost reply)",
            f"succeeded: {self.succeeded}",
            f"lost: {len(self.lost)}" + (f" (dead: {self.dead})" if self.dead else ""),
            f"duplicate deliveries: {self.duplicate_deliveries} (runs completed more than "
            "once: at-least-once)",
            f"kills: {len(self.kills)} ({by_target}); {loaded} under load; slowest back "
            f"in {slowest:.2f} s",
            f"throughput: {rate:.0f} jobs/s ({self.submitted} jobs in {self.elapsed_s:.1f} s; "
            + (f"submitted at up to {c.pace():.0f}/s)" if c.pace() else "submitted unpaced)"),
            "latency submit->succeeded: " + ", ".join(
                f"{p} {'-' if lat.get(p) is None else f'{lat[p]:.0f} ms'}"
                for p in ("p50", "p95", "p99")),
        ]
        if self.unconfirmed:
            out.append(f"error: {self.unconfirmed} submits never confirmed within "
                       f"{c.timeout_s:g} s")
        if self.extra_jobs:
            out.append(f"error: {self.extra_jobs} jobs created beyond the confirmed ones "
                       "(an idempotency key did not hold)")
        out.append("result: ZERO LOSS" if not self.lost else f"result: LOST {len(self.lost)}")
        return out


def check(config: ChaosConfig, confirmed: dict[int, str], first_sent_ms: dict[int, float],
          runs: dict[str, int], jobs: dict[str, Any], enqueued: int) -> Report:
    """The verdict from what was confirmed (index -> job id), when each was first sent (epoch
    ms), completed runs per job id, each confirmed job as read back (None: gone) and the queue's
    `enqueued` total."""
    report = Report(config, submitted=len(confirmed), unconfirmed=config.jobs - len(confirmed))
    report.extra_jobs = max(0, enqueued - len(confirmed))
    latencies = []
    for i, job_id in confirmed.items():
        job = jobs.get(job_id)
        completed = runs.get(job_id, 0)
        report.duplicate_deliveries += max(0, completed - 1)
        if job is not None and job.state == "dead":
            report.dead += 1
        if job is None or job.state != "succeeded" or completed == 0:
            report.lost.append(job_id)
            continue
        report.succeeded += 1
        latencies.append(job.finished_at - first_sent_ms[i])
    latencies.sort()
    report.latency_ms = {f"p{p}": percentile(latencies, p) for p in (50, 95, 99)}
    return report


# -- the harness --------------------------------------------------------------------------------


class Chaos:
    """One run: `Chaos(config, log).run()` returns the Report. `log` hears progress lines."""

    def __init__(self, config: ChaosConfig, log: Callable[[str], None]) -> None:
        unknown = set(config.targets) - set(TARGETS)
        if unknown or not config.targets:
            raise ValueError(f"targets must be some of {', '.join(TARGETS)}")
        self.config = config
        self.log = log
        self.rng = random.Random(config.seed)
        self.run_id = uuid.uuid4().hex[:8]
        self.dir = Path(tempfile.mkdtemp(prefix="relayq-chaos-"))
        self.redis: RedisProcess | None = None
        self.server: ServerProcess | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self._spawned = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._next = 0
        self._confirmed: dict[int, str] = {}
        self._first_sent: dict[int, float] = {}
        self._resubmitted = 0
        self._succeeded_seen = 0
        self._failure: BaseException | None = None
        self._kills: list[Kill] = []
        self._payloads = [{"i": i, "sleep_ms": self.rng.randint(0, config.sleep_ms),
                           "flaky": self.rng.random() < config.flaky}
                          for i in range(config.jobs)]

    def run(self) -> Report:
        """Starts everything, submits and kills, drains, checks, and stops everything. The
        worker logs are removed after a clean run and kept (the path is logged) otherwise."""
        report = None
        try:
            self._start()
            started = time.time()
            self._t0 = time.monotonic()
            self._in_background(self._kill_loop, "killer")
            self._in_background(self._progress_loop, "progress")
            producers = [self._in_background(self._produce, f"producer-{n}")
                         for n in range(self.config.producers)]
            for t in producers:
                t.join()
            self.log(f"{len(self._confirmed)} of {self.config.jobs} jobs confirmed after "
                     f"{time.monotonic() - self._t0:.1f} s")
            self._killer.join()
            if self._failure is not None:
                raise self._failure
            self._drain()
            report = self._check(started)
            return report
        finally:
            self._stop.set()
            self._stop_all()
            if report is not None and report.ok:
                shutil.rmtree(self.dir, ignore_errors=True)
            else:
                self.log(f"worker logs kept in {self.dir}")

    # -- processes ------------------------------------------------------------------------------

    def _start(self) -> None:
        c = self.config
        self.redis = RedisProcess(appendonly=True).start()
        self.log(f"redis-server {self.redis.url} (appendonly yes, appendfsync always)")
        self.server = ServerProcess(self.redis.url, "--log-level", "warning").start()
        key = self.server.printed_key()
        self.client = Client(self.server.url, key, timeout=10, retries=2, backoff_s=0.05,
                             pool_size=max(1, c.producers))
        self.queue: Queue[Any] = Queue(c.queue, connect(self.redis.url))
        self.runs = connect(self.redis.url)
        self.log(f"relayq-server {self.server.url}")
        self.workers = [self._spawn_worker() for _ in range(c.workers)]
        self.log(f"{c.workers} relayq-worker processes, --concurrency {c.concurrency} "
                 f"--visibility {c.visibility_s:g}")

    def _spawn_worker(self) -> subprocess.Popen[bytes]:
        assert self.redis is not None
        c = self.config
        self._spawned += 1
        command = [sys.executable, "-m", "relayq.worker.cli", "--app", "relayq.tools.chaos:app",
                   "--queue", c.queue, "--redis", self.redis.url,
                   "--concurrency", str(c.concurrency), "--visibility", str(c.visibility_s),
                   "--grace", "5", "--log-level", "warning"]
        with open(self.dir / f"worker-{self._spawned}.log", "ab") as out:
            return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    env={**os.environ, RUNS_ENV: self.redis.url})

    def _stop_all(self) -> None:
        stop_processes(self.workers, 15)
        if hasattr(self, "client"):  # set once Redis and the server were up
            self.client.close()
            self.runs.close()
            self.queue.redis.close()
        if self.server is not None:
            self.server.stop()
        if self.redis is not None:
            self.redis.stop()


    def _in_background(self, target: Callable[[], None], name: str) -> threading.Thread:
        def guarded() -> None:
            try:
                target()
            except BaseException as e:  # noqa: BLE001 - handed to run(), which raises it
                self._failure = self._failure or e
                self._stop.set()

        thread = threading.Thread(target=guarded, name=f"relayq-chaos-{name}", daemon=True)
        thread.start()
        if name == "killer":
            self._killer = thread
        return thread

    # -- load -----------------------------------------------------------------------------------

    def _produce(self) -> None:
        pace = self.config.pace()
        while not self._stop.is_set():
            with self._lock:
                i = self._next
                self._next += 1
            if i >= self.config.jobs:
                return
            if pace > 0:
                self._stop.wait(self._t0 + i / pace - time.monotonic())
            self._submit(i)

    def _submit(self, i: int) -> None:
        """Sends job i until the server confirms it (same idempotency key every time)."""
        deadline = time.monotonic() + self.config.timeout_s
        self._first_sent[i] = time.time() * 1000
        tries = 0
        while not self._stop.is_set():
            try:
                result = self.client.enqueue(
                    self.config.queue, self._payloads[i], type="chaos",
                    idempotency_key=f"chaos-{self.run_id}-{i}", max_attempts=100,
                    backoff_base_ms=50, backoff_cap_ms=1000)
            except TRANSIENT:
                tries += 1
                if time.monotonic() > deadline:
                    return  # counted as unconfirmed
                self._stop.wait(min(1.0, 0.05 * 2 ** min(tries, 5)))
                continue
            with self._lock:
                self._confirmed[i] = result.id
                self._resubmitted += tries > 0
            return

    # -- kills ----------------------------------------------------------------------------------

    def _kill_loop(self) -> None:
        c = self.config
        for k in range(c.kills):  # on a fixed schedule: slow restarts do not push it back
            if self._stop.wait(self._t0 + (k + 1) * c.kill_interval_s - time.monotonic()):
                return
            target = c.targets[k % len(c.targets)]
            began = time.monotonic()
            under_load = self._succeeded_seen < c.jobs
            getattr(self, f"_kill_{target}")()
            kill = Kill(target, began - self._t0, time.monotonic() - began, under_load)
            self._kills.append(kill)
            self.log(f"kill {k + 1}/{c.kills}: kill -9 {target} at {kill.at_s:.1f} s, "
                     f"back in {kill.back_s:.2f} s")

    def _kill_redis(self) -> None:
        assert self.redis is not None
        self.redis.kill()
        self._stop.wait(self.rng.uniform(0, 0.5))  # let every client meet a dead Redis
        self.redis.start()

    def _kill_server(self) -> None:
        assert self.server is not None
        self.server.kill()
        self.server.start()

    def _kill_worker(self) -> None:
        slot = self.rng.randrange(len(self.workers))
        victim = self.workers[slot]
        if victim.poll() is None:
            os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(10)
        self.workers[slot] = self._spawn_worker()

    # -- progress, drain, check -----------------------------------------------------------------

    def _progress_loop(self) -> None:
        while not self._stop.wait(1.0):
            self.log(self._progress())

    def _progress(self) -> str:
        try:
            stats = self.queue.stats()
        except RedisUnavailable:
            return f"{time.monotonic() - self._t0:5.1f} s  (redis is down)"
        self._succeeded_seen = stats.succeeded
        return (f"{time.monotonic() - self._t0:5.1f} s  submitted {len(self._confirmed)}/"
                f"{self.config.jobs}  succeeded {stats.succeeded}  ready {stats.ready}  "
                f"running {stats.running}  scheduled {stats.scheduled}  "
                f"kills {len(self._kills)}/{self.config.kills}")

    def _drain(self) -> None:
        deadline = time.monotonic() + self.config.timeout_s
        while time.monotonic() < deadline:
            try:
                s = self.queue.stats()
            except RedisUnavailable:
                time.sleep(0.2)
                continue
            if s.ready + s.scheduled + s.running == 0 and \
                    s.succeeded + s.dead >= len(self._confirmed):
                return
            time.sleep(0.1)
        self.log(f"the queue did not drain within {self.config.timeout_s:g} s")

    def _check(self, started: float) -> Report:
        stop_processes(self.workers, 15)  # nothing changes while we look
        runs = {job_id: int(n) for job_id, n in self.runs.hgetall(
            done_key(self.config.queue)).items()}
        jobs: dict[str, Any] = {}
        for job_id in self._confirmed.values():
            with contextlib.suppress(JobNotFound):  # gone: lost
                jobs[job_id] = self.queue.get(job_id)
        enqueued = self.queue.stats().totals["enqueued"]
        report = check(self.config, self._confirmed, self._first_sent, runs, jobs, enqueued)
        report.resubmitted = self._resubmitted
        report.kills = self._kills
        finished = [j.finished_at for j in jobs.values() if j.finished_at]
        report.elapsed_s = (max(finished) / 1000 - started) if finished else 0.0
        for job_id in report.lost[:10]:
            job = jobs.get(job_id)
            self.log(f"lost {job_id}: {'gone' if job is None else job.state}, "
                     f"{runs.get(job_id, 0)} completed runs")
        return report
