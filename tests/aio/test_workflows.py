"""Workflows on both twins (relayq.Queue and relayq.aio.Queue share QueueOps): depends_on
across queues, the outbox mover, parent results."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

import relayq
from relayq import InvalidArgument


def test_depends_on_across_queues_on_both_twins(twin_q: Any, redis_url: str) -> None:
    other = relayq.Queue(f"t-{uuid.uuid4().hex[:10]}", redis_url)
    parent = other.enqueue({"p": 1}).id
    child = twin_q.enqueue({"c": 1}, depends_on=[parent])
    assert child.state == "waiting"
    job = other.claim(1)[0]
    other.ack(job.id, job.lease, {"made": 1})
    assert twin_q.get(child.id).state == "waiting"
    assert other.move_workflow_facts() == 1  # the fact, from the parent's outbox
    claimed = twin_q.claim(1)[0]
    assert claimed.id == child.id and claimed.parent_results == {parent: {"made": 1}}
    assert twin_q.move_workflow_facts() == 0
    with pytest.raises(InvalidArgument, match="unknown parent"):
        twin_q.enqueue(1, depends_on=[f"{other.name}.1"])


def test_the_sdk_makes_a_flow(twin_client: Any, q: relayq.Queue) -> None:
    made = twin_client.flow(
        relayq.chain(
            relayq.FlowJob(q.name, 1),
            relayq.group(
                [relayq.FlowJob(q.name, n) for n in (2, 3)],
                then=relayq.FlowJob(q.name, 4, ref="end"),
            ),
        )
    )
    assert [(m.ref, m.state) for m in made] == [
        ("1", "ready"),
        ("2", "waiting"),
        ("3", "waiting"),
        ("end", "waiting"),
    ]
    assert len(q.get(made[-1].id).depends_on) == 2
