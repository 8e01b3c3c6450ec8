"""Prometheus metrics: this module owns every prometheus-client object relayq makes.

Two kinds of series, labelled by `queue` (queue names only: never a job id) except where said:

From lifecycle events, counted by the process that saw them (registered in prometheus_client's
default registry, so that a user's own metrics appear beside them; a relayq-server of several
worker processes sums theirs, through prometheus_client's multiprocess mode):

| metric                               | type      | counted when                              |
|--------------------------------------|-----------|-------------------------------------------|
| relayq_jobs_enqueued_total           | counter   | the server (or a producer) enqueued jobs  |
| relayq_jobs_claimed_total            | counter   | a worker (or the server's claim route)    |
|                                      |           | received jobs                             |
| relayq_jobs_succeeded_total          | counter   | a handler returned                        |
| relayq_jobs_failed_total             | counter   | a handler raised                          |
| relayq_jobs_lease_lost_total         | counter   | an outcome was refused (lease lost)       |
| relayq_jobs_reaped_total{outcome}    | counter   | this worker's reaper recovered jobs       |
|                                      |           | (outcome = requeued or dead)              |
| relayq_rate_limit_throttled_total    | counter   | a claim was refused by the rate limit     |
| relayq_job_run_seconds               | histogram | a handler finished (either way)           |
| relayq_job_wait_seconds              | histogram | a job was claimed: from when it was due   |
|                                      |           | (enqueue, or the end of its delay or      |
|                                      |           | backoff) to its start, both Redis clock   |
| relayq_worker_up                     | gauge     | 1 per queue a live worker process serves  |
| relayq_resp_connections              | gauge     | open connections of the RESP gateway (no  |
|                                      |           | queue label)                              |
| relayq_resp_commands_total{command}  | counter   | a RESP command was answered (command =    |
|                                      |           | its name, or 'unknown'; no queue label)   |

Read from Redis at scrape time by `QueueCollector` (the cross-process truth, identical from every
process that exports it: aggregate with `max by (queue, ...)`, never `sum`):

| metric                               | type      | value                                     |
|--------------------------------------|-----------|-------------------------------------------|
| relayq_queue_depth{state}            | gauge     | jobs per state: ready, scheduled,         |
|                                      |           | running, dead, succeeded (retained),      |
|                                      |           | waiting (workflows)                       |
| relayq_queue_events_total{event}     | counter   | lifetime totals kept by the scripts:      |
|                                      |           | enqueued, claimed, succeeded, failed,     |
|                                      |           | retried, dead, reaped, throttled,         |
|                                      |           | cancelled                                 |
| relayq_queue_paused                  | gauge     | 1 while the queue is paused               |
| relayq_queue_latency_seconds         | gauge     | age of the oldest ready job (since it was |
|                                      |           | due), 0 when none: Redis clock            |
| relayq_queue_groups{state}           | gauge     | fair queues: groups with ready jobs       |
|                                      |           | (ready), held at their concurrency limit  |
|                                      |           | (limited), waiting for a token            |
|                                      |           | (throttled). Group names are never labels |
| relayq_redis_up                      | gauge     | 1 when the last scrape read Redis (no     |
|                                      |           | queue label)                              |

Whether a failed job is retried or dead is decided inside the nack script, so those counts come
from the Redis totals only. One scrape reads every queue in one pipelined round trip.

Entry points: `serve_worker_metrics` (for `relayq-worker --metrics-addr`), `render_server_metrics`
(for the server's `/metrics` route), `record_enqueued` / `record_claimed` / `record_throttled`
(for the server's enqueue and claim routes, and the RESP gateway's commands),
`resp_connection` / `record_resp_command` / `forget_process` (the RESP gateway),
`MetricsEvents` (the worker's lifecycle hooks).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import suppress
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder, start_http_server
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from .connection import RedisClient, connect, redis_errors
from .errors import RelayqError
from .hostport import parse_host_port
from .job import Job
from .keys import QueueKeys
from .logs import log_event
from .queue import list_queues, stats_many
from .results import TOTALS
from .worker.events import WorkerEvents

log = logging.getLogger("relayq.metrics")

# Sub-millisecond to ten minutes: handlers range from a cache write to a report build, and a
# job can wait from nothing (idle workers) to minutes (a backlog).
TIME_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
DEPTH_STATES = ("ready", "scheduled", "running", "dead", "succeeded")

JOBS_ENQUEUED = Counter("relayq_jobs_enqueued", "Jobs created by enqueues this process made",
                        ["queue"])
JOBS_CLAIMED = Counter("relayq_jobs_claimed", "Jobs handed to workers through this process",
                       ["queue"])
JOBS_SUCCEEDED = Counter("relayq_jobs_succeeded", "Jobs whose handler returned in this process",
                         ["queue"])
JOBS_FAILED = Counter("relayq_jobs_failed", "Jobs whose handler raised in this process",
                      ["queue"])
JOBS_LEASE_LOST = Counter("relayq_jobs_lease_lost",
                          "Outcomes refused because the job's lease had been lost", ["queue"])
JOBS_REAPED = Counter("relayq_jobs_reaped",
                      "Jobs with an expired lease recovered by this process's reaper",
                      ["queue", "outcome"])
THROTTLED = Counter("relayq_rate_limit_throttled",
                    "Claims this process made that the queue's rate limit refused", ["queue"])
RUN_SECONDS = Histogram("relayq_job_run_seconds", "Time a handler ran, in seconds", ["queue"],
                        buckets=TIME_BUCKETS)
WAIT_SECONDS = Histogram("relayq_job_wait_seconds",
                         "Time from when a job was due to when a worker claimed it, in seconds",
                         ["queue"], buckets=TIME_BUCKETS)
SCHEDULE_TICKS = Counter("relayq_schedule_ticks_fired",
                         "Jobs this process made from periodic schedules' ticks", ["queue"])
SCHEDULE_MISFIRES = Counter("relayq_schedule_misfires",
                            "Schedule ticks this process found missed (over the misfire grace "
                            "late; their schedule's misfire policy applied)", ["queue"])
RESP_CONNECTIONS = Gauge("relayq_resp_connections", "Open connections of the RESP gateway",
                         multiprocess_mode="livesum")
RESP_COMMANDS = Counter("relayq_resp_commands", "Commands the RESP gateway answered, by name "
                        "(lowercase; every unknown name counts as 'unknown')", ["command"])
# livemax: under `relayq-worker --processes` the supervisor sums its processes' files; a dead
# process's value goes with it (mark_process_dead), and the queue shows 1 while any is alive
WORKER_UP = Gauge("relayq_worker_up", "1 for each queue a live relayq worker process serves",
                  ["queue"], multiprocess_mode="livemax")


# -- lifecycle events ---------------------------------------------------------------------------

def record_enqueued(queue: str, count: int = 1) -> None:
    """Counts jobs created by an enqueue (call with the number of non-duplicates)."""
    if count:
        JOBS_ENQUEUED.labels(queue).inc(count)


def record_claimed(queue: str, jobs: Sequence[Job[Any]], now_ms: float | None = None) -> None:
    """Counts claimed jobs and observes their wait. A claim sets `started_at` on the Redis
    clock, like `run_at`; `now_ms` (local wall clock) stands in only when it is missing."""
    if not jobs:
        return
    JOBS_CLAIMED.labels(queue).inc(len(jobs))
    wait = WAIT_SECONDS.labels(queue)
    local_now = time.time() * 1000 if now_ms is None else now_ms
    for job in jobs:
        due = job.run_at if job.run_at is not None else job.created_at
        started = job.started_at if job.started_at is not None else local_now
        wait.observe(max(0.0, started - due) / 1000)


def record_schedules(queue: str, fired: int, missed: int) -> None:
    """Counts the jobs made from schedule ticks and the ticks found missed by one firing."""
    if fired:
        SCHEDULE_TICKS.labels(queue).inc(fired)
    if missed:
        SCHEDULE_MISFIRES.labels(queue).inc(missed)


def record_throttled(queue: str) -> None:
    """Counts one claim refused by the queue's rate limit."""
    THROTTLED.labels(queue).inc()


