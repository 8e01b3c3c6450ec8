"""Each transition's behaviour, through `Queue`, on a real redis-server and on fakeredis."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

import relayq
import relayq.results
from relayq import Conflict, InvalidArgument, JobNotFound, JobOptions, LeaseLost, NewJob, Queue
from tests.support.helpers import wait_until


def test_enqueue_then_get_shows_every_field(any_q: Queue) -> None:
    res = any_q.enqueue({"to": "a@b.c"}, type="email", priority=7, max_attempts=3,
                        idempotency_key="k-1", timeout_ms=5000)
    assert res.state == "ready" and res.duplicate is False
    assert res.id.startswith(any_q.name + ".")
    view = any_q.get(res.id).to_dict()
    assert view["payload"] == {"to": "a@b.c"}
    assert view["type"] == "email"
    assert (view["priority"], view["attempts"], view["max_attempts"]) == (7, 0, 3)
    assert view["state"] == "ready" and view["queue"] == any_q.name
    assert view["idempotency_key"] == "k-1" and view["timeout_ms"] == 5000
    assert view["created_at"].endswith("Z") and len(view["created_at"]) == 24
    assert view["run_at"] == view["created_at"]
    for absent in ("started_at", "finished_at", "lease_deadline", "worker_id", "result",
                   "last_error"):
        assert view[absent] is None


def test_ids_are_time_ordered_and_unique(any_q: Queue) -> None:
    ids = [r.id for r in any_q.enqueue_many(list(range(300)))]
    ids += [any_q.enqueue(i).id for i in range(50)]
    assert len(set(ids)) == 350
    numbers = [int(i.split(".")[1]) for i in ids]
    assert numbers == sorted(numbers)


def test_push_enqueues_and_answers_the_ready_count_after(any_q: Queue) -> None:
    """Queue.push (the RESP gateway's LPUSH): jobs of plain payloads and the ready count just
    after them, from the same round trip; a refused payload writes nothing."""
    results, ready = any_q.push([{"n": 1}, "two"])
    assert ready == 2 and [r.state for r in results] == ["ready", "ready"]
    assert any_q.get(results[1].id).payload == "two"
    assert any_q.name in relayq.list_queues(any_q.redis)  # listed, as by enqueue
    any_q.enqueue({"n": 3}, delay_ms=60_000)  # scheduled: not counted as ready
    results, ready = any_q.push([3])
    assert ready == 3 and len(results) == 1
    with pytest.raises(relayq.PayloadTooLarge):
        any_q.push([4, "x" * (any_q.max_payload_bytes + 1)])
    assert any_q.stats().ready == 3


def test_claim_takes_highest_priority_first_and_fifo_within(any_q: Queue) -> None:
    low = [any_q.enqueue({"n": i}, priority=1).id for i in range(3)]
    high = [any_q.enqueue({"n": i}, priority=200).id for i in range(3)]
    zero = [any_q.enqueue({"n": i}).id for i in range(2)]
    claimed = [j.id for j in any_q.claim(100)]
    assert claimed == high + low + zero


def test_claim_sets_running_fields_and_a_fresh_lease(any_q: Queue) -> None:
    jid = any_q.enqueue({"x": 1}).id
    (job,) = any_q.claim(1, visibility_ms=10_000, worker_id="w-1")
    assert job.id == jid and job.state == "running" and job.attempts == 1
    assert job.worker_id == "w-1" and job.lease
    assert 9_000 <= job.lease_deadline - job.started_at <= 10_000
    any_q.nack(jid, job.lease, "again", delay_ms=0)
    (again,) = any_q.claim(1)
    assert again.lease != job.lease and again.attempts == 2


def test_claim_reports_why_it_is_empty(any_q: Queue) -> None:
    empty = any_q.claim(5)
    assert list(empty) == [] and empty.status == "empty" and empty.retry_in_ms is None
    any_q.enqueue({}, delay_ms=60_000)
    scheduled = any_q.claim(5)
    assert scheduled.status == "empty" and 55_000 < scheduled.retry_in_ms <= 60_000


def test_ack_records_result_and_retention(any_q: Queue, any_r) -> None:
    jid = any_q.enqueue({"x": 1}).id
    (job,) = any_q.claim()
    any_q.ack(jid, job.lease, {"sum": 3})
    done = any_q.get(jid)
    assert done.state == "succeeded" and done.result == {"sum": 3}
    assert done.finished_at is not None and done.lease_deadline is None
    ttl = any_r.pttl(any_q.keys.job(any_q.local_id(jid)))
    assert 86_000_000 < ttl <= 86_400_000
    stats = any_q.stats()
    assert (stats.running, stats.succeeded, stats.totals["succeeded"]) == (0, 1, 1)


def test_ack_is_idempotent_for_the_holder_and_fenced_for_others(any_q: Queue) -> None:
    jid = any_q.enqueue({}).id
    (job,) = any_q.claim()
    any_q.ack(jid, job.lease, 1)
    any_q.ack(jid, job.lease, 1)  # a retry after a lost reply: fine, nothing changes
    assert any_q.stats().totals["succeeded"] == 1
    with pytest.raises(LeaseLost):
        any_q.ack(jid, "not-the-lease", 1)


def test_stale_lease_is_refused_everywhere(any_q: Queue) -> None:
    jid = any_q.enqueue({}).id
    (first,) = any_q.claim()
    any_q.nack(jid, first.lease, "retry now", delay_ms=0)
    (second,) = any_q.claim()
    for call in (lambda: any_q.ack(jid, first.lease),
                 lambda: any_q.heartbeat(jid, first.lease),
                 lambda: any_q.nack(jid, first.lease, "x")):
        with pytest.raises(LeaseLost):
            call()
    assert any_q.release_many([(jid, first.lease)]) == ["lease_lost"]
    any_q.ack(jid, second.lease)
    assert any_q.get(jid).state == "succeeded"


def test_unknown_job_is_not_found(any_q: Queue) -> None:
    missing = f"{any_q.name}.1700000000000000001"
    with pytest.raises(JobNotFound):
        any_q.get(missing)
    with pytest.raises(JobNotFound):
        any_q.ack(missing, "lease")
    with pytest.raises(JobNotFound):
        any_q.cancel(missing)
    with pytest.raises(JobNotFound):
        any_q.requeue_dead_job(missing)


def test_nack_backs_off_within_full_jitter_bounds(any_q: Queue) -> None:
    any_q.configure(backoff_base_ms=1000, backoff_cap_ms=5000)
    for attempt in range(1, 5):
        jid = any_q.enqueue({}, max_attempts=10).id
        for _ in range(attempt - 1):  # spend attempts without waiting for backoffs
            (job,) = any_q.claim()
            any_q.nack(jid, job.lease, "fail", delay_ms=0)
        (job,) = any_q.claim()
        assert job.attempts == attempt
        before = time.time() * 1000
        res = any_q.nack(jid, job.lease, "fail")
        after = time.time() * 1000
        ceiling = min(5000, 1000 * 2 ** attempt)
        if res.state == "scheduled":  # due = (Redis now, within [before, after]) + delay
            assert before - 5 <= res.run_at <= after + ceiling + 5
        else:
            assert res.state == "ready"  # jitter drew 0 ms
        any_q.cancel(jid)


def test_nack_delay_zero_is_ready_and_explicit_delay_is_scheduled(any_q: Queue) -> None:
    a = any_q.enqueue({}).id
    b = any_q.enqueue({}).id
    ja, jb = any_q.claim(2)
    assert any_q.nack(a, ja.lease, "now", delay_ms=0).state == "ready"
    res = any_q.nack(b, jb.lease, "later", delay_ms=30_000)
    assert res.state == "scheduled" and res.attempts == 1
    job = any_q.get(b)
    assert job.state == "scheduled" and job.last_error == "later" and job.run_at == res.run_at


def test_nack_without_retry_and_spent_attempts_go_dead(any_q: Queue) -> None:
    a = any_q.enqueue({}).id
    b = any_q.enqueue({}, max_attempts=1).id
    ja, jb = any_q.claim(2)
    assert any_q.nack(a, ja.lease, "bad input", retry=False).state == "dead"
    assert any_q.nack(b, jb.lease, "last try").state == "dead"
    stats = any_q.stats()
    assert stats.dead == 2 and stats.totals["dead"] == 2 and stats.totals["failed"] == 2
    jobs, cursor = any_q.dead()
    assert [j.id for j in jobs] == [b, a] and cursor is None
    assert jobs[0].last_error == "last try"


def test_dead_letters_page_requeue_and_purge(any_q: Queue) -> None:
    ids = [r.id for r in any_q.enqueue_many([{"n": i} for i in range(5)])]
    for job in any_q.claim(5):
        any_q.nack(job.id, job.lease, "x", retry=False)
    page1, cursor = any_q.dead(limit=2)
    page2, cursor2 = any_q.dead(limit=2, cursor=cursor)
    page3, cursor3 = any_q.dead(limit=2, cursor=cursor2)
    seen = [j.id for j in page1 + page2 + page3]
    assert sorted(seen) == sorted(ids) and cursor3 is None
    any_q.requeue_dead_job(ids[0])
    job = any_q.get(ids[0])
    assert job.state == "ready" and job.attempts == 0 and job.last_error == "x"
    any_q.purge_dead_job(ids[1])
    with pytest.raises(JobNotFound):
        any_q.get(ids[1])
    with pytest.raises(JobNotFound):
        any_q.purge_dead_job(ids[0])  # not dead any more
    assert any_q.requeue_all_dead() == 3
    assert any_q.stats().dead == 0 and any_q.stats().ready == 4


def test_purge_all_dead(any_q: Queue) -> None:
    any_q.enqueue_many([{"n": i} for i in range(3)])
    for job in any_q.claim(3):
        any_q.nack(job.id, job.lease, "x", retry=False)
    assert any_q.purge_all_dead() == 3
    assert any_q.stats().dead == 0


def test_heartbeat_extends_the_lease(any_q: Queue) -> None:
    jid = any_q.enqueue({}).id
    (job,) = any_q.claim(visibility_ms=1000)
    deadline = any_q.heartbeat(jid, job.lease, visibility_ms=60_000)
    assert deadline - job.lease_deadline > 55_000
    assert any_q.get(jid).lease_deadline == deadline


def test_cancel_before_start_and_requested_while_running(any_q: Queue) -> None:
    ready = any_q.enqueue({}, priority=3).id
    scheduled = any_q.enqueue({}, delay_ms=60_000).id
    running = any_q.enqueue({}, priority=9).id
    (job,) = any_q.claim()
    assert job.id == running
    assert any_q.cancel(ready) == "cancelled"
    assert any_q.cancel(scheduled) == "cancelled"
    assert any_q.get(ready).state == "cancelled"
    assert any_q.get(running).cancel_requested is False
    assert any_q.cancel(running) == "running"
    assert any_q.cancel(running) == "running"  # asked again: nothing more
    assert any_q.get(running).cancel_requested is True
    stats = any_q.stats()
    assert (stats.ready, stats.scheduled, stats.totals["cancelled"]) == (0, 0, 2)
    assert list(any_q.claim(5)) == []
    assert any_q.heartbeat_many([(running, job.lease)])[0].cancel_requested
    assert any_q.ack(running, job.lease, {"done": True}) == "cancelled"  # the cancel wins
    assert any_q.ack(running, job.lease, {"done": True}) == "cancelled"  # a retried ack
    after = any_q.get(running)
    assert (after.state, after.result) == ("cancelled", {"done": True})
    assert any_q.stats().totals["cancelled"] == 3 and any_q.stats().running == 0
    with pytest.raises(Conflict):
        any_q.cancel(running)
    with pytest.raises(JobNotFound):
        any_q.cancel(running[:-1] + ("1" if running[-1] != "1" else "2"))


def test_a_cancel_requested_job_ends_cancelled_on_nack_release_and_reap(any_q: Queue) -> None:
    ids = [any_q.enqueue({"n": n}, max_attempts=3).id for n in range(3)]
    jobs = {job.id: job for job in any_q.claim(3)}
    for jid in ids:
        any_q.cancel(jid)
    nacked = any_q.nack(ids[0], jobs[ids[0]].lease, "Cancelled")  # would retry otherwise
    assert nacked.state == "cancelled"
    assert any_q.release_many([(ids[1], jobs[ids[1]].lease)]) == ["cancelled"]
    any_q.redis.zadd(any_q.keys.running, {any_q.local_id(ids[2]): 0})  # its worker died
    assert any_q.reap() == (0, 0)
    for jid in ids:
        job = any_q.get(jid)
        assert job.state == "cancelled", jid
    assert [a.outcome for a in any_q.get(ids[2]).history or []] == ["cancelled"]
    stats = any_q.stats()
    assert (stats.ready, stats.running, stats.totals["cancelled"]) == (0, 0, 3)


def test_progress_is_fenced_checked_and_cleared_on_retry(any_q: Queue) -> None:
    jid = any_q.enqueue({}).id
    (job,) = any_q.claim()
    assert any_q.progress(jid, job.lease, 0.25, {"step": "one"}) is False
    seen = any_q.get(jid)
    assert (seen.progress, seen.progress_info) == (0.25, {"step": "one"})
    assert seen.to_dict()["progress"] == 0.25
    for bad in (-0.1, 1.5, float("nan"), "half", True):
        with pytest.raises(InvalidArgument):
            any_q.progress(jid, job.lease, bad)  # type: ignore[arg-type]
    with pytest.raises(LeaseLost):
        any_q.progress(jid, "stale", 0.5)
    any_q.nack(jid, job.lease, "again", delay_ms=0)
    assert any_q.get(jid).progress is None  # the next attempt reports its own


def test_delay_and_run_at_are_honoured_without_a_promoter(any_q: Queue) -> None:
    # a second: long enough that a loaded machine still checks both before they fall due
    jid = any_q.enqueue({}, delay_ms=1000).id
    at = any_q.enqueue({}, run_at=datetime.now(UTC) + timedelta(milliseconds=1000)).id
    assert any_q.get(jid).state == "scheduled"
    assert list(any_q.claim(5)) == []
    # the two fall due a few ms apart (run_at was computed after the first enqueue): collect
    # what each claim hands out until both came, or the deadline
    got: set[str] = set()

    def both_claimed() -> bool:
        got.update(j.id for j in any_q.claim(5))
        return len(got) >= 2

    wait_until(both_claimed, timeout=3, message="due jobs")
    assert got == {jid, at}


def test_run_at_in_the_past_is_ready_now(any_q: Queue) -> None:
    res = any_q.enqueue({}, run_at=datetime(2020, 1, 1, tzinfo=UTC))
    assert res.state == "ready"


def test_promote_moves_due_jobs_and_reports_next(any_q: Queue) -> None:
    any_q.enqueue({}, delay_ms=50)
    any_q.enqueue({}, delay_ms=60_000)
    time.sleep(0.1)
    moved, next_in = any_q.promote()
    assert moved == 1 and 55_000 < next_in <= 60_000
    assert any_q.stats().ready == 1


def test_idempotency_key_returns_the_original(any_q: Queue, any_r) -> None:
    first = any_q.enqueue({"n": 1}, idempotency_key="order-42")
    again = any_q.enqueue({"n": 2}, idempotency_key="order-42")
    assert again == relayq.EnqueueResult(first.id, "ready", True)
    assert any_q.stats().totals["enqueued"] == 1
    ttl = any_r.pttl(any_q.keys.idempotency("order-42"))
    assert 86_000_000 < ttl <= 86_400_000
    batch = any_q.enqueue_many([NewJob({"n": 3}, JobOptions(idempotency_key="b")),
                                NewJob({"n": 4}, JobOptions(idempotency_key="b"))])
    assert batch[1].duplicate and batch[1].id == batch[0].id


def test_idempotency_ttl_is_configurable(any_q: Queue) -> None:
    any_q.configure(idempotency_ttl_ms=100)
    first = any_q.enqueue({}, idempotency_key="k")
    time.sleep(0.2)
    second = any_q.enqueue({}, idempotency_key="k")
    assert not second.duplicate and second.id != first.id


def test_pause_holds_jobs_and_resume_releases_them(any_q: Queue) -> None:
    any_q.enqueue({})
    any_q.pause()
    res = any_q.claim()
    assert list(res) == [] and res.status == "paused"
    assert any_q.enqueue({}).state == "ready"  # a paused queue still accepts jobs
    assert any_q.stats().paused is True
    any_q.resume()
    assert len(any_q.claim(5)) == 2


def test_rate_limit_token_bucket(any_q: Queue) -> None:
    any_q.enqueue_many([{"n": i} for i in range(20)])
    any_q.set_rate_limit(10, burst=3)
    assert any_q.stats().rate_limit == {"rate": 10.0, "burst": 3}
    assert len(any_q.claim(10)) == 3  # the burst
    throttled = any_q.claim(10)
    assert throttled.status == "throttled" and 0 < throttled.retry_in_ms <= 100
    time.sleep(0.25)  # refills ~2.5 tokens at 10/s
    assert 1 <= len(any_q.claim(10)) <= 3
    assert any_q.stats().totals["throttled"] >= 1
    any_q.clear_rate_limit()
    assert any_q.stats().rate_limit is None
    assert len(any_q.claim(100)) >= 14


def test_release_hands_back_without_spending_an_attempt(any_q: Queue) -> None:
    first = any_q.enqueue({}).id
    second = any_q.enqueue({}).id
    (job,) = any_q.claim()
    assert job.id == first
    assert any_q.release_many([(first, job.lease)]) == ["ok"]
    again = any_q.get(first)
    assert again.state == "ready" and again.attempts == 0
    assert [j.id for j in any_q.claim(2)] == [first, second]  # back at the head


def test_settle_acks_nacks_and_claims_in_one_call(any_q: Queue) -> None:
    a, b, c = (r.id for r in any_q.enqueue_many([1, 2, 3]))
    ja, jb = any_q.claim(2)
    outcomes = [relayq.results.Outcome(a, ja.lease, "ack", result_json="7"),
                relayq.results.Outcome(b, jb.lease, "nack", error="e", retry=False)]
    statuses, claimed = any_q.settle(outcomes, 5)
    assert statuses == ["ok", "ok"]
    assert [j.id for j in claimed] == [c]
    assert any_q.get(a).result == 7 and any_q.get(b).state == "dead"


@dataclass
class Address:
    city: str


@dataclass
class Order:
    id: int
    items: list[str]
    ship_to: Address | None = None


def test_typed_queue_round_trips_dataclasses(any_r, queue_name: str) -> None:
    orders: Queue[Order] = Queue(queue_name, any_r, payload_type=Order)
    orders.enqueue(Order(1, ["a", "b"], Address("Oslo")))
    (job,) = orders.claim()
    assert job.payload == Order(1, ["a", "b"], Address("Oslo"))
    with pytest.raises(relayq.InvalidPayload):
        orders.enqueue({"id": 1})


def test_stats_of_no_queues_and_of_several(any_r, queue_name: str) -> None:
    from relayq.queue import stats_many

    assert stats_many(any_r, []) == []
    a, b = Queue(queue_name + "-a", any_r), Queue(queue_name + "-b", any_r)
    b.enqueue_many([1, 2])
    assert [(s.queue, s.ready) for s in stats_many(any_r, [a.name, b.name])] == [
        (a.name, 0), (b.name, 2)]


def test_list_queues(any_r, queue_name: str) -> None:
    Queue(queue_name, any_r).enqueue({})
    assert queue_name in relayq.list_queues(any_r)
