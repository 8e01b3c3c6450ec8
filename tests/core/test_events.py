"""`Queue.events` and `Queue.read_events`: the event log as a reader sees it. Entries follow
every transition in order; a follower blocks on the log (XREAD) and picks up what comes while it
waits; a position the log no longer holds starts with a `reset`; bad positions are refused."""

from __future__ import annotations

import threading
import time

import pytest

from relayq import Queue
from relayq.errors import InvalidEventId
from relayq.events import check_event_id


def test_follow_from_the_start_and_while_waiting(q: Queue) -> None:
    first = q.enqueue({"n": 0}).id
    later: list[str] = []

    def enqueue_later() -> None:
        time.sleep(0.3)
        later.append(q.enqueue({"n": 1}).id)

    thread = threading.Thread(target=enqueue_later)
    thread.start()
    try:
        got = [(e.type, e.job_ids) for e in q.events(since="0", wait_s=1.5)]
    finally:
        thread.join()
    assert got == [("ready", [first]), ("ready", later)]


def test_from_now_skips_what_came_before(q: Queue) -> None:
    q.enqueue({"n": 0})
    events = q.events(wait_s=0.5)
    assert list(events) == []
    assert q.last_event_id() == q.read_events("0-0")[-1].id


def test_a_trimmed_position_starts_with_a_reset_then_the_oldest_held(q: Queue, r) -> None:
    q.configure(event_log_max=1)
    for n in range(250):
        q.enqueue({"n": n})
    held = r.xrange(q.keys.log, count=1)[0][0]
    events = q.read_events("1-0", 3)
    assert events[0].type == "reset" and events[1].id == held
    again = q.read_events(events[0].id, 1)  # from the reset's id on: no second reset
    assert again[0].id == held


@pytest.mark.parametrize("bad", ["", "x", "1-x", "1--1", "-5", "1-2-3", "2" * 21, None, 5])
def test_bad_positions_are_refused(q: Queue, bad: object) -> None:
    with pytest.raises(InvalidEventId):
        check_event_id(bad)
    if isinstance(bad, str):
        with pytest.raises(InvalidEventId):
            q.read_events(bad)


def test_positions_are_normalised() -> None:
    assert check_event_id("17") == "17-0"
    assert check_event_id("0017-02") == "17-2"
