"""A job's attempt history (lua/lib/history.lua), on the real Redis and on fakeredis: what nack
and reap record, the newest HISTORY_LIMIT kept, and that the list lives exactly as long as the
job's hash (finish gives it the hash's TTL, requeue clears it again, purge deletes it)."""

from __future__ import annotations

from typing import Any

from relayq import Queue
from relayq.limits import HISTORY_LIMIT, MAX_HISTORY_ERROR_BYTES
from tests.support.helpers import wait_until


def history_key(q: Queue, job_id: str) -> str:
    return q.keys.history(q.local_id(job_id))


def ttls(q: Queue, job_id: str) -> tuple[int, int]:
    local = q.local_id(job_id)
    return q.redis.pttl(q.keys.job(local)), q.redis.pttl(q.keys.history(local))


def fail_once(q: Queue, job_id: str, error: str = "boom", **claim: Any) -> None:
    job = q.claim(**claim)[0]
    assert job.id == job_id
    q.nack(job_id, job.lease, error, delay_ms=0)


def test_a_first_attempt_success_writes_no_history(any_q: Queue) -> None:
    job_id = any_q.enqueue(1).id
    job = any_q.claim()[0]
    any_q.ack(job_id, job.lease)
    assert not any_q.redis.exists(history_key(any_q, job_id))
    assert any_q.get(job_id).history == []


def test_nack_records_worker_times_outcome_and_error(any_q: Queue) -> None:
    job_id = any_q.enqueue(1, max_attempts=2).id
    fail_once(any_q, job_id, "ValueError: one", worker_id="w-1")
    job = any_q.claim(worker_id="w-2")[0]
    any_q.nack(job_id, job.lease, "ValueError: two")
    dead = any_q.get(job_id)
    assert dead.state == "dead"
    newest, oldest = dead.history
    assert (newest.worker_id, newest.outcome, newest.error) == ("w-2", "dead", "ValueError: two")
    assert (oldest.worker_id, oldest.outcome, oldest.error) == ("w-1", "retried",
                                                                "ValueError: one")
    assert newest.started_at == dead.started_at and newest.finished_at == dead.finished_at
    assert oldest.started_at <= oldest.finished_at <= newest.started_at


def test_the_newest_attempts_are_kept(any_q: Queue) -> None:
    job_id = any_q.enqueue(1, max_attempts=HISTORY_LIMIT + 5).id
    for n in range(HISTORY_LIMIT + 3):
        fail_once(any_q, job_id, f"failure {n}")
    history = any_q.get(job_id).history
    assert len(history) == HISTORY_LIMIT
    assert history[0].error == f"failure {HISTORY_LIMIT + 2}"
    assert history[-1].error == "failure 3"


def test_a_long_error_is_cut_on_a_character_boundary(any_q: Queue) -> None:
    job_id = any_q.enqueue(1).id
    text = "é" * MAX_HISTORY_ERROR_BYTES  # two bytes each: the cut falls inside one at first
    fail_once(any_q, job_id, "x" + text)
    (attempt,) = any_q.get(job_id).history
    assert attempt.error == ("x" + text)[:MAX_HISTORY_ERROR_BYTES // 2]
    assert len(attempt.error.encode()) == MAX_HISTORY_ERROR_BYTES - 1


def test_the_history_expires_with_the_job_after_a_success(any_q: Queue) -> None:
    job_id = any_q.enqueue(1).id
    fail_once(any_q, job_id)
    assert ttls(any_q, job_id) == (-1, -1)  # the job can still run: neither expires
    job = any_q.claim()[0]
    any_q.ack(job_id, job.lease)
    job_ttl, history_ttl = ttls(any_q, job_id)
    assert job_ttl > 0 and abs(job_ttl - history_ttl) < 1000


def test_requeue_keeps_the_history_and_purge_deletes_it(any_q: Queue) -> None:
    job_id = any_q.enqueue(1, max_attempts=1).id
    job = any_q.claim()[0]
    any_q.nack(job_id, job.lease, "boom")
    job_ttl, history_ttl = ttls(any_q, job_id)
    assert job_ttl > 0 and history_ttl > 0
    any_q.requeue_dead_job(job_id)
    assert ttls(any_q, job_id) == (-1, -1)
    assert [a.outcome for a in any_q.get(job_id).history] == ["dead"]
    job = any_q.claim()[0]
    any_q.nack(job_id, job.lease, "again")
    any_q.purge_dead_job(job_id)
    assert not any_q.redis.exists(history_key(any_q, job_id))


def test_cancel_expires_the_history_with_the_job(any_q: Queue) -> None:
    job_id = any_q.enqueue(1).id
    job = any_q.claim()[0]
    any_q.nack(job_id, job.lease, "boom", delay_ms=60_000)
    any_q.cancel(job_id)
    job_ttl, history_ttl = ttls(any_q, job_id)
    assert job_ttl > 0 and abs(job_ttl - history_ttl) < 1000


def test_reap_records_a_lost_attempt(q: Queue) -> None:
    job_id = q.enqueue(1, max_attempts=2).id
    q.claim(worker_id="gone-1", visibility_ms=1)
    wait_until(lambda: q.reap() == (1, 0), message="the first lease to expire")
    q.claim(worker_id="gone-2", visibility_ms=1)
    wait_until(lambda: q.reap() == (0, 1), message="the second lease to expire")
    job = q.get(job_id)
    assert job.state == "dead"
    assert [(a.worker_id, a.outcome, a.error) for a in job.history] == [
        ("gone-2", "dead", "lease expired: worker lost (attempts spent)"),
        ("gone-1", "reaped", "lease expired: worker lost")]
    job_ttl, history_ttl = ttls(q, job_id)
    assert job_ttl > 0 and abs(job_ttl - history_ttl) < 1000
