"""`FactMover` (relayq/worker/fact_mover.py): each round applies the facts in the outboxes of
the queues it is given, in the children's queues; a nudge runs a round at once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from relayq import Queue
from relayq.connection import connect
from relayq.testing.redis_process import RedisProcess
from relayq.worker.fact_mover import FactMover
from tests.support.helpers import wait_until


@pytest.fixture(scope="module")
def r() -> Iterator[Any]:
    """A Redis of these tests alone: a relayq-server of other tests, on the shared one, runs a
    fact mover over every queue, which would move what these movers must leave."""
    with RedisProcess() as server:
        client = connect(server.url)
        yield client
        client.close()


@pytest.fixture
def movers() -> Iterator[list[FactMover]]:
    started: list[FactMover] = []
    yield started
    for mover in started:
        mover.stop()


def parent_acked_with_child_elsewhere(r: Any, name: str) -> tuple[Queue, Queue, str, str]:
    """A parent in `name`, acked, and its child in another queue: the fact waits in the
    parent queue's outbox. (home, away, parent id, child id)"""
    home, away = Queue(name, r), Queue(f"{name}-away", r)
    parent = home.enqueue({"n": 1}).id
    child = away.enqueue({"n": 2}, depends_on=[parent]).id
    job = home.claim(1)[0]
    home.ack(job.id, job.lease or "", {"done": True})
    assert away.get(child).state == "waiting"
    assert r.exists(home.keys.prefix + "outbox")
    return home, away, parent, child


def test_a_nudge_moves_the_facts_of_its_queues_at_once(r, queue_name: str,
                                                       movers: list[FactMover]) -> None:
    home, away, parent, child = parent_acked_with_child_elsewhere(r, queue_name)
    mover = FactMover(r, lambda: [home.name], interval_s=3600)
    movers.append(mover)
    mover.start()
    mover.nudge()
    wait_until(lambda: away.get(child).state == "ready", message="the child released")
    assert away.get(child).parent_results == {parent: {"done": True}}
    assert not r.exists(home.keys.prefix + "outbox")  # applied, then deleted


def test_a_mover_leaves_the_queues_it_is_not_given(r, queue_name: str,
                                                   movers: list[FactMover]) -> None:
    home, away, _, child = parent_acked_with_child_elsewhere(r, queue_name)
    rounds: list[int] = []

    def names() -> list[str]:
        rounds.append(1)
        return [away.name]  # the child's queue, not the parent's (whose outbox holds the fact)

    mover = FactMover(r, names, interval_s=0.01)
    movers.append(mover)
    mover.start()
    wait_until(lambda: len(rounds) >= 5, message="five rounds")
    assert away.get(child).state == "waiting"
    assert r.exists(home.keys.prefix + "outbox")
