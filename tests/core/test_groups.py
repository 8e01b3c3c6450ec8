"""Fair queues (lua/lib/groups.lua, docs/fair-queues.md): groups served in round robin, their
concurrency limits and token buckets, the slot given back on every way a running job ends, and
the refusals, on a real redis-server."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import relayq
from relayq import InvalidArgument, NewJob
from relayq.limits import GROUP_PATTERN, MAX_RUNNING_LIMIT
from relayq.options import JobOptions
from tests.support.helpers import keyspace, wait_until

LUA = Path(__file__).resolve().parents[2] / "lua"


def group_of(job: Any) -> str:
    return job.group or "-"


def claim_one_by_one(q: relayq.Queue, n: int) -> list[Any]:
    jobs = []
    for _ in range(n):
        got = q.claim(1)
        if not got:
            break
        jobs.append(got[0])
    return jobs


def running(q: relayq.Queue, group: str) -> int:
    return next((g.running for g in q.groups(1000).groups if g.group == group), 0)


def test_groups_are_served_in_round_robin_and_fifo_and_priority_hold_within(
    q: relayq.Queue,
) -> None:
    a = [q.enqueue({"n": i}, group="a").id for i in range(6)]
    for i in range(2):
        q.enqueue({"n": i}, group="b")
    plain = [q.enqueue({"n": i}).id for i in range(2)]
    urgent = q.enqueue({"n": 9}, group="c", priority=5).id
    late = q.enqueue({"n": 10}, group="c").id
    order = [j.id for j in claim_one_by_one(q, 20)]
    assert len(order) == 12
    # each turn of the ring gives every group with ready jobs one claim
    first_turn = {q.get(i).group or "-" for i in order[:4]}
    assert first_turn == {"a", "b", "c", "-"}
    assert [i for i in order if i in a] == a  # FIFO within a group
    assert [i for i in order if i in plain] == plain
    assert [i for i in order if i in (urgent, late)] == [urgent, late]  # priority within
    assert order[-4:] == a[2:]  # the flooding group alone at the end


def test_one_claim_of_many_takes_them_in_round_robin(q: relayq.Queue) -> None:
    q.enqueue_many([NewJob(i, JobOptions(group="a")) for i in range(50)])
    q.enqueue_many([NewJob(i, JobOptions(group="b")) for i in range(3)])
    got = q.claim(8)
    assert [group_of(j) for j in got] == ["a", "b"] * 3 + ["a", "a"]


def test_a_group_at_its_limit_is_skipped_and_comes_back_when_a_slot_frees(q: relayq.Queue) -> None:
    q.configure(group_max_running=2)
    q.enqueue_many([NewJob(i, JobOptions(group="a")) for i in range(5)])
    q.enqueue_many([NewJob(i, JobOptions(group="b")) for i in range(5)])
    got = q.claim(10)
    assert sorted(group_of(j) for j in got) == ["a", "a", "b", "b"]
    assert q.claim(1).status == "empty"
    page = q.groups()
    assert page.limited == 2 and page.with_ready == 2
    assert {g.group: (g.ready, g.running, g.state) for g in page.groups} == {
        "a": (3, 2, "limited"),
        "b": (3, 2, "limited"),
    }
    a_job = next(j for j in got if j.group == "a")
    q.ack(a_job.id, a_job.lease)
    (again,) = q.claim(5)
    assert again.group == "a" and running(q, "a") == 2
    # an override per group wins over the default
    q.set_group_limits("b", max_running=4)
    assert sorted(group_of(j) for j in q.claim(10)) == ["b", "b"]


def test_the_slot_is_given_back_on_every_way_a_running_job_ends(q: relayq.Queue) -> None:
    q.configure(group_max_running=1)
    q.enqueue_many([NewJob(i, JobOptions(group="t", max_attempts=9)) for i in range(8)])

    def one() -> Any:
        got = q.claim(5, visibility_ms=200)
        assert len(got) == 1 and running(q, "t") == 1
        return got[0]

    job = one()
    q.ack(job.id, job.lease)
    job = one()
    q.nack(job.id, job.lease, "retry now", delay_ms=0)
    job = one()
    q.nack(job.id, job.lease, "no more", retry=False)
    job = one()
    q.nack(job.id, job.lease, "later", delay_ms=60_000)
    job = one()
    assert q.release_many([(job.id, job.lease)]) == ["ok"]
    job = one()
    q.cancel(job.id)  # requested while it runs: the ack ends it cancelled
    assert q.ack(job.id, job.lease) == "cancelled"
    job = one()  # lost: the reaper gives the slot back
    wait_until(lambda: q.reap() == (1, 0), timeout=5)
    job = one()
    q.ack(job.id, job.lease)
    assert running(q, "t") == 0


def test_the_queue_limit_holds_across_groups_and_without(q: relayq.Queue) -> None:
    q.configure(max_running=3)
    q.enqueue_many([NewJob(i, JobOptions(group=f"g{i % 4}")) for i in range(8)] + [1, 2])
    got = q.claim(10)
    assert len(got) == 3
    assert q.claim(1).status == "empty"
    q.ack(got[0].id, got[0].lease)
    assert len(q.claim(10)) == 1
    q.configure(max_running=0)  # no limit
    assert len(q.claim(10)) == 6


def test_a_throttled_group_does_not_throttle_the_others(q: relayq.Queue) -> None:
    q.set_group_limits("slow", rate=0.001, burst=2)
    q.enqueue_many([NewJob(i, JobOptions(group="slow")) for i in range(5)])
    q.enqueue_many([NewJob(i, JobOptions(group="fast")) for i in range(5)])
    got = q.claim(20)
    assert sorted(group_of(j) for j in got) == ["fast"] * 5 + ["slow"] * 2
    nothing = q.claim(1)
    assert nothing.status == "throttled" and nothing.retry_in_ms > 900_000
    assert q.stats().totals["throttled"] == 1  # counted as the queue's own bucket's are
    assert q.groups().throttled == 1
    q.enqueue(1)  # a job without a group is served though "slow" is throttled
    assert [group_of(j) for j in q.claim(5)] == ["-"]
    q.set_group_limits("slow", rate=1000, burst=10)  # a new bucket, full
    assert len(q.claim(10)) == 3


def test_the_default_bucket_of_every_group(q: relayq.Queue) -> None:
    q.configure(group_rate=0.001, group_burst=1)
    q.enqueue_many([NewJob(i, JobOptions(group=g)) for g in "abc" for i in range(3)])
    assert sorted(group_of(j) for j in q.claim(20)) == ["a", "b", "c"]
    assert q.claim(1).status == "throttled"
    q.configure(group_rate=0)
    assert len(q.claim(20)) == 6


def test_cancelling_a_grouped_ready_job_and_listing(q: relayq.Queue) -> None:
    ids = [q.enqueue(i, group="a").id for i in range(3)]
    for i in ids:
        assert q.cancel(i) == "cancelled"
    q.enqueue(1, group="b")
    assert [group_of(j) for j in q.claim(5)] == ["b"]
    assert q.stats().ready == 0
    page = q.groups()
    assert [g.group for g in page.groups] == ["b"] and page.groups[0].running == 1


def test_groups_page_by_backlog_with_a_cursor(q: relayq.Queue) -> None:
    q.enqueue_many([NewJob(i, JobOptions(group=f"g{n}")) for n in range(5) for i in range(n + 1)])
    first = q.groups(2)
    assert [(g.group, g.ready) for g in first.groups] == [("g4", 5), ("g3", 4)]
    rest = q.groups(10, first.next_cursor)
    assert [g.group for g in rest.groups] == ["g2", "g1", "g0"] and rest.next_cursor is None
    assert first.total == 5 and first.with_ready == 5
    assert q.stats().ready == 15


def test_scheduled_and_requeued_jobs_keep_their_group(q: relayq.Queue) -> None:
    q.enqueue(1, group="a", delay_ms=1)
    q.enqueue(2, group="b")
    wait_until(lambda: q.promote()[0] == 1 or True, timeout=1)
    got = q.claim(5)
    assert sorted(group_of(j) for j in got) == ["a", "b"]
    job = got[0]
    q.nack(job.id, job.lease, "dead", retry=False)
    q.requeue_dead_job(job.id)
    (again,) = q.claim(1)
    assert again.id == job.id and again.group == job.group


@pytest.mark.parametrize("group", ["", "has space", "x" * 129, "é", "a/b", 7])
def test_a_bad_group_is_refused_and_nothing_written(r: Any, q: relayq.Queue, group: Any) -> None:
    before = keyspace(r, q.name)
    with pytest.raises(InvalidArgument):
        q.enqueue(1, group=group)
    with pytest.raises(InvalidArgument):
        q.set_group_limits(group, max_running=1)
    assert keyspace(r, q.name) == before


@pytest.mark.parametrize(
    ("operation", "values"),
    [
        ("set_group_limits", {"max_running": -1}),
        ("set_group_limits", {"max_running": MAX_RUNNING_LIMIT + 1}),
        ("set_group_limits", {"max_running": 1.5}),
        ("set_group_limits", {"rate": -1}),
        ("set_group_limits", {"rate": 0.0001}),
        ("set_group_limits", {"rate": 5}),  # a rate without a burst anywhere
        ("set_group_limits", {"burst": 0}),
        ("set_group_limits", {"rate": 1, "burst": -2}),
        ("set_group_limits", {}),
        ("configure", {"max_running": -1}),
        ("configure", {"group_max_running": 10**9}),
        ("configure", {"group_rate": 5}),  # a rate without a burst anywhere
        ("configure", {"group_rate": 0.0001, "group_burst": 1}),
        ("configure", {"group_burst": -1}),
        ("configure", {"group_rate": "x"}),
    ],
)
def test_bad_limits_are_refused_and_nothing_written(
    r: Any, q: relayq.Queue, operation: str, values: dict[str, Any]
) -> None:
    q.enqueue(1, group="a")
    before = keyspace(r, q.name)
    with pytest.raises(InvalidArgument):
        if operation == "configure":
            q.configure(**values)
        else:
            q.set_group_limits("a", **values)
    assert keyspace(r, q.name) == before


def test_a_rate_with_the_queues_burst_needs_no_burst_of_its_own(q: relayq.Queue) -> None:
    q.configure(group_burst=3)
    q.set_group_limits("a", rate=0.001)
    q.enqueue_many([NewJob(i, JobOptions(group="a")) for i in range(5)])
    assert len(q.claim(10)) == 3


def test_the_scripts_check_the_group_pattern_of_limits() -> None:
    """lib/groups.lua's character class is GROUP_PATTERN's (written once in each language)."""
    source = (LUA / "lib" / "groups.lua").read_text()
    lua_class = re.search(r"local group_chars = '\^\[(.*?)\]\+\$'", source).group(1)
    assert lua_class == "%w_%.:%-"
    assert GROUP_PATTERN.startswith("[A-Za-z0-9_.:-]")


def test_a_queue_without_groups_keeps_its_keys(r: Any, q: relayq.Queue) -> None:
    """A queue that never saw a group writes none of the group keys."""
    q.enqueue_many(list(range(5)))
    for job in q.claim(5):
        q.ack(job.id, job.lease)
    names = {k.decode() if isinstance(k, bytes) else k for k in keyspace(r, q.name)}
    assert not any(re.search(r":(gring|gparked|groups|group:|gprios:|gready:)", n) for n in names)


def test_the_ready_listing_shows_grouped_jobs_after_the_others(q: relayq.Queue) -> None:
    b = [q.enqueue(i, group="b").id for i in range(3)]
    plain = q.enqueue(0).id
    a = [q.enqueue(i, group="a", priority=p).id for i, p in enumerate((0, 9))]
    listed = [j.id for j in q.jobs("ready", 100)[0]]
    assert listed == [plain, a[1], a[0], *b]
    first, cursor = q.jobs("ready", 2)
    rest, end = q.jobs("ready", 10, cursor)
    assert [j.id for j in first + rest] == listed and end is None


def test_a_queues_first_grouped_job_may_come_by_promotion(r: Any, q: relayq.Queue) -> None:
    """The claim that promotes a queue's first grouped job hands it out at once."""
    job_id = q.enqueue(1, group="a", delay_ms=50).id
    due = q.get(job_id).run_at

    def redis_ms() -> int:
        seconds, micros = r.time()
        return int(seconds) * 1000 + int(micros) // 1000

    wait_until(lambda: redis_ms() > due, timeout=5, interval=0.01, message="the due time")
    assert [j.id for j in q.claim(1)] == [job_id]


