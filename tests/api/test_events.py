"""`GET /api/events`: Server-Sent Events with stats snapshots and job state changes, fed by one
Redis subscription per server process whatever the number of clients."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from relayq import Queue
from tests.support.helpers import wait_until
from tests.support.http import Api, EventStream
from tests.support.server import start_server


@pytest.fixture
def stream(server, admin_key: str, q: Queue) -> Iterator[EventStream]:
    s = EventStream(server.url, admin_key, f"?queue={q.name}")
    yield s
    s.close()


def test_the_stream_starts_with_stats(stream: EventStream, q: Queue) -> None:
    assert stream.response.status == 200
    assert stream.response.getheader("Content-Type").startswith("text/event-stream")
    event, data = stream.next()
    assert event == "stats" and [s["queue"] for s in data["queues"]] == [q.name]


def test_job_state_changes_arrive_with_public_ids(stream: EventStream, q: Queue) -> None:
    stream.next_of("stats")
    job_id = q.enqueue({"n": 1}).id
    assert stream.next_of("job") == {"queue": q.name, "state": "ready", "ids": [job_id]}
    (job,) = q.claim()
    assert stream.next_of("job") == {"queue": q.name, "state": "running", "ids": [job_id]}
    q.ack(job_id, job.lease or "")
    assert stream.next_of("job")["state"] == "succeeded"


def test_stats_come_about_every_second(stream: EventStream, q: Queue) -> None:
    stream.next_of("stats")
    q.enqueue({"n": 1})
    started = time.monotonic()
    snapshots = [stream.next_of("stats") for _ in range(2)]
    assert time.monotonic() - started < 6
    assert snapshots[-1]["queues"][0]["ready"] == 1


def test_the_queue_filter_keeps_other_queues_out(stream: EventStream, q: Queue, r) -> None:
    stream.next_of("stats")
    Queue(q.name + "-other", r).enqueue({"n": 1})
    mine = q.enqueue({"n": 2}).id
    assert stream.next_of("job")["ids"] == [mine]


def test_many_clients_share_one_redis_subscription(api: Api, server, admin_key: str,
                                                   r, q: Queue) -> None:
    open_streams = lambda: api.call("GET", "/healthz").body["event_streams"]  # noqa: E731
    wait_until(lambda: open_streams() == 0, message="earlier streams to be let go")
    streams = [EventStream(server.url, admin_key) for _ in range(3)]
    try:
        for s in streams:
            s.next_of("stats")
        assert open_streams() == 3
        assert r.execute_command("PUBSUB", "NUMPAT") == 1
        job_id = q.enqueue({"n": 1}).id
        for s in streams:
            data = s.next_of("job")
            while job_id not in data["ids"]:
                data = s.next_of("job")
    finally:
        for s in streams:
            s.close()
    wait_until(lambda: open_streams() == 0, message="closed streams to be let go")


def test_streams_over_the_cap_get_503(redis_url: str) -> None:
    server = start_server(redis_url, "--auth", "off", "--max-event-streams", "1")
    try:
        first = EventStream(server.url, None)
        first.next_of("stats")
        second = EventStream(server.url, None)
        assert second.response.status == 503
        assert json.loads(second.response.read())["error"]["code"] == "server_busy"
        assert second.response.getheader("Retry-After") == "1"
        first.close()
        second.close()
    finally:
        server.stop()
