"""`GET /api/events`: Server-Sent Events with stats snapshots and job state changes, fed by one
Redis subscription per server process whatever the number of clients; a queue's stream comes
from its durable event log and resumes (Last-Event-ID, ?since=) with no gap and no repeat,
across a dropped connection and a server restart, with a `reset` when the log lost the
position."""

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
    ready = stream.next_of("job")
    assert {k: ready[k] for k in ("queue", "state", "ids")} == {
        "queue": q.name, "state": "ready", "ids": [job_id]}
    assert ready["id"] == q.read_events("0-0")[0].id and ready["at"].endswith("Z")
    (job,) = q.claim()
    assert stream.next_of("job")["state"] == "running"
    q.progress(job_id, job.lease or "", 0.5, {"step": 2})
    progress = stream.next_of("job")
    assert (progress["state"], progress["progress"], progress["progress_info"]) == (
        "progress", 0.5, {"step": 2})
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


def _states(stream: EventStream, count: int) -> list[tuple[str, list[str]]]:
    return [(e["state"], e["ids"]) for e in (stream.next_of("job") for _ in range(count))]


def test_a_queue_stream_resumes_after_last_event_id_with_no_gap_and_no_repeat(
        server, admin_key: str, q: Queue) -> None:
    first = EventStream(server.url, admin_key, f"?queue={q.name}")
    ids = [q.enqueue({"n": n}).id for n in range(3)]
    seen = [first.next_of("job") for _ in range(2)]
    first.close()  # the connection drops after two of three events
    ids += [q.enqueue({"n": n}).id for n in range(3, 5)]  # while nobody listens
    again = EventStream(server.url, admin_key, f"?queue={q.name}",
                        {"Last-Event-ID": seen[-1]["id"]})
    try:
        assert _states(again, 3) == [("ready", [i]) for i in ids[2:]]
    finally:
        again.close()
    since = EventStream(server.url, admin_key, f"?queue={q.name}&since={seen[0]['id']}")
    try:
        assert _states(since, 4) == [("ready", [i]) for i in ids[1:]]
    finally:
        since.close()


def test_a_queue_stream_resumes_across_a_server_restart(redis_url: str, q: Queue) -> None:
    server = start_server(redis_url, "--auth", "off")
    try:
        stream = EventStream(server.url, None, f"?queue={q.name}")
        q.enqueue({"n": 0})
        last = stream.next_of("job")["id"]
        stream.close()
        server.stop()
        missed = [q.enqueue({"n": n}).id for n in range(1, 4)]  # while the server is down
        server = start_server(redis_url, "--auth", "off")
        stream = EventStream(server.url, None, f"?queue={q.name}", {"Last-Event-ID": last})
        try:
            assert _states(stream, 3) == [("ready", [i]) for i in missed]
        finally:
            stream.close()
    finally:
        server.stop()


def test_a_position_the_log_no_longer_holds_gives_a_reset(
        server, admin_key: str, q: Queue, r) -> None:
    q.configure(event_log_max=10)
    for n in range(300):  # one entry each; the log is trimmed by whole nodes of 100
        q.enqueue({"n": n})
    assert r.xlen(q.keys.log) < 300
    oldest = q.read_events("0-0", 1)
    assert oldest[0].type == "reset"
    stream = EventStream(server.url, admin_key, f"?queue={q.name}&since=1-0")
    try:
        reset = stream.next_of("reset")
        assert reset["id"] == oldest[0].id
        following = stream.next_of("job")
        assert following["id"] == oldest[1].id  # then everything the log still holds
    finally:
        stream.close()


@pytest.mark.parametrize("where", ["query", "header"])
def test_a_malformed_position_is_400(api: Api, q: Queue, where: str) -> None:
    for bad in ("abc", "1-2-3", "-1", "1-", "99999999999999999999999-0"):
        if where == "query":
            reply = api.call("GET", f"/api/events?queue={q.name}&since={bad}")
        else:
            reply = api.call("GET", f"/api/events?queue={q.name}",
                             headers={"Last-Event-ID": bad})
        assert reply.status == 400 and reply.code == "invalid_event_id", bad
    reply = api.call("GET", "/api/events?since=1-0")  # a position needs its queue
    assert reply.status == 400 and reply.code == "invalid_argument"


def test_the_log_stays_bounded_under_load(q: Queue, r) -> None:
    q.configure(event_log_max=1000)
    for _ in range(30):
        q.enqueue_many([{"n": n} for n in range(100)])  # one entry per call
        for job in q.claim(100):  # one entry per claim, one per ack call
            q.ack(job.id, job.lease or "")
    assert r.xlen(q.keys.log) <= 1000 + 100  # approximate trimming: whole nodes
    assert r.xinfo_stream(q.keys.log)["entries-added"] > 3000
