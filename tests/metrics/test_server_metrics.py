"""`GET /metrics` on relayq-server: public, Prometheus text (OpenMetrics on request), counting
what the server's own routes did (enqueues that created jobs, claims, throttled claims) beside
the queue state read from Redis at scrape time."""

from __future__ import annotations

import urllib.request

import relayq
from relayq import Queue
from relayq.tools.redis_process import RedisProcess
from tests.support.helpers import wait_until
from tests.support.http import Api
from tests.support.promtools import promtool, sample
from tests.support.server import start_server


def scrape(api: Api) -> str:
    reply = api.call("GET", "/metrics", key=None)
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return reply.body.decode()


def test_the_routes_count_what_they_did(api: Api, q: Queue) -> None:
    path = f"/api/queues/{q.name}"
    assert api.call("POST", f"{path}/jobs", {"payload": 1, "idempotency_key": "k"}).status == 201
    assert api.call("POST", f"{path}/jobs", {"payload": 1, "idempotency_key": "k"}).status == 200
    batch = {"jobs": [{"payload": 2}, {"payload": 3, "idempotency_key": "k"}, {"payload": 4},
                      {"payload": 5}]}
    assert api.call("POST", f"{path}/jobs/batch", batch).status == 201
    assert api.call("POST", f"{path}/claim", {"count": 2}).status == 200
    assert api.call("PUT", f"{path}/rate-limit", {"rate": 0.001, "burst": 1}).status == 200
    assert api.call("POST", f"{path}/claim").status == 200  # the one token of the bucket
    throttled = api.call("POST", f"{path}/claim")
    assert throttled.status == 204 and "Retry-After" in throttled.headers
    text = scrape(api)
    mine = {"queue": q.name}
    assert sample(text, "relayq_jobs_enqueued_total", **mine) == 4  # duplicates are not new
    assert sample(text, "relayq_jobs_claimed_total", **mine) == 3
    assert sample(text, "relayq_job_wait_seconds_count", **mine) == 3
    assert sample(text, "relayq_rate_limit_throttled_total", **mine) == 1
    assert sample(text, "relayq_queue_depth", state="running", **mine) == 3
    assert sample(text, "relayq_queue_events_total", event="throttled", **mine) == 1
    assert sample(text, "relayq_redis_up") == 1


def test_queues_listed_with_queues_are_exported_before_their_first_use(api: Api) -> None:
    assert sample(scrape(api), "relayq_queue_depth", queue="listed-before-use",
                  state="ready") == 0


def test_openmetrics_on_request_and_promtool_accepts_the_text(api: Api, q: Queue) -> None:
    q.enqueue({})
    reply = api.call("GET", "/metrics", key=None,
                     headers={"Accept": "application/openmetrics-text;version=1.0.0"})
    assert reply.headers["Content-Type"].startswith("application/openmetrics-text")
    assert reply.body.decode().endswith("# EOF\n")
    checked = promtool("check", "metrics", stdin=scrape(api))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_server_of_two_workers_counts_for_both_whichever_answers(redis_url: str,
                                                                   queue_name: str) -> None:
    """Each request comes on a connection of its own, so enqueues and scrapes land on either
    worker process: every scrape gives the server's total, not one worker's share."""
    import urllib.request

    from tests.support.server import start_server

    server = start_server(redis_url, "--auth", "off", "--workers", "2")
    try:
        for n in range(20):
            request = urllib.request.Request(
                f"{server.url}/api/queues/{queue_name}/jobs", data=b'{"payload": %d}' % n,
                headers={"Content-Type": "application/json", "Connection": "close"})
            with urllib.request.urlopen(request, timeout=10) as reply:
                assert reply.status == 201
        for _ in range(10):
            with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as reply:
                text = reply.read().decode()
            assert sample(text, "relayq_jobs_enqueued_total", queue=queue_name) == 20
    finally:
        server.stop()


def test_the_servers_schedule_firer_counts_ticks_and_misfires() -> None:
    """relayq-server's main process fires schedules; its counters reach /metrics (the shared
    multiprocess directory), whichever worker process answers the scrape. On a Redis of its
    own: every relayq-server and worker on the session's Redis fires every queue's schedules,
    and the one that finds the missed ticks first counts them."""
    with RedisProcess() as redis_server:
        server = start_server(redis_server.url, "--auth", "off", "--workers", "2")
        client = relayq.connect(redis_server.url)
        try:
            q = Queue("ticking", client)
            q.schedule("tick", {}, every_ms=60_000, misfire="skip")
            key = q.keys.schedule("tick")
            seconds, micros = client.time()
            missed = int(seconds) * 1000 + int(micros) // 1000 - 120_000  # two ticks ago
            client.hset(key, "next", missed)
            client.zadd(q.keys.due_schedules, {"tick": missed})
            q.schedule("fast", {}, every_ms=100)
            mine = {"queue": q.name}

            def metrics() -> str:
                with urllib.request.urlopen(server.url + "/metrics", timeout=10) as reply:
                    return reply.read().decode()

            wait_until(lambda: (sample(metrics(), "relayq_schedule_ticks_fired_total", **mine)
                                or 0) >= 3, timeout=15, message="ticks counted")
            assert sample(metrics(), "relayq_schedule_misfires_total", **mine) == 2
        finally:
            client.close()
            server.stop()
