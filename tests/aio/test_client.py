"""relayq.aio.Client against a real relayq-server, each test run on both twins (relayq.Client
and relayq.aio.Client): every operation, the same exception for each error reply, and the same
calls retried."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

import relayq.aio
from relayq import (
    Conflict,
    Forbidden,
    InvalidArgument,
    InvalidJobId,
    InvalidQueueName,
    JobNotFound,
    LeaseLost,
    NewJob,
    PayloadTooLarge,
    Queue,
    RedisUnavailable,
    ServerUnavailable,
    Unauthorized,
)
from relayq.tools.redis_process import free_port
from relayq.tools.server_process import ServerProcess
from tests.sdk.test_client import _requests_seen, redis_down_server  # noqa: F401 - fixture
from tests.support.helpers import wait_until
from tests.support.server import ROOT

KINDS = ["sync", "aio"]


def test_produce_work_and_wait(twin_client: Any, q: Queue) -> None:
    res = twin_client.enqueue(q.name, {"to": "ada"}, type="email", priority=2)
    assert (res.state, res.duplicate) == ("ready", False)
    assert [r.state for r in twin_client.enqueue_many(q.name, [NewJob(1), 2])] == ["ready"] * 2
    job = list(twin_client.claim(q.name, 1, worker_id="w"))[0]
    assert (job.id, job.payload, job.type) == (res.id, {"to": "ada"}, "email")
    assert twin_client.heartbeat(job.id, job.lease, 60_000) > 0
    twin_client.ack(job.id, job.lease, {"ok": 1})
    seen: list[str] = []
    done = twin_client.wait(res.id, timeout=5, on_change=lambda j: seen.append(j.state))
    assert (done.state, done.result, seen) == ("succeeded", {"ok": 1}, ["succeeded"])
    other = list(twin_client.claim(q.name, 1))[0]
    assert twin_client.nack(other.id, other.lease, "boom", retry=False).state == "dead"
    page, cursor = twin_client.dead(q.name)
    assert [j.id for j in page] == [other.id] and cursor is None
    twin_client.requeue_dead_job(other.id)
    assert twin_client.requeue_all_dead(q.name) == 0
    assert twin_client.purge_all_dead(q.name) == 0
    ready, _ = twin_client.jobs(q.name, "ready", limit=10)
    assert len(ready) == 2
    with pytest.raises(TimeoutError):
        twin_client.wait(ready[0].id, timeout=0.05)


def test_operating_over_http(twin_client: Any, q: Queue) -> None:
    job_id = twin_client.enqueue(q.name, 1, delay_ms=60_000).id
    twin_client.pause(q.name)
    assert twin_client.stats(q.name).paused
    assert q.name in {s.queue for s in twin_client.queues()}
    twin_client.resume(q.name)
    twin_client.set_rate_limit(q.name, 10, 2)
    assert twin_client.stats(q.name).rate_limit is not None
    twin_client.clear_rate_limit(q.name)
    assert twin_client.settings(q.name) == q.settings()
    changed = twin_client.configure(q.name, group_max_running=2, group_rate=0.5, group_burst=1)
    assert changed == q.settings() and changed["group_rate"] == 0.5
    with pytest.raises(InvalidArgument, match="at least one"):
        twin_client.configure(q.name)  # refused before anything is sent
    with pytest.raises(InvalidArgument, match="max_running"):
        twin_client.configure(q.name, max_running=-1)
    twin_client.cancel(job_id)
    assert twin_client.get(job_id).state == "cancelled"
    assert isinstance(twin_client.workers(), list)
    key = twin_client.create_key("aio-test", ["jobs:read"])
    assert key["id"] in {k["id"] for k in twin_client.list_keys()}
    twin_client.revoke_key(key["id"])


def test_errors_map_to_the_same_exceptions(twin_client: Any, make_client: Any, server: Any,
                                           scoped_keys: dict[str, str], q: Queue,
                                           request: pytest.FixtureRequest) -> None:
    kind = request.node.callspec.params["twin_client"]
    with pytest.raises(InvalidQueueName):
        twin_client.enqueue("bad name", 1)  # refused before anything is sent
    with pytest.raises(InvalidJobId):
        twin_client.get("nonsense")
    with pytest.raises(InvalidArgument, match="priority"):
        twin_client.enqueue(q.name, 1, priority=300)
    with pytest.raises(PayloadTooLarge):
        twin_client.enqueue(q.name, "x" * (1024 * 1024 + 1))
    with pytest.raises(JobNotFound):
        twin_client.get(f"{q.name}.999999")
    job_id = twin_client.enqueue(q.name, 1).id
    job = list(twin_client.claim(q.name, 1))[0]
    with pytest.raises(LeaseLost):
        twin_client.ack(job_id, "not-the-lease")
    assert twin_client.cancel(job_id) == "running"  # running: its cancel is requested
    assert twin_client.ack(job_id, job.lease) == "cancelled"  # the cancel wins
    with pytest.raises(Conflict):  # a finished job
        twin_client.cancel(job_id)
    with pytest.raises(Unauthorized, match="RELAYQ_API_KEY"):
        make_client(kind, server.url, api_key="").stats(q.name)
    with pytest.raises(Forbidden):
        make_client(kind, server.url, scoped_keys["jobs:read"]).enqueue(q.name, 1)
    with pytest.raises(ServerUnavailable, match="not answering"):
        make_client(kind, f"http://127.0.0.1:{free_port()}", "k", retries=1,
                    backoff_s=0.01).stats(q.name)
    twin_client.ack(job.id, job.lease)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("call", "path", "sent"), [
    (lambda c, q: c.stats(q), "/api/queues/{q}", 2),                        # a read: retried
    (lambda c, q: c.enqueue(q, 1), "/api/queues/{q}/jobs", 1),              # not safe: once
    (lambda c, q: c.enqueue(q, 1, idempotency_key="k"), "/api/queues/{q}/jobs", 2),
    (lambda c, q: c.claim(q), "/api/queues/{q}/claim", 1),
    (lambda c, q: c.ack(f"{q}.1", "lease"), "/api/jobs/{q}.1/ack", 2),    # repeat-safe
], ids=["read", "enqueue", "idempotent-enqueue", "claim", "ack"])
def test_the_same_calls_are_retried(redis_down_server: Any, make_client: Any, kind: str,  # noqa: F811
                                    call: Any, path: str, sent: int,
                                    request: pytest.FixtureRequest) -> None:
    queue = f"retry-{kind}-{request.node.callspec.id.split('-')[0]}"
    path = path.format(q=queue)
    with pytest.raises(RedisUnavailable):
        call(make_client(kind, redis_down_server.url, retries=1, backoff_s=0.01), queue)
    wait_until(lambda: _requests_seen(redis_down_server, path) >= sent,
               message=f"{sent} requests logged")
    assert _requests_seen(redis_down_server, path) == sent


def test_import_relayq_does_not_need_httpx_or_load_aio() -> None:
    """`import relayq` (and relayq.aio.Queue) must work without the aio extra."""
    import subprocess
    import sys
    code = ("import sys; sys.modules['httpx'] = None; import relayq; "
            "assert 'relayq.aio' not in sys.modules; import relayq.aio; relayq.aio.Queue; "
            "assert 'relayq.aio.client' not in sys.modules")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_an_empty_long_poll(twin_client: Any, q: Queue) -> None:
    claimed = twin_client.claim(q.name, 1, wait_ms=50)
    assert len(claimed) == 0 and claimed.status == "empty"


def test_aio_events_resume_across_a_dropped_connection_without_gap_or_repeat(
        redis_url: str, q: Queue, loop: Any) -> None:
    server = ServerProcess(redis_url, "--auth", "off", "--workers", "1", cwd=ROOT).start()
    client = relayq.aio.Client(server.url, retries=0)

    async def follow() -> list[tuple[str, list[str]]]:
        # "from now" would be the first iteration: start after a known position instead
        events = client.events(q.name, since=q.last_event_id(), timeout=20)
        first_id = q.enqueue({"n": 0}).id
        assert (await events.__anext__()).job_ids == [first_id]
        server.kill()  # the connection drops
        missed = [q.enqueue({"n": n}).id for n in range(1, 4)]
        server.start()  # the same port: the stream reconnects after the last event it saw
        (job,) = q.claim()
        seen = [(e.type, e.job_ids) for e in [await events.__anext__() for _ in range(4)]]
        assert seen == [("ready", [i]) for i in missed] + [("running", [job.id])]
        await events.aclose()
        return seen

    try:
        loop.run_until_complete(follow())
    finally:
        loop.run_until_complete(client.aclose())
        server.stop()


def test_wait_returns_on_the_jobs_last_event_not_by_polling(twin_client: Any, q: Queue) -> None:
    jid = q.enqueue({}).id
    states: list[Any] = []

    def work() -> None:
        time.sleep(0.3)
        (job,) = q.claim()
        q.progress(jid, job.lease or "", 0.5)
        time.sleep(0.3)
        q.ack(jid, job.lease or "", {"ok": True})

    worker = threading.Thread(target=work)
    start = time.monotonic()
    worker.start()
    try:
        job = twin_client.wait(jid, timeout=10, on_change=lambda j: states.append(
            (j.state, j.progress)))
    finally:
        worker.join()
    # it re-reads the job only every WAIT_RECHECK_S (5 s) unless an event names it
    assert time.monotonic() - start < 2.5
    assert job.state == "succeeded" and job.result == {"ok": True}
    assert states[0] == ("ready", None) and ("running", 0.5) in states
    assert states[-1][0] == "succeeded"


def test_aio_events_refused_without_a_key(server: Any, q: Queue, loop: Any) -> None:
    client = relayq.aio.Client(server.url, retries=0)

    async def first() -> Any:
        return await client.events(q.name, timeout=1).__anext__()
    try:
        with pytest.raises(Unauthorized):
            loop.run_until_complete(first())
    finally:
        loop.run_until_complete(client.aclose())
