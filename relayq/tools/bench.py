"""`relayq bench`: the workload of ../shared/bench/peers, run on relayq.

Phases, as in the peer harness (peers/run.py), each against a queue nothing else uses:
  bulk      N jobs through `Queue.enqueue_many` in calls of 1000 (the bulk API); jobs/s
  enqueue   N jobs `{"i": i}` one `Queue.enqueue` call at a time; jobs/s, and Redis
            used_memory growth / N = bytes per pending job
  drain     W `relayq-worker` processes started, time from spawn to the N-th completion
  latency   workers still running, RATE jobs/s offered for DURATION s with `{"i", "t"}`; the
            handler records now - t: enqueue-to-start p50/p95/p99
  depth     (optional) claim+ack round trip at a small and a large queue depth

The handler is the peers' no-op task (peers/common.py): first thing, one pipelined INCR of
`bench:done` (+ RPUSH of the latency to `bench:lat`) on the bench Redis.
Prints progress on stderr and one JSON object with the peer harness's keys.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import redis

from ..connection import connect
from ..queue import Queue
from ..worker.app import App
from .redis_process import RedisProcess

DONE_KEY = "bench:done"
LAT_KEY = "bench:lat"
URL_ENV = "RELAYQ_BENCH_REDIS_URL"

# -- the task, run inside the worker processes ------------------------------------------------

app = App("bench")
_client: dict[str, Any] = {"pid": None, "redis": None}


@app.task(name="noop", default=True)
def noop(payload: Any) -> None:
    """The peers' no-op task: records completion (and latency when the payload has `t`)."""
    now = time.time()
    if _client["pid"] != os.getpid():
        _client["redis"] = redis.Redis.from_url(os.environ[URL_ENV])
        _client["pid"] = os.getpid()
    r = _client["redis"]
    sent = payload.get("t") if isinstance(payload, dict) else None
    if sent is None:
        r.incr(DONE_KEY)
    else:
        pipe = r.pipeline(transaction=False)
        pipe.rpush(LAT_KEY, now - sent)
        pipe.incr(DONE_KEY)
        pipe.execute()


# -- the driver -------------------------------------------------------------------------------


