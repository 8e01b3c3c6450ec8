"""relayq/metrics.py against real components: a worker's lifecycle events, the Redis collector,
`promtool check metrics`, and a real Prometheus server scraping a real `relayq-server` and a
real `relayq-worker` process."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)

import relayq
from relayq import metrics
from relayq.auth import KeyStore
from relayq.errors import RelayqError
from relayq.job import Job
from relayq.tools.redis_process import free_port
from relayq.tools.server_process import ServerProcess
from relayq.worker.demo_app import demo_app
from relayq.worker.maintenance import Maintenance
from tests.support.helpers import wait_until, worker_process
from tests.support.promtools import (
    http_get,
    prometheus_server,
    promtool,
    sample,
    samples,
    wait_for_sample,
)

ROOT = Path(__file__).resolve().parents[2]


def render(r: Any) -> str:
    body, content_type = metrics.render_server_metrics(r)
    assert content_type.startswith("text/plain; version=0.0.4")
    return body.decode()


def test_worker_events_count_outcomes_and_times(r: Any, redis_url: str, queue_name: str) -> None:
    q = relayq.Queue(queue_name, r)
    for _ in range(3):
        q.enqueue({"sleep_ms": 1})
    q.enqueue({"fail": True}, max_attempts=1)
    events = metrics.MetricsEvents([queue_name])
    worker = relayq.Worker([queue_name], demo_app(0.0), redis_url, concurrency=2, events=events)
    worker.start()
    try:
        wait_until(lambda: (s := q.stats()).succeeded == 3 and s.dead == 1, message="4 jobs done")
    finally:
        worker.stop(grace_s=5)
    text = render(r)
    mine = {"queue": queue_name}
    assert sample(text, "relayq_jobs_claimed_total", **mine) == 4
    assert sample(text, "relayq_jobs_succeeded_total", **mine) == 3
    assert sample(text, "relayq_jobs_failed_total", **mine) == 1
    assert sample(text, "relayq_job_run_seconds_count", **mine) == 4
    assert sample(text, "relayq_job_wait_seconds_count", **mine) == 4
    assert sample(text, "relayq_worker_up", **mine) == 1
    # The Redis side agrees, and knows what only the nack script decides (dead, not retried).
    for event, count in {"enqueued": 4, "claimed": 4, "succeeded": 3, "failed": 1, "dead": 1,
                         "retried": 0}.items():
        assert sample(text, "relayq_queue_events_total", event=event, **mine) == count, event
    assert sample(text, "relayq_queue_depth", state="succeeded", **mine) == 3
    assert sample(text, "relayq_queue_depth", state="dead", **mine) == 1
    events.close()
    assert sample(render(r), "relayq_worker_up", **mine) is None


def test_wait_time_runs_from_due_time_to_start_on_the_redis_clock(queue_name: str) -> None:
    job = Job(id=f"{queue_name}.1", queue=queue_name, payload=None, state="running",
              created_at=1_000, run_at=61_000, started_at=63_500)
    metrics.record_claimed(queue_name, [job], now_ms=10**13)  # a wildly wrong local clock
    text = render_registry_only()
    bucket = "relayq_job_wait_seconds_bucket"
    assert sample(text, bucket, queue=queue_name, le="2.5") == 1  # 2.5 s: due -> start
    assert sample(text, bucket, queue=queue_name, le="1.0") == 0
    assert sample(text, "relayq_job_wait_seconds_sum", queue=queue_name) == 2.5


def render_registry_only() -> str:
    from prometheus_client import REGISTRY, generate_latest

    return generate_latest(REGISTRY).decode()


def test_reaped_throttled_enqueued_and_lease_lost_are_counted(queue_name: str) -> None:
    events = metrics.MetricsEvents()
    job = Job(id=f"{queue_name}.1", queue=queue_name, payload=None, state="running")
    events.reaped(queue_name, 2, 1)
    events.throttled(queue_name)
    events.settled(job, "ack", "lease_lost")
    events.settled(job, "ack", "ok")
    metrics.record_enqueued(queue_name, 5)
    metrics.record_enqueued(queue_name, 0)
    text = render_registry_only()
    assert sample(text, "relayq_jobs_reaped_total", queue=queue_name, outcome="requeued") == 2
    assert sample(text, "relayq_jobs_reaped_total", queue=queue_name, outcome="dead") == 1
    assert sample(text, "relayq_rate_limit_throttled_total", queue=queue_name) == 1
    assert sample(text, "relayq_jobs_lease_lost_total", queue=queue_name) == 1
    assert sample(text, "relayq_jobs_enqueued_total", queue=queue_name) == 5


def test_a_workers_maintenance_counts_schedule_ticks(r: Any, queue_name: str) -> None:
    q = relayq.Queue(queue_name, r)
    q.schedule("tick", {}, every_ms=100)
    maintenance = Maintenance([q], metrics.MetricsEvents())

    def counted() -> float | None:
        maintenance.tick()
        return sample(render_registry_only(), "relayq_schedule_ticks_fired_total",
                      queue=queue_name)

    fired = wait_until(counted, timeout=5, message="ticks counted")
    # the session's relayq-server may fire some of the ticks too: each is counted once, where
    # it was fired
    assert 1 <= fired <= q.stats().totals["enqueued"]


def test_collector_reads_a_hundred_queues_at_scrape_time(r: Any, queue_name: str) -> None:
    names = [f"{queue_name}-{i}" for i in range(100)]
    for i, name in enumerate(names):
        q = relayq.Queue(name, r)
        q.enqueue_many([{"n": n} for n in range(1 + i % 4)])
        if i % 10 == 0:
            q.enqueue({"later": True}, delay_ms=600_000)
    relayq.Queue(names[7], r).pause()
    scraped = samples(render(r))  # parsed once: the suite's Redis holds many more queues

    def value(name: str, **labels: str) -> float | None:
        return scraped.get((name, frozenset(labels.items())))

    assert value("relayq_redis_up") == 1
    for i, name in enumerate(names):
        assert value("relayq_queue_depth", queue=name, state="ready") == 1 + i % 4
        assert value("relayq_queue_depth", queue=name, state="scheduled") == (
            1 if i % 10 == 0 else 0)
        assert value("relayq_queue_paused", queue=name) == (1 if i == 7 else 0)
    # A later scrape sees later state: nothing is cached between scrapes.
    relayq.Queue(names[1], r).enqueue({"n": "more"})
    assert sample(render(r), "relayq_queue_depth", queue=names[1], state="ready") == 3


def test_latency_gauge_is_the_age_of_the_oldest_ready_job(r: Any, queue_name: str) -> None:
    q = relayq.Queue(queue_name, r)
    q.enqueue({"n": 1})
    wait_until(lambda: q.stats().latency_ms >= 100, message="the job to age")
    latency = sample(render(r), "relayq_queue_latency_seconds", queue=queue_name)
    assert 0.1 <= latency < 60
    q.claim()  # nothing ready: 0
    assert sample(render(r), "relayq_queue_latency_seconds", queue=queue_name) == 0


def test_collector_limited_to_named_queues(r: Any, queue_name: str) -> None:
    relayq.Queue(queue_name, r).enqueue({})
    relayq.Queue(queue_name + "-other", r).enqueue({})
    body, _ = metrics.render_server_metrics(r, queues=[queue_name])
    queues = {dict(labels).get("queue") for name, labels in samples(body.decode())
              if name == "relayq_queue_depth"}
    assert queues == {queue_name}


def test_redis_down_still_answers_with_redis_up_zero() -> None:
    nothing_there = relayq.connect(f"redis://127.0.0.1:{free_port()}/0", socket_timeout=1)
    text = render(nothing_there)
    assert sample(text, "relayq_redis_up") == 0
    assert not [name for name, _ in samples(text) if name.startswith("relayq_queue_")]


def test_exposition_passes_promtool_check_metrics(r: Any, queue_name: str) -> None:
    relayq.Queue(queue_name, r).enqueue({})
    metrics.record_enqueued(queue_name)
    result = promtool("check", "metrics", stdin=render(r))
    assert result.returncode == 0, result.stdout + result.stderr


def test_openmetrics_when_the_scraper_asks_for_it(r: Any, queue_name: str) -> None:
    relayq.Queue(queue_name, r).enqueue({})
    body, content_type = metrics.render_server_metrics(
        r, "application/openmetrics-text;version=1.0.0,text/plain;q=0.5")
    assert content_type.startswith("application/openmetrics-text")
    families = {f.name: f for f in openmetrics_families(body.decode())}
    assert families["relayq_queue_events"].type == "counter"
    assert families["relayq_queue_depth"].type == "gauge"


def test_parse_addr() -> None:
    assert metrics.parse_addr("127.0.0.1:9100") == ("127.0.0.1", 9100)
    assert metrics.parse_addr(":9100") == ("0.0.0.0", 9100)
    assert metrics.parse_addr("[::1]:9100") == ("::1", 9100)
    for bad in ("9100", "host:", "host:http", "host:70000", "host:\u00b2", "host:\u0663"):
        with pytest.raises(RelayqError, match="bad metrics address"):
            metrics.parse_addr(bad)


def test_serve_worker_metrics_answers_until_closed(redis_url: str,
                                                             queue_name: str) -> None:
    port = free_port()
    events = metrics.serve_worker_metrics(f"127.0.0.1:{port}", redis_url, [queue_name])
    try:
        text = wait_for_sample(f"http://127.0.0.1:{port}/metrics", "relayq_worker_up", 1,
                               queue=queue_name)
        assert sample(text, "relayq_queue_depth", queue=queue_name, state="ready") == 0
    finally:
        events.close()
    assert http_get(f"http://127.0.0.1:{port}/metrics", timeout=0.5) is None


def test_prometheus_scrapes_a_real_server_and_worker(r: Any, redis_url: str, queue_name: str,
                                                    tmp_path: Path) -> None:
    """End to end: jobs go in through a real `relayq-server` and run on a real `relayq-worker
    --metrics-addr`; a real Prometheus scrapes both every second, evaluates the shipped alert
    rules, and answers queries for relayq_ series from each."""
    port = free_port()
    key = KeyStore(r).create("prometheus-test", ["jobs:write"])[1]
    with ServerProcess(redis_url, cwd=ROOT) as server, worker_process(
            redis_url, queue_name, "--metrics-addr", f"127.0.0.1:{port}", "--concurrency", "2",
            "--demo-fail-rate", "0", log=tmp_path / "worker.log"):
        with relayq.Client(server.url, key) as client:
            client.enqueue_many(queue_name, [{"sleep_ms": 1}] * 5)
        wait_for_sample(f"http://127.0.0.1:{port}/metrics", "relayq_jobs_succeeded_total", 5,
                        queue=queue_name)
        config = f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: ["{ROOT / 'deployments/prometheus/alerts.yml'}"]
scrape_configs:
  - job_name: relayq-server
    static_configs: [{{targets: ["127.0.0.1:{server.port}"]}}]
  - job_name: relayq-worker
    static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
"""
        with prometheus_server(config, tmp_path / "prometheus") as prom:
            mine = f'queue="{queue_name}"'

            def value_by_job(expr: str) -> dict[str, str]:
                return {s["metric"]["job"]: s["value"][1] for s in prom.query(expr)}

            assert wait_until(
                lambda: len(value_by_job(f"relayq_queue_depth{{{mine},state=\"succeeded\"}}"))
                == 2, timeout=30, interval=0.25, message="Prometheus to have scraped both")
            # What each process counted itself: the server the enqueues, the worker the runs.
            assert value_by_job(f"relayq_jobs_enqueued_total{{{mine}}}") == {
                "relayq-server": "5"}
            assert value_by_job(f"relayq_jobs_succeeded_total{{{mine}}}") == {
                "relayq-worker": "5"}
            # The queue state both read from Redis, the same from each.
            assert value_by_job(f'max by (job) (relayq_queue_depth{{{mine},state="succeeded"}})'
                                ) == {"relayq-server": "5", "relayq-worker": "5"}
            assert value_by_job("up") == {"relayq-server": "1", "relayq-worker": "1"}

            def evaluated_rules() -> list[dict[str, Any]]:
                rules = [rule for g in prom.api("/api/v1/rules")["groups"] for rule in g["rules"]]
                return rules if all(rule["health"] != "unknown" for rule in rules) else []

            rules = wait_until(evaluated_rules, timeout=15, interval=0.25,
                               message="the alert rules to be evaluated")
            assert all(rule["health"] == "ok" for rule in rules), rules


