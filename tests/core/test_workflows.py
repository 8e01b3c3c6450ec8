"""Workflows (docs/workflows.md): depends_on within a queue and across queues, the cascade of a
failed parent, parent results, refusals, and the outbox mover's idempotence."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

import relayq
from relayq import NewJob
from relayq.errors import Conflict, InvalidArgument
from relayq.limits import MAX_PARENTS
from relayq.options import JobOptions


def run_one(q: relayq.Queue[Any], result: Any = None, fail: bool = False) -> str:
    """Claims one job of `q` and acks it with `result` (or nacks it for good); its id."""
    job = q.claim(1)[0]
    if fail:
        q.nack(job.id, job.lease or "", "boom", retry=False)
    else:
        q.ack(job.id, job.lease or "", result)
    return job.id


def other(r: Any) -> relayq.Queue[Any]:
    return relayq.Queue(f"t-{uuid.uuid4().hex[:10]}", r)


def drain_facts(*queues: relayq.Queue[Any]) -> None:
    """Moves every outbox until none has anything left (what the maintenance loops do)."""
    while sum(q.move_workflow_facts() for q in queues):
        pass


def test_a_child_waits_for_its_parents_and_becomes_ready_with_the_last_ack(
    q: relayq.Queue[Any],
) -> None:
    a = q.enqueue({"n": 1}).id
    b = q.enqueue({"n": 2}).id
    child = q.enqueue({"n": 3}, depends_on=[a, b])
    assert child.state == "waiting"
    job = q.get(child.id)
    assert job.state == "waiting" and job.depends_on == [a, b]
    assert q.get(a).children == [child.id]
    assert run_one(q, {"r": 1}) == a
    assert q.get(child.id).state == "waiting"
    assert run_one(q, [2]) == b
    claimed = q.claim(1)[0]
    assert claimed.id == child.id
    assert claimed.parent_results == {a: {"r": 1}, b: [2]}
    assert claimed.to_dict()["parent_results"] == {a: {"r": 1}, b: [2]}


def test_parents_already_finished_are_honoured(q: relayq.Queue[Any]) -> None:
    a = q.enqueue(1).id
    run_one(q, "done")
    child = q.enqueue(2, depends_on=[a])
    assert child.state == "ready"
    assert q.claim(1)[0].parent_results == {a: "done"}
    dead = q.enqueue(3).id
    run_one(q, fail=True)
    late = q.enqueue(4, depends_on=[dead])
    assert late.state == "cancelled"
    assert q.get(late.id).last_error == f"parent {dead} ended dead"


def test_a_failed_parent_cancels_the_waiting_graph_below_it(q: relayq.Queue[Any]) -> None:
    a = q.enqueue(1).id
    b = q.enqueue(2, depends_on=[a]).id
    c = q.enqueue(3, depends_on=[b]).id
    runs = q.enqueue(4, depends_on=[a], on_parent_failure="run").id
    run_one(q, fail=True)
    assert q.get(b).state == "cancelled" and q.get(b).last_error == f"parent {a} ended dead"
    assert q.get(c).state == "cancelled" and q.get(c).last_error == f"parent {b} ended cancelled"
    assert q.get(runs).state == "ready"
    assert q.stats().totals["cancelled"] == 2


def test_cancelling_a_waiting_job_cancels_its_children(q: relayq.Queue[Any]) -> None:
    a = q.enqueue(1).id
    b = q.enqueue(2, depends_on=[a]).id
    c = q.enqueue(3, depends_on=[b]).id
    assert q.cancel(b) == "cancelled"
    assert q.get(c).state == "cancelled"
    run_one(q)  # a succeeds: b and c stay cancelled
    assert [q.get(b).state, q.get(c).state] == ["cancelled", "cancelled"]
    assert q.claim(1) == []


def test_a_delayed_child_is_scheduled_when_released(q: relayq.Queue[Any]) -> None:
    a = q.enqueue(1).id
    child = q.enqueue(2, depends_on=[a], delay_ms=60_000).id
    run_one(q)
    assert q.get(child).state == "scheduled"


def test_cross_queue_parents_deliver_through_the_outbox(r: Any, q: relayq.Queue[Any]) -> None:
    p = other(r)
    a = p.enqueue("a").id
    b = q.enqueue("b").id
    child = q.enqueue("c", depends_on=[a, b])
    assert child.state == "waiting"
    assert p.get(a).children == [child.id]
    run_one(p, {"from": "p"})
    run_one(q, 7)
    assert q.get(child.id).state == "waiting"  # the fact is in p's outbox
    drain_facts(p)
    job = q.claim(1)[0]
    assert job.id == child.id and job.parent_results == {a: {"from": "p"}, b: 7}
    # a fact applied twice counts once: replay it by hand
    from relayq import workflows

    assert (
        q._drive(
            iter_op(
                workflows.apply_call(q.name, [(child.id.rpartition(".")[2], a, "succeeded", "1")])
            )
        )
        == 0
    )
    assert not r.exists(p.keys.prefix + "outbox")


def iter_op(call: Any) -> Any:
    from relayq.protocol import Scripts

    return (yield Scripts([call]))[0]


def test_a_cross_queue_parent_that_already_ended(r: Any, q: relayq.Queue[Any]) -> None:
    p = other(r)
    ok, bad = p.enqueue(1).id, p.enqueue(2).id
    run_one(p, "fine")
    run_one(p, fail=True)
    assert q.enqueue(3, depends_on=[ok]).state == "ready"
    assert q.claim(1)[0].parent_results == {ok: "fine"}
    cancelled = q.enqueue(4, depends_on=[bad])
    assert cancelled.state == "cancelled"
    assert not r.exists(q.keys.prefix + "linking")


def test_a_cross_queue_failure_cascades_across_queues(r: Any, q: relayq.Queue[Any]) -> None:
    p, s = other(r), other(r)
    a = p.enqueue(1).id
    b = q.enqueue(2, depends_on=[a]).id
    c = s.enqueue(3, depends_on=[b]).id
    run_one(p, fail=True)
    drain_facts(p, q, s)
    assert q.get(b).state == "cancelled"
    assert s.get(c).state == "cancelled"
    assert s.get(c).last_error == f"parent {b} ended cancelled"


def test_a_crash_between_enqueue_and_link_is_repaired(r: Any, q: relayq.Queue[Any]) -> None:
    from relayq import workflows

    p = other(r)
    a = p.enqueue(1).id
    # the enqueue script alone, as if the client died before linking
    fields = [["2", *JobOptions().script_args(), ""]]
    call = workflows._enqueue_call(q.name, [*fields[0], a, ""])
    child = q._drive(iter_op(call))[0].id
    assert q.get(child).state == "waiting" and p.get(a).children is None
    assert q._drive(workflows.relink(q.name, older_than_ms=0)) == 1
    assert p.get(a).children == [child]
    run_one(p, "x")
    drain_facts(p)
    assert q.get(child).state == "ready"


@pytest.mark.parametrize(
    "depends_on, message",
    [
        (["nope"], "invalid parent id"),
        ("q.1", "must be a list"),
        ([], "at least one parent"),
        ([f"x.{i}" for i in range(MAX_PARENTS + 1)], "more than 1000"),
    ],
)
def test_bad_parents_are_refused_before_anything_is_written(
    r: Any, q: relayq.Queue[Any], depends_on: Any, message: str
) -> None:
    before = sorted(r.keys(q.keys.prefix + "*"))
    with pytest.raises(InvalidArgument, match=message):
        q.enqueue(1, depends_on=depends_on)
    assert sorted(r.keys(q.keys.prefix + "*")) == before


def test_unknown_parents_are_refused(r: Any, q: relayq.Queue[Any]) -> None:
    q.enqueue(0)
    before = {k: r.type(k) for k in r.keys(q.keys.prefix + "*")}
    with pytest.raises(InvalidArgument, match=rf"unknown parent {q.name}\.123"):
        q.enqueue(1, depends_on=[f"{q.name}.123"])
    with pytest.raises(InvalidArgument, match="unknown parent elsewhere.9"):
        q.enqueue(1, depends_on=["elsewhere.9"])
    with pytest.raises(InvalidArgument, match="on_parent_failure"):
        q.enqueue(1, depends_on=[f"{q.name}.123"], on_parent_failure="maybe")
    assert {k: r.type(k) for k in r.keys(q.keys.prefix + "*")} == before


def test_a_batch_refers_to_its_own_jobs_and_refuses_self_dependency(q: relayq.Queue[Any]) -> None:
    results = q.enqueue_many([NewJob(1), NewJob(2, JobOptions(depends_on=["@1"]))])
    assert [r.state for r in results] == ["ready", "waiting"]
    assert q.get(results[1].id).depends_on == [results[0].id]
    with pytest.raises(InvalidArgument, match="itself"):
        q.enqueue_many([NewJob(1, JobOptions(depends_on=["@1"]))])


def test_an_idempotent_enqueue_answers_the_original_whatever_its_parents(
    q: relayq.Queue[Any],
) -> None:
    a = q.enqueue(1).id
    first = q.enqueue(2, idempotency_key="k")
    again = q.enqueue(3, idempotency_key="k", depends_on=[a])
    assert again.duplicate and again.id == first.id and again.state == "ready"
    assert q.get(a).children is None


def test_a_finished_job_is_not_cancellable_and_waiting_counts_nowhere_else(
    q: relayq.Queue[Any],
) -> None:
    a = q.enqueue(1).id
    q.enqueue(2, depends_on=[a])
    stats = q.stats()
    assert stats.ready == 1 and stats.scheduled == 0
    run_one(q)
    with pytest.raises(Conflict):
        q.cancel(a)


def test_finished_graphs_leave_no_key_behind(r: Any, q: relayq.Queue[Any]) -> None:
    """Retention: once a graph has finished (some of it succeeded, some dead, some cancelled
    by a parent, in two queues) and its retention has passed, the queues hold only their
    fixed keys: no job, deps, children, history, waiting, outbox or linking key is left."""
    p = other(r)
    for queue in (q, p):
        queue.configure(succeeded_ttl_ms=300, dead_ttl_ms=300)
    root = q.enqueue("root").id
    parts = [p.enqueue(n, depends_on=[root]).id for n in range(5)]
    total = q.enqueue("total", depends_on=parts).id
    doomed = p.enqueue("doomed", max_attempts=1).id
    orphan = q.enqueue("orphan", depends_on=[doomed, total]).id
    below = p.enqueue("below", depends_on=[orphan]).id
    while True:
        drain_facts(q, p)
        moved = False
        for queue in (q, p):
            for job in queue.claim(10):
                moved = True
                if job.id == doomed:
                    queue.nack(job.id, job.lease or "", "no", retry=False)
                else:
                    queue.ack(job.id, job.lease or "", job.payload)
        if not moved:
            break
    assert q.get(total).state == "succeeded" and q.get(orphan).state == "cancelled"
    assert p.get(below).state == "cancelled"
    fixed = {"meta", "totals", "seq", "log", "leases", "wake", "succeeded", "dead"}
    deadline = time.monotonic() + 5
    while True:
        for queue in (q, p):
            queue.reap()  # trims the succeeded and dead indexes
        left = {
            k.split(":", 2)[2]
            for queue in (q, p)
            for k in r.scan_iter(match=queue.keys.prefix + "*")
        }
        if left <= fixed or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert left <= fixed, sorted(left - fixed)


def test_a_parent_that_ends_between_the_enqueue_and_its_link(r: Any, q: relayq.Queue[Any]) -> None:
    """The race of creating a child in another slot: the parent ends after the child's
    enqueue script made it waiting but before link.lua listed it under the parent. link
    (atomic with the parent's end) then answers the end itself, and the child gets it."""
    from relayq import workflows

    p = other(r)
    ok, bad = p.enqueue("ok").id, p.enqueue("bad", max_attempts=1).id
    call = workflows._enqueue_call(q.name, ["1", *JobOptions().script_args(), "", ok, ""])
    child = q._drive(iter_op(call))[0].id
    call = workflows._enqueue_call(q.name, ["2", *JobOptions().script_args(), "", bad, ""])
    doomed = q._drive(iter_op(call))[0].id
    run_one(p, {"v": 1})  # both parents end while their children are not linked yet
    run_one(p, fail=True)
    assert not r.exists(p.keys.prefix + "outbox")  # no child was listed: no fact was sent
    assert q._drive(workflows.relink(q.name, older_than_ms=0)) == 2
    assert q.get(child).state == "ready" and q.get(child).parent_results == {ok: {"v": 1}}
    assert q.get(doomed).state == "cancelled"
    assert q.get(doomed).last_error == f"parent {bad} ended dead"
    assert not r.exists(q.keys.prefix + "linking")


def test_parent_results_are_bounded_by_the_payload_limit(q: relayq.Queue[Any]) -> None:
    """The results a child keeps are at most the queue's max_payload_bytes together: one that
    would go over is left out (the parent keeps it)."""
    q.configure(max_payload_bytes=100)
    a, b = q.enqueue(1).id, q.enqueue(2).id
    child = q.enqueue(3, depends_on=[a, b]).id
    run_one(q, "x" * 60)  # 62 bytes of JSON: kept
    run_one(q, "y" * 60)  # 124 in all: over 100, left out
    job = q.get(child)
    assert job.state == "ready" and job.parent_results == {a: "x" * 60}
    assert q.get(b).result == "y" * 60


def test_a_parent_that_succeeded_without_a_result_is_listed_with_none(q: relayq.Queue[Any]) -> None:
    a = q.enqueue(1).id
    child = q.enqueue(2, depends_on=[a]).id
    run_one(q)  # acked with no result
    assert q.get(child).parent_results == {a: None}


def test_the_queue_stats_count_the_waiting_jobs(q: relayq.Queue) -> None:
    parent = q.enqueue({}).id
    q.enqueue_many([relayq.NewJob(n, relayq.JobOptions(depends_on=[parent])) for n in range(3)])
    stats = q.stats()
    assert (stats.ready, stats.waiting, stats.to_dict()["waiting"]) == (1, 3, 3)
    (job,) = q.claim(1)
    q.ack(job.id, job.lease or "")
    assert (q.stats().ready, q.stats().waiting) == (3, 0)
