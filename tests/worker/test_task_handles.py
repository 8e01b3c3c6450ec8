"""Task handles: `@app.task` returns the function, which also enqueues jobs for itself, typed by
its name, on its queue, through the app's Redis (real redis-server, real Worker)."""

from __future__ import annotations

from typing import Any

import pytest

import relayq
from relayq import App, InvalidArgument, JobOptions, NewJob, Queue, RelayqError, Worker
from relayq.tools.redis_process import free_port
from relayq.worker import Task
from tests.support.helpers import keyspace, wait_until


def test_a_handle_enqueues_typed_jobs_on_its_queue_and_is_still_the_function(
        redis_url: str, queue_name: str) -> None:
    app = App("shop", queue=queue_name, redis=redis_url)
    other = f"{queue_name}-emails"

    @app.task
    def add(payload: dict[str, int]) -> int:
        return payload["a"] + payload["b"]

    @app.task(queue=other, name="emails.send")
    def send_email(payload: dict[str, str]) -> dict[str, bool]:
        return {"sent": True}

    assert add({"a": 1, "b": 2}) == 3  # a unit test of the handler needs no Redis
    assert (add.queue, send_email.queue) == (queue_name, other)
    assert app.queue_names() == [queue_name, other]

    job = add.enqueue({"a": 2, "b": 3}, priority=7, max_attempts=2)
    mail = send_email.enqueue({"to": "ada@example.com"}, delay_ms=60_000)
    q, emails = Queue(queue_name, redis_url), Queue(other, redis_url)
    stored = q.get(job.id)
    assert (stored.type, stored.priority, stored.max_attempts) == ("add", 7, 2)
    assert emails.get(mail.id).type == "emails.send" and mail.state == "scheduled"

    worker = Worker([queue_name], app, concurrency=1, grace_s=1)  # Redis: the app's
    worker.start()
    try:
        wait_until(lambda: q.get(job.id).state == "succeeded", message="the job ran")
    finally:
        worker.stop()
    assert q.get(job.id).result == 5


def test_enqueue_many_types_every_job(r: Any, queue_name: str) -> None:
    app = App(queue=queue_name, redis=r)

    @app.task
    def resize(payload: Any) -> None:
        return None

    results = resize.enqueue_many(
        [{"n": 1}, NewJob({"n": 2}, JobOptions(priority=9)), {"n": 3}], priority=4)
    q = Queue(queue_name, r)
    jobs = [q.get(res.id) for res in results]
    assert [(j.payload, j.type, j.priority) for j in jobs] == [
        ({"n": 1}, "resize", 4), ({"n": 2}, "resize", 9), ({"n": 3}, "resize", 4)]


def test_another_type_is_refused_and_nothing_is_written(r: Any, queue_name: str) -> None:
    app = App(queue=queue_name, redis=r)

    @app.task
    def resize(payload: Any) -> None:
        return None

    before = keyspace(r, queue_name)
    with pytest.raises(InvalidArgument, match="have type 'resize', not 'crop'"):
        resize.enqueue({}, type="crop")
    with pytest.raises(InvalidArgument, match="not 'crop'"):
        resize.enqueue_many([{}, NewJob({}, JobOptions(type="crop"))])
    assert keyspace(r, queue_name) == before
    assert resize.enqueue({}, type="resize").id  # its own name is no conflict


def test_the_default_queue_and_redis(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> None:
    """App() without arguments: queue "default", Redis from $RELAYQ_REDIS_URL, connected only
    at the first enqueue (importing a task module never touches Redis)."""
    monkeypatch.setenv("RELAYQ_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    app = App()

    @app.task
    def ping(payload: Any) -> str:
        return "pong"

    assert ping.queue == "default" and app.queue_names() == ["default"]
    with pytest.raises(relayq.RedisUnavailable):
        ping.enqueue({})  # the closed port of the environment, not localhost:6379
    app.use_redis(redis_url)
    queue = app.queue()
    job = ping.enqueue({})
    assert queue.name == "default" and queue.get(job.id).type == "ping"
    queue.cancel(job.id)


def test_a_task_outside_an_app_cannot_enqueue() -> None:
    task = Task(lambda payload: payload, "loose")
    assert task(1) == 1
    with pytest.raises(RelayqError, match="belongs to no App"):
        task.enqueue({})