def stop_processes(procs: list[subprocess.Popen[bytes]], wait_s: float) -> None:
    """SIGTERM to every process (each leads its own process group), then up to `wait_s` for
    each to exit, then SIGKILL to the group of any still running."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(wait_s)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    k = (len(sorted_values) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


class Bench:
    def __init__(self, url: str, jobs: int, workers: int, concurrency: int, rate: float,
                 duration: float, queue: str, log: Callable[[str], None]) -> None:
        self.url = url
        self.n = jobs
        self.workers = workers
        self.concurrency = concurrency
        self.rate = rate
        self.duration = duration
        self.queue_name = queue
        self.log = log
        self.redis = connect(url)
        self.queue: Queue[Any] = Queue(queue, self.redis)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.result: dict[str, Any] = {"system": "relayq", "jobs": jobs, "workers": workers,
                                       "concurrency": concurrency}

    def reset(self) -> None:
        """Deletes this bench's keys only (the queue's, and the counters)."""
        for key in self.redis.scan_iter(match=f"relayq:{{{self.queue_name}}}:*", count=1000):
            self.redis.unlink(key)
        self.redis.delete(DONE_KEY, LAT_KEY)

    def done(self) -> int:
        return int(self.redis.get(DONE_KEY) or 0)

    def used_memory(self) -> int:
        return int(self.redis.info("memory")["used_memory"])

    def run(self, depths: list[int]) -> dict[str, Any]:
        self.reset()
        self.phase_bulk()
        self.reset()
        self.phase_enqueue()
        self.phase_drain()
        try:
            self.phase_latency()
        finally:
            self.stop_workers()
        for depth in depths:
            self.reset()
            self.phase_depth(depth)
        self.reset()
        return self.result

    def phase_bulk(self) -> None:
        self.log(f"bulk enqueue {self.n} jobs (calls of 1000)")
        payloads = [{"i": i} for i in range(self.n)]
        t0 = time.perf_counter()
        for start in range(0, self.n, 1000):
            self.queue.enqueue_many(payloads[start:start + 1000])
        elapsed = time.perf_counter() - t0
        self.result["bulk_enqueue_per_s"] = self.n / elapsed
        self._check_ready()

    def phase_enqueue(self) -> None:
        self.log(f"enqueue {self.n} jobs one by one")
        enqueue = self.queue.enqueue
        before = self.used_memory()
        t0 = time.perf_counter()
        for i in range(self.n):
            enqueue({"i": i})
        elapsed = time.perf_counter() - t0
        self.result["enqueue_per_s"] = self.n / elapsed
        self.result["bytes_per_job"] = (self.used_memory() - before) / self.n
        self._check_ready()

    def _check_ready(self) -> None:
        ready = self.queue.stats().ready
        if ready != self.n:
            raise RuntimeError(f"expected {self.n} ready jobs, found {ready}")

    def phase_drain(self) -> None:
        self.log(f"drain with {self.workers} worker process(es), concurrency {self.concurrency}")
        t_spawn = time.perf_counter()
        self.spawn_workers()
        t_first, t_done = self.wait_done(self.n, timeout=300)
        self.result["drain_s"] = t_done - t_spawn
        self.result["drain_per_s"] = self.n / (t_done - t_spawn)
        self.result["first_job_s"] = t_first - t_spawn
        if t_done > t_first:
            self.result["drain_steady_per_s"] = (self.n - 1) / (t_done - t_first)

    def phase_latency(self) -> None:
        count = int(self.rate * self.duration)
        self.log(f"latency: {self.rate:g} jobs/s for {self.duration:g} s")
        time.sleep(0.5)
        base = self.done()
        period = 1 / self.rate
        enqueue = self.queue.enqueue
        t_start = time.perf_counter()
        for k in range(count):
            delay = t_start + k * period - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            enqueue({"i": k, "t": time.time()})
        self.wait_done(base + count, timeout=60)
        values = sorted(float(x) * 1000 for x in self.redis.lrange(LAT_KEY, 0, -1))
        self.result["lat_samples"] = len(values)
        for q in (50, 95, 99):
            self.result[f"lat_p{q}_ms"] = percentile(values, q)
        self.result["lat_max_ms"] = values[-1] if values else None

    def phase_depth(self, depth: int) -> None:
        """Claim+ack round-trip latency with `depth` jobs queued (claims must not slow down)."""
        self.log(f"claim latency at depth {depth}")
        payloads = [{"i": i} for i in range(1000)]
        for start in range(0, depth, 1000):
            self.queue.enqueue_many(payloads[:min(1000, depth - start)])
        samples = []
        for i in range(2000):
            t0 = time.perf_counter()
            (job,) = self.queue.claim(1)
            self.queue.ack(job.id, job.lease or "")
            samples.append((time.perf_counter() - t0) * 1000)
            self.queue.enqueue({"i": i})  # untimed: keeps the depth where it was
        samples.sort()
        self.result[f"claim_ack_p50_ms_at_{depth}"] = percentile(samples, 50)
        self.result[f"claim_ack_p99_ms_at_{depth}"] = percentile(samples, 99)

    def spawn_workers(self) -> None:
        env = dict(os.environ, **{URL_ENV: self.url, "PYTHONUNBUFFERED": "1"})
        cmd = [sys.executable, "-m", "relayq.worker.cli", "--app", "relayq.tools.bench:app",
               "--queue", self.queue_name, "--concurrency", str(self.concurrency),
               "--redis", self.url, "--log-level", "warning", "--grace", "5"]
        for _ in range(self.workers):
            self.procs.append(subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL,
                                               start_new_session=True))

    def wait_done(self, target: int, timeout: float) -> tuple[float, float]:
        t0 = time.perf_counter()
        start = self.done()
        t_first = None
        while True:
            value = self.done()
            now = time.perf_counter()
            if t_first is None and value > start:
                t_first = now
            if value >= target:
                return t_first or now, now
            if now - t0 > timeout:
                raise TimeoutError(f"{value - start} of {target - start} jobs done after "
                                   f"{timeout} s")
            if self.procs and all(p.poll() is not None for p in self.procs):
                raise RuntimeError("every worker process exited")
            time.sleep(0.005)

    def stop_workers(self) -> None:
        t0 = time.perf_counter()
        stop_processes(self.procs, 30)
        self.result["stop_s"] = time.perf_counter() - t0
        self.procs = []


def run_http(redis_url: str, jobs: int, log: Callable[[str], None],
             connections: list[int] = (), seconds: float = 5) -> dict[str, Any]:
    """The HTTP API on a private relayq-server over the same Redis: through the SDK, one
    request at a time (single enqueue, batch enqueue, claim + ack: relayq.tools.http_bench);
    then, when `wrk` is installed, at each number of `connections` for `seconds` per phase
    (single enqueue, batch enqueue, a worker draining over HTTP), with Redis's CPU per job.
    Its key is revoked after."""
    from ..auth import KeyStore
    from .http_bench import has_wrk, measure_concurrent, measure_http
    from .server_process import ServerProcess

    log(f"HTTP API through the SDK: {jobs} jobs per phase")
    r = connect(redis_url)
    store = KeyStore(r)
    record, key = store.create("relayq-bench", ["admin"])
    try:
        with ServerProcess(redis_url, "--log-level", "warning") as server:
            figures = measure_http(server.url, key, jobs)
            if connections and has_wrk():
                log(f"HTTP API with wrk at {connections} connections, {seconds:g} s a phase")
                figures.update(measure_concurrent(server.url, key, list(connections), seconds,
                                                  r))
            elif connections:
                log("wrk is not installed: no concurrent HTTP figures")
    finally:
        store.revoke(record.id)
    return {f"http_{name}": value for name, value in figures.items() if name != "jobs"}


def run_bench(*, jobs: int, workers: int, concurrency: int, rate: float, duration: float,
              redis_url: str | None, depths: list[int], log: Callable[[str], None],
              http_jobs: int = 0, http_connections: list[int] = (),
              http_seconds: float = 5) -> dict[str, Any]:
    """Runs every phase; starts (and stops) a private redis-server unless `redis_url` is given.
    With a given Redis only the bench's own keys are touched, never FLUSHALL. `http_jobs` > 0
    adds the HTTP API's figures, measured in the same run."""
    server = None
    if redis_url is None:
        server = RedisProcess().start()
        redis_url = server.url
        log(f"started redis-server on {redis_url}")
    try:
        queue = f"bench-{os.getpid()}"
        result = Bench(redis_url, jobs, workers, concurrency, rate, duration, queue, log).run(
            depths)
        if http_jobs:
            result.update(run_http(redis_url, http_jobs, log, http_connections, http_seconds))
            single = result.get(f"http_c{max(http_connections, default=0)}_enqueue_single")
            if single:  # the HTTP API beside the direct path of the same run
                result["http_single_vs_direct"] = round(
                    single["jobs_per_s"] / result["enqueue_per_s"], 3)
        info = redis.Redis.from_url(redis_url).info("server")
        result["redis_version"] = info.get("redis_version")
        return result
    finally:
        if server is not None:
            server.stop()
