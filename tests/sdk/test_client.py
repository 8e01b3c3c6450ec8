"""`relayq.Client`, the HTTP SDK, against the real server: every operation, its exceptions, a
worker that runs over HTTP alone, and the retry policy (only calls safe to repeat are sent
again)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

import relayq
from relayq import (
    Client,
    Conflict,
    Forbidden,
    InvalidArgument,
    InvalidQueueName,
    JobNotFound,
    JobOptions,
    LeaseLost,
    NewJob,
    PayloadTooLarge,
    Queue,
    RedisUnavailable,
    ServerUnavailable,
    Unauthorized,
)
from relayq.tools.redis_process import RedisProcess, free_port
from tests.support.helpers import wait_until
from tests.support.server import start_server


def test_enqueue_options_and_get(client: Client, q: Queue) -> None:
    run_at = datetime.now(UTC) + timedelta(minutes=5)
    res = client.enqueue(q.name, {"to": "ada"}, type="email", priority=7, run_at=run_at,
                         max_attempts=2, idempotency_key="k")
    assert res.state == "scheduled" and not res.duplicate
    job = client.get(res.id)
    assert (job.payload, job.type, job.priority, job.max_attempts, job.state) == (
        {"to": "ada"}, "email", 7, 2, "scheduled")
    assert abs(job.run_at - run_at.timestamp() * 1000) <= 1
    assert client.enqueue(q.name, {}, idempotency_key="k") == (res.id, "scheduled", True)


def test_enqueue_many_sends_batches_of_1000(client: Client, q: Queue) -> None:
    jobs = [NewJob(i, JobOptions(priority=i % 2)) for i in range(1500)] + [1500]
    results = client.enqueue_many(q.name, jobs)
    assert len({r.id for r in results}) == 1501
    assert q.stats().ready == 1501
    assert q.stats().totals["enqueued"] == 1501


def test_a_worker_over_http_alone(server, admin_key: str, client: Client, q: Queue) -> None:
    """Claim with a long poll, heartbeat, ack or nack: nothing but the SDK."""
    stop = threading.Event()

    def work() -> None:
        with Client(server.url, admin_key) as worker:
            while not stop.is_set():
                for job in worker.claim(q.name, 10, wait_ms=500, worker_id="http-worker"):
                    worker.heartbeat(job.id, job.lease or "", visibility_ms=60_000)
                    if job.payload.get("fail"):
                        worker.nack(job.id, job.lease or "", "asked to fail", retry=False)
                    else:
                        worker.ack(job.id, job.lease or "", {"double": job.payload["n"] * 2})

    thread = threading.Thread(target=work)
    thread.start()
    try:
        ids = [client.enqueue(q.name, {"n": n, "fail": n % 5 == 0}).id for n in range(20)]
        done = [client.wait(i, timeout=30) for i in ids]
    finally:
        stop.set()
        thread.join(10)
    for n, job in enumerate(done):
        if n % 5 == 0:
            assert job.state == "dead" and job.last_error == "asked to fail"
        else:
            assert job.state == "succeeded" and job.result == {"double": 2 * n}


def test_wait_times_out(client: Client, q: Queue) -> None:
    job_id = client.enqueue(q.name, 1).id
    with pytest.raises(TimeoutError, match="still ready"):
        client.wait(job_id, timeout=0.2)


def test_claim_ack_nack_heartbeat_and_their_errors(client: Client, q: Queue) -> None:
    a, b = client.enqueue(q.name, "a").id, client.enqueue(q.name, "b").id
    claimed = client.claim(q.name, 2, visibility_ms=5000)
    assert [j.id for j in claimed] == [a, b] and all(j.lease for j in claimed)
    ja, jb = claimed
    deadline = client.heartbeat(a, ja.lease, visibility_ms=120_000)
    assert deadline >= ja.lease_deadline + 100_000
    client.ack(a, ja.lease, "ok")
    client.ack(a, ja.lease, "ok")  # a repeat by the holder is answered the same
    with pytest.raises(LeaseLost):
        client.ack(b, "stale")
    outcome = client.nack(b, jb.lease, "later", delay_ms=60_000)
    assert outcome.state == "scheduled" and outcome.attempts == 1 and outcome.run_at
    with pytest.raises(JobNotFound):
        client.ack(f"{q.name}.42", "x")
    empty = client.claim(q.name)
    assert list(empty) == [] and empty.status == "empty"


def test_cancel(client: Client, q: Queue) -> None:
    ready = client.enqueue(q.name, 1).id
    assert client.cancel(ready) == "cancelled"
    assert client.get(ready).state == "cancelled"
    with pytest.raises(Conflict):
        client.cancel(ready)  # finished
    running = client.enqueue(q.name, 2).id
    (job,) = client.claim(q.name)
    assert client.cancel(running) == "running"
    assert client.get(running).cancel_requested is True
    assert client.progress(running, job.lease or "", 0.5, {"step": 1}) is True  # stop, then
    assert client.get(running).progress == 0.5
    assert client.ack(running, job.lease or "") == "cancelled"
    assert client.get(running).state == "cancelled"


def test_stats_queues_pause_and_rate_limit(client: Client, q: Queue) -> None:
    client.enqueue_many(q.name, [1, 2, 3])
    client.pause(q.name)
    assert client.stats(q.name).paused and client.claim(q.name).status == "empty"
    client.resume(q.name)
    client.set_rate_limit(q.name, 0.5, burst=1)
    assert client.stats(q.name).rate_limit == {"rate": 0.5, "burst": 1}
    assert len(client.claim(q.name)) == 1
    throttled = client.claim(q.name)
    assert throttled.status == "throttled" and 1000 <= throttled.retry_in_ms <= 2000
    client.clear_rate_limit(q.name)
    assert len(client.claim(q.name, 5)) == 2
    assert q.name in {s.queue for s in client.queues()}
    assert client.stats(q.name).totals["claimed"] == 3


def test_dead_letter_operations(client: Client, q: Queue) -> None:
    ids = [client.enqueue(q.name, i, max_attempts=1).id for i in range(4)]
    for job in client.claim(q.name, 4):
        client.nack(job.id, job.lease or "", "fatal")
    page, cursor = client.dead(q.name, limit=3)
    assert [j.id for j in page] == ids[::-1][:3] and cursor
    assert [j.id for j in client.dead(q.name, cursor=cursor)[0]] == [ids[0]]
    client.requeue_dead_job(ids[0])
    client.purge_dead_job(ids[1])
    with pytest.raises(JobNotFound):
        client.purge_dead_job(ids[1])
    assert client.requeue_all_dead(q.name) == 2
    assert client.purge_all_dead(q.name) == 0
    assert q.stats().ready == 3


def test_the_old_dead_letter_names_still_work_and_warn(client: Client, q: Queue) -> None:
    """requeue_dead/purge_dead meant one job or all, by whether an id was given: kept one
    release, with a DeprecationWarning that names the new spelling."""
    ids = [client.enqueue(q.name, i, max_attempts=1).id for i in range(3)]
    for job in client.claim(q.name, 3):
        client.nack(job.id, job.lease or "", "fatal")
    with pytest.warns(DeprecationWarning, match="use requeue_dead_job"):
        assert client.requeue_dead(q.name, ids[0]) == 1
    with pytest.warns(DeprecationWarning, match="purge_all_dead"):
        assert client.purge_dead(q.name, ids[1]) == 1
    with pytest.warns(DeprecationWarning):
        assert client.requeue_dead(q.name) == 1
    with pytest.warns(DeprecationWarning):
        assert client.purge_dead(q.name) == 0
    assert q.stats().ready == 2
    with pytest.warns(DeprecationWarning, match="Queue.replication"):
        assert q.wait is q.replication
    with pytest.warns(DeprecationWarning, match="Queue.requeue_dead"):
        assert q.requeue_dead() == 0
    with pytest.warns(DeprecationWarning, match="Queue.purge_dead"), \
            pytest.raises(JobNotFound):
        q.purge_dead(ids[0])  # not dead any more: the old name still checks


def test_keys_over_http(client: Client, server, q: Queue) -> None:
    made = client.create_key("sdk-made", ["jobs:read"])
    assert made["key"].startswith("rq_") and made["scopes"] == ["jobs:read"]
    assert made["id"] in {k["id"] for k in client.list_keys()}
    reader = Client(server.url, made["key"])
    assert reader.stats(q.name).ready == 0
    with pytest.raises(Forbidden):
        reader.enqueue(q.name, 1)
    client.revoke_key(made["id"])
    with pytest.raises(Unauthorized):
        reader.stats(q.name)
    reader.close()


def test_errors_map_to_relayq_exceptions(client: Client, server, q: Queue) -> None:
    with pytest.raises(InvalidQueueName):
        client.enqueue("bad name", 1)  # refused before anything is sent
    with pytest.raises(InvalidArgument, match="priority"):
        client.enqueue(q.name, 1, priority=300)
    with pytest.raises(PayloadTooLarge):
        client.enqueue(q.name, "x" * (1024 * 1024 + 1))
    with pytest.raises(Unauthorized), Client(server.url, api_key="") as anonymous:
        anonymous.stats(q.name)
    assert q.stats().ready == 0


def test_server_and_key_come_from_the_environment(monkeypatch, server, admin_key: str,
                                                  q: Queue) -> None:
    monkeypatch.setenv("RELAYQ_SERVER", server.url)
    monkeypatch.setenv("RELAYQ_API_KEY", admin_key)
    with Client() as from_env:
        assert from_env.server == server.url
        assert from_env.stats(q.name).queue == q.name


def test_an_unreachable_server_is_server_unavailable() -> None:
    with Client(f"http://127.0.0.1:{free_port()}", "k", retries=2, backoff_s=0.01) as c, \
            pytest.raises(ServerUnavailable):
        c.stats("q")


# -- retries: a server whose Redis is down answers 503 --------------------------------------

@pytest.fixture(scope="module")
def redis_down_server() -> Iterator[str]:
    redis_server = RedisProcess().start()
    server = start_server(redis_server.url, "--auth", "off")
    redis_server.stop()
    yield server
    server.stop()


def _requests_seen(server, path: str) -> int:
    return server.stderr.count(f"path={path} status=503")


@pytest.mark.parametrize(("call", "path", "sent"), [
    (lambda c: c.stats("r1"), "/api/queues/r1", 2),                       # a read: retried
    (lambda c: c.enqueue("r2", 1), "/api/queues/r2/jobs", 1),             # not safe: once
    (lambda c: c.enqueue("r3", 1, idempotency_key="k"), "/api/queues/r3/jobs", 2),
    (lambda c: c.claim("r4"), "/api/queues/r4/claim", 1),
    (lambda c: c.ack("r5.1", "lease"), "/api/jobs/r5.1/ack", 2),          # repeat-safe
])
def test_only_calls_safe_to_repeat_are_retried(redis_down_server, call, path: str,
                                               sent: int) -> None:
    with Client(redis_down_server.url, retries=1, backoff_s=0.01) as c, \
            pytest.raises(RedisUnavailable):
        call(c)
    wait_until(lambda: _requests_seen(redis_down_server, path) >= sent,
               message=f"{sent} requests logged")
    assert _requests_seen(redis_down_server, path) == sent


def test_relayq_exports_the_client() -> None:
    assert relayq.Client is Client and "Client" in relayq.__all__


def test_a_body_over_the_limit_is_refused_from_its_length(redis_down_server) -> None:
    """The server answers 413 from the Content-Length alone, without reading the body."""
    with Client(redis_down_server.url) as c, pytest.raises(PayloadTooLarge):
        c.enqueue("big", "x" * (33 * 1024 * 1024))


def test_jobs_of_a_state_and_a_jobs_history(client: Client, q: Queue) -> None:
    ids = [q.enqueue(n, type="mail" if n else "other").id for n in range(3)]
    jobs, cursor = client.jobs(q.name, "ready", limit=2)
    assert [j.id for j in jobs] == ids[:2] and cursor is not None
    rest, cursor = client.jobs(q.name, "ready", cursor=cursor)
    assert [j.id for j in rest] == ids[2:] and cursor is None
    assert [j.id for j in client.jobs(q.name, "ready", search="MAIL")[0]] == ids[1:]
    job = q.claim(worker_id="sdk-worker")[0]
    q.nack(job.id, job.lease, "boom", delay_ms=60_000)
    (listed,), _ = client.jobs(q.name, "scheduled")
    assert listed.id == job.id and listed.history is None  # listings do not read it
    (attempt,) = client.get(job.id).history
    assert (attempt.worker_id, attempt.outcome, attempt.error) == ("sdk-worker", "retried",
                                                                   "boom")
    assert attempt.started_at <= attempt.finished_at  # epoch ms again
    with pytest.raises(InvalidArgument):
        client.jobs(q.name, "sleeping")


def test_workers_and_latency(client: Client, q: Queue, redis_url: str) -> None:
    q.enqueue(1)
    assert client.stats(q.name).latency_ms >= 0
    worker = relayq.Worker([q.name], relayq.App(), redis_url, concurrency=2,
                           registry_interval_s=0.1)
    worker.start()
    try:
        mine = wait_until(lambda: [w for w in client.workers() if w.id == worker.worker_id],
                          message="the worker in the registry")[0]
        assert (mine.queues, mine.concurrency) == ([q.name], 2)
        assert mine.started_at <= mine.last_seen_at  # epoch ms
    finally:
        worker.stop(grace_s=0)
    assert not [w for w in client.workers() if w.id == worker.worker_id]
    assert client.stats(q.name).latency_ms == 0  # the worker took the job (no handler: dead)
