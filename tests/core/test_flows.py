"""relayq.flow with chain(...) and group(..., then=...): the graph made in one call, its
order of running, and refusals that write nothing."""

from __future__ import annotations

from typing import Any

import pytest

import relayq
from relayq import FlowJob, chain, flow, group
from relayq.errors import InvalidArgument
from tests.support.helpers import keyspace


def drain(q: relayq.Queue[Any], *others: relayq.Queue[Any]) -> list[Any]:
    """Runs every job of `q` until none is left (acking each with its payload), moving the
    facts of the other queues between rounds; the payloads in the order they ran."""
    ran = []
    while True:
        for o in (q, *others):
            o.move_workflow_facts()
        claimed = q.claim(10)
        if not claimed:
            return ran
        for job in claimed:
            ran.append(job.payload)
            q.ack(job.id, job.lease, {"from": job.payload, "saw": job.parent_results})


def test_a_chain_runs_in_order_and_a_group_fans_in(q: relayq.Queue[Any], r: Any) -> None:
    made = flow(
        chain(FlowJob(q.name, "a"), FlowJob(q.name, "b"), FlowJob(q.name, "c")),
        group(
            [FlowJob(q.name, f"part{i}", ref=f"p{i}") for i in range(10)],
            then=FlowJob(q.name, "total", ref="total"),
        ),
        redis=r,
    )
    assert [m.ref for m in made][:3] == ["1", "2", "3"]
    states = {m.ref: m.state for m in made}
    assert states["1"] == "ready" and states["2"] == "waiting" and states["total"] == "waiting"
    ran = drain(q)
    assert ran.index("a") < ran.index("b") < ran.index("c")
    assert sorted(ran) == sorted(["a", "b", "c", "total", *(f"part{i}" for i in range(10))])
    assert all(ran.index(f"part{i}") < ran.index("total") for i in range(10))
    total = q.get(next(m.id for m in made if m.ref == "total"))
    assert sorted(v["from"] for v in total.parent_results.values()) == sorted(
        f"part{i}" for i in range(10)
    )


def test_a_flow_across_queues(q: relayq.Queue[Any], r: Any) -> None:
    other = relayq.Queue(q.name + "-x", r)
    made = flow(
        chain(FlowJob(q.name, "first"), FlowJob(other.name, "second"), FlowJob(q.name, "third")),
        redis=r,
    )
    assert [m.state for m in made] == ["ready", "waiting", "waiting"]
    assert drain(q, other) == ["first"]
    assert drain(other, q) == ["second"]
    assert drain(q, other) == ["third"]


def test_a_cycle_is_refused_and_nothing_is_written(q: relayq.Queue[Any], r: Any) -> None:
    a, b = FlowJob(q.name, 1, ref="a"), FlowJob(q.name, 2, ref="b")
    chain(a, b)
    a.after.append(b)
    before = keyspace(r, q.name)
    with pytest.raises(InvalidArgument, match="cycle"):
        flow(a, b, redis=r)
    with pytest.raises(InvalidArgument, match="job x: priority"):
        flow(FlowJob(q.name, 1), FlowJob(q.name, 2, ref="x", priority=-1), redis=r)
    assert keyspace(r, q.name) == before