def test_serve_worker_metrics_reports_a_busy_port() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(RelayqError, match="cannot serve metrics"):
            metrics.serve_worker_metrics(f"127.0.0.1:{s.getsockname()[1]}",
                                         "redis://127.0.0.1:1/0", [])


def test_waiting_jobs_are_counted_per_queue(r: Any, queue_name: str) -> None:
    """Workflows: relayq_queue_depth{state="waiting"} counts jobs waiting on their parents."""
    q = relayq.Queue(queue_name, r)
    parent = q.enqueue({}).id
    q.enqueue_many([relayq.NewJob(n, relayq.JobOptions(depends_on=[parent])) for n in range(3)])
    assert sample(render(r), "relayq_queue_depth", state="waiting", queue=queue_name) == 3
    job = q.claim(1)[0]
    q.ack(job.id, job.lease)
    assert sample(render(r), "relayq_queue_depth", state="waiting", queue=queue_name) == 0


def test_group_gauges_count_groups_and_never_name_them(r: Any, queue_name: str) -> None:
    """Fair queues: groups with ready jobs, at their limit, throttled; no group is a label."""
    q = relayq.Queue(queue_name, r)
    q.configure(group_max_running=1)
    q.set_group_limits("slow", max_running=0, rate=0.001, burst=1)  # its bucket holds it
    for group in ("a", "a", "b", "b", "slow", "slow", "c"):
        q.enqueue({}, group=group)
    q.claim(10)  # a and b at their limit, slow out of tokens, c drained
    text = render(r)
    for state, expected in (("ready", 3), ("limited", 2), ("throttled", 1)):
        assert sample(text, "relayq_queue_groups", queue=queue_name, state=state) == expected
    mine = [line for line in text.splitlines() if queue_name in line]
    assert mine and not any("group=" in line or "slow" in line for line in mine)