def test_a_child_released_by_its_parent_joins_its_groups_round_robin_and_limit(
        q: relayq.Queue) -> None:
    """Workflows and fair queues together: a waiting job with a group, released by its last
    parent's ack, is ready in its group (listed there, and held back by the group's limit),
    not in the plain ready lists."""
    q.configure(group_max_running=1)
    parent = q.enqueue({"step": "parent"}).id
    busy = q.enqueue({"step": "busy"}, group="t").id
    child = q.enqueue({"step": "child"}, group="t", depends_on=[parent]).id
    held = {job.id: job for job in q.claim(10)}
    assert set(held) == {parent, busy}  # the child waits for its parent
    q.ack(parent, held[parent].lease or "")
    assert q.get(child).state == "ready"
    (tenant,) = [g for g in q.groups().groups if g.group == "t"]
    assert (tenant.ready, tenant.running) == (1, 1)
    assert q.claim(10) == []  # t is at its limit of 1: its released child waits its turn
    q.ack(busy, held[busy].lease or "")
    assert [(job.id, job.group) for job in q.claim(10)] == [(child, "t")]


def test_a_flow_job_takes_a_group(q: relayq.Queue) -> None:
    made = relayq.flow(relayq.chain(relayq.FlowJob(q.name, 1, group="t"),
                                    relayq.FlowJob(q.name, 2, group="u")), redis=q.redis)
    assert [q.get(job.id).group for job in made] == ["t", "u"]