def resp_connection(change: int) -> None:
    """A RESP connection opened (+1) or closed (-1)."""
    RESP_CONNECTIONS.inc(change)


def forget_process(pid: int) -> None:
    """A process of a multi-process server died (the RESP gateway, before it is started
    again): its live gauges (open RESP connections) no longer count."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        mark_process_dead(pid)


def record_resp_command(name: str) -> None:
    """Counts one RESP command: `name` is a command of the gateway's table or 'unknown' (the
    gateway keeps the label set bounded)."""
    RESP_COMMANDS.labels(name).inc()


class MetricsEvents(WorkerEvents):
    """The worker's lifecycle hooks, counted into this module's metrics. `queues`: the queues
    this worker serves, exported as `relayq_worker_up{queue} 1`."""

    def __init__(self, queues: Iterable[str] = (), endpoint: Any = None) -> None:
        self.queues = list(queues)
        self._endpoint = endpoint
        for name in self.queues:
            WORKER_UP.labels(name).set(1)

    def claimed(self, queue: str, jobs: list[Job[Any]], now_ms: float) -> None:
        record_claimed(queue, jobs, now_ms)

    def succeeded(self, job: Job[Any], duration_s: float) -> None:
        JOBS_SUCCEEDED.labels(job.queue).inc()
        RUN_SECONDS.labels(job.queue).observe(duration_s)

    def failed(self, job: Job[Any], duration_s: float, error: str) -> None:
        JOBS_FAILED.labels(job.queue).inc()
        RUN_SECONDS.labels(job.queue).observe(duration_s)

    def settled(self, job: Job[Any], kind: str, status: str) -> None:
        if status not in ("ok", "cancelled"):  # cancelled: its cancel was requested, not lost
            JOBS_LEASE_LOST.labels(job.queue).inc()

    def throttled(self, queue: str) -> None:
        record_throttled(queue)

    def reaped(self, queue: str, requeued: int, dead: int) -> None:
        if requeued:
            JOBS_REAPED.labels(queue, "requeued").inc(requeued)
        if dead:
            JOBS_REAPED.labels(queue, "dead").inc(dead)

    def schedules_fired(self, queue: str, fired: int, missed: int) -> None:
        record_schedules(queue, fired, missed)

    def close(self) -> None:
        """Stops the HTTP endpoint (if `serve_worker_metrics` started one) and marks the
        queues as no longer served."""
        for name in self.queues:
            with suppress(KeyError):  # another MetricsEvents of this process served it too
                WORKER_UP.remove(name)
        if self._endpoint is not None:
            server, thread = self._endpoint
            server.shutdown()
            server.server_close()
            thread.join(5)
            self._endpoint = None


# -- queue state from Redis, at scrape time -----------------------------------------------------

def _waiting(redis: RedisClient, names: Sequence[str]) -> dict[str, int]:
    """Workflows: the waiting jobs of each queue (relayq:{q}:waiting), in one round trip."""
    if not names:
        return {}
    with redis_errors():
        pipe = redis.pipeline(transaction=False)
        for name in names:
            pipe.zcard(QueueKeys(name).waiting)
        return dict(zip(names, pipe.execute()))


class QueueCollector:
    """Reads every queue's stats from Redis when scraped: `queues` names them (a list, or a
    function returning one); None means every queue that exists (`list_queues`)."""

    def __init__(self, redis: RedisClient,
                 queues: Sequence[str] | Callable[[], Sequence[str]] | None = None) -> None:
        self.redis = redis
        self.queues = queues

    def _names(self) -> Sequence[str]:
        if self.queues is None:
            return list_queues(self.redis)
        return self.queues() if callable(self.queues) else self.queues

    def collect(self) -> Iterator[Metric]:
        redis_up = GaugeMetricFamily("relayq_redis_up",
                                     "1 when this scrape could read queue state from Redis")
        try:
            stats = stats_many(self.redis, self._names())
            waiting = _waiting(self.redis, [s.queue for s in stats])
        except RelayqError as e:
            log_event(log, logging.WARNING, "metrics.redis_unavailable", error=e.message)
            redis_up.add_metric([], 0)
            yield redis_up
            return
        redis_up.add_metric([], 1)
        yield redis_up
        depth = GaugeMetricFamily("relayq_queue_depth", "Jobs in each state, read from Redis",
                                  labels=["queue", "state"])
        events = CounterMetricFamily(
            "relayq_queue_events", "Lifetime count of each job event on the queue, kept in "
            "Redis by the scripts (all processes)", labels=["queue", "event"])
        paused = GaugeMetricFamily("relayq_queue_paused", "1 while the queue is paused",
                                   labels=["queue"])
        latency = GaugeMetricFamily(
            "relayq_queue_latency_seconds", "Age of the oldest ready job (since it was due), "
            "0 when none, read from Redis", labels=["queue"])
        for s in stats:
            for state in DEPTH_STATES:
                depth.add_metric([s.queue, state], getattr(s, state))
            depth.add_metric([s.queue, "waiting"], waiting[s.queue])
            for event in TOTALS:
                events.add_metric([s.queue, event], s.totals.get(event, 0))
            paused.add_metric([s.queue], 1 if s.paused else 0)
            latency.add_metric([s.queue], s.latency_ms / 1000)
        yield from (depth, events, paused, latency)
        with suppress(RelayqError), redis_errors():  # the figures above stand without these
            yield self._groups([s.queue for s in stats])

    def _groups(self, names: Sequence[str]) -> Metric:
        """Fair queues: per queue, the groups with ready jobs, at their limit and throttled
        (counts only: a group's name is never a label). One pipelined round trip."""
        family = GaugeMetricFamily("relayq_queue_groups", "Groups of the queue (fair queues) "
                                   "with ready jobs, held at their concurrency limit, or "
                                   "waiting for a token", labels=["queue", "state"])
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            keys = QueueKeys(name)
            pipe.zcount(keys.groups, 1, "+inf")
            pipe.zcount(keys.gparked, "+inf", "+inf")
            pipe.zcount(keys.gparked, "-inf", "(+inf")
        counts = pipe.execute() if names else []
        for i, name in enumerate(names):
            for state, value in zip(("ready", "limited", "throttled"), counts[3 * i:3 * i + 3],
                                    strict=True):
                family.add_metric([name, state], value)
        return family


class _Forward:
    """Forwards another registry's metrics (the default one, with the event counters)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        return self.registry.collect()


def metrics_registry(redis: RedisClient,
                     queues: Sequence[str] | Callable[[], Sequence[str]] | None = None
                     ) -> CollectorRegistry:
    """A registry with everything a relayq process exports: the default registry (event
    counters, process metrics, the user's own) and the queue state of `queues` from Redis.
    Registering reads nothing: Redis is read at each scrape."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # the counts of every process of a multi-process server (relayq.api.cli), summed
        MultiProcessCollector(registry)
    else:
        registry.register(_Forward(REGISTRY))
    registry.register(QueueCollector(redis, queues))
    return registry


# -- serving ------------------------------------------------------------------------------------

def render_server_metrics(redis: RedisClient, accept: str | None = None,
                          queues: Sequence[str] | None = None) -> tuple[bytes, str]:
    """The body and Content-Type of a `/metrics` response: Prometheus text, or OpenMetrics
    when the `Accept` header asks for it. Every queue (or those named) is read from Redis."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(metrics_registry(redis, queues)), content_type


def parse_addr(addr: str) -> tuple[str, int]:
    """`host:port`, `[v6]:port` or `:port` (every interface) into (host, port)."""
    return parse_host_port(addr, "metrics address", any_host="0.0.0.0")


def serve_worker_metrics(addr: str, redis_url: str, queues: Sequence[str]) -> MetricsEvents:
    """Starts an HTTP endpoint on `addr` (any path answers with the metrics) exporting the
    worker's event metrics and the state of `queues`; returns the hooks to hand to the Worker.
    The endpoint runs in a daemon thread until `close()` or the process ends."""
    host, port = parse_addr(addr)
    registry = metrics_registry(connect(redis_url, socket_timeout=5), list(queues))
    try:
        endpoint = start_http_server(port, host, registry=registry)
    except OSError as e:
        raise RelayqError(f"cannot serve metrics on {addr}: {e.strerror or e}") from e
    log_event(log, logging.INFO, "metrics.serving", addr=f"{host}:{endpoint[0].server_port}")
    return MetricsEvents(queues, endpoint)
