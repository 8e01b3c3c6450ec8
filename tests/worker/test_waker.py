"""The waker, by its public behaviour only (start, arm, stop, and the `Wake` it posts), so these
tests hold while its listening is reworked: armed, it posts one wake-up per arming, with the
jobs it claimed when a job arrived (over Redis the claim rides behind the BLPOP) and without any
when its timeout ran out; `stop()` ends it at once even in the middle of a blocking wait."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from relayq import Queue
from relayq.worker.waker import Wake, Waker
from tests.support.helpers import wait_until


@pytest.fixture
def posted() -> list[Wake]:
    return []


@pytest.fixture
def start(posted: list[Wake]) -> Iterator[Callable[[Queue[Any]], Waker]]:
    wakers: list[Waker] = []

    def start(q: Queue[Any]) -> Waker:
        waker = Waker(q, posted.append, visibility_ms=30_000, worker_id="waker-test")
        waker.start()
        wakers.append(waker)
        return waker

    yield start
    for waker in wakers:
        waker.stop()


def test_an_armed_waker_posts_the_jobs_it_claimed_when_a_job_arrives(
        q: Queue, start: Any, posted: list[Wake]) -> None:
    assert not q.claim(1)  # the claim script loaded, as by the dispatcher's first turn
    waker = start(q)
    waker.arm(None, 5)  # the longest idle block (seconds): only a token ends it this soon
    t0 = time.monotonic()
    job_id = q.enqueue("wake up").id
    wait_until(lambda: posted, timeout=3, message="a wake-up")
    assert time.monotonic() - t0 < 3
    (wake,) = posted
    assert wake.queue == q.name and [j.id for j in wake.jobs or ()] == [job_id]
    running = q.get(job_id)
    assert running.state == "running" and running.worker_id == "waker-test"


def test_a_waker_falls_back_to_a_token_when_redis_lost_the_claim_script(
        q: Queue, r: Any, start: Any, posted: list[Wake]) -> None:
    waker = start(q)
    q.enqueue("first")
    r.script_flush()  # as after a restart: the claim behind the BLPOP answers NOSCRIPT
    waker.arm(None)
    wait_until(lambda: posted, timeout=3, message="a wake-up")
    assert [(w.token, w.jobs) for w in posted] == [(True, None)]  # the dispatcher claims
    assert q.stats().ready == 1
    q.enqueue("second")  # the script is loaded again: the next wake-up brings jobs
    waker.arm(None, 5)
    wait_until(lambda: len(posted) == 2, timeout=3, message="the second wake-up")
    assert len(posted[1].jobs or ()) == 2


def test_an_armed_waker_posts_without_a_token_when_its_timeout_runs_out(
        q: Queue, start: Any, posted: list[Wake]) -> None:
    waker = start(q)
    t0 = time.monotonic()
    waker.arm(100)
    wait_until(lambda: posted, message="a wake-up after the timeout")
    assert time.monotonic() - t0 >= 0.095
    assert [(w.queue, w.token, w.jobs) for w in posted] == [(q.name, False, None)]


def test_one_wake_up_per_arming(q: Queue, start: Any, posted: list[Wake]) -> None:
    assert not q.claim(1)  # the claim script loaded, as by the dispatcher's first turn
    waker = start(q)
    waker.arm(20)
    wait_until(lambda: len(posted) == 1, message="the first wake-up")
    waker.arm(20)
    wait_until(lambda: len(posted) == 2, message="the second wake-up")
    q.enqueue("a job")
    waker.arm(None)
    wait_until(lambda: len(posted) == 3, timeout=3, message="the token's wake-up")
    assert [len(w.jobs or ()) for w in posted] == [0, 0, 1]


def test_stop_ends_a_blocking_wait_at_once(q: Queue, r: Any, start: Any,
                                           posted: list[Wake]) -> None:
    waker = start(q)
    waker.arm(None)
    wait_until(lambda: any(c.get("cmd") == "blpop" for c in r.client_list()),
               message="the waker blocked in its wait")
    t0 = time.monotonic()
    waker.stop()
    assert time.monotonic() - t0 < 1.5  # it gives up on the thread after 2 s
    assert posted == []  # a stopped waker posts nothing


def test_stop_before_any_arming_is_prompt(q: Queue, start: Any, posted: list[Wake]) -> None:
    waker = start(q)
    t0 = time.monotonic()
    waker.stop()
    assert time.monotonic() - t0 < 1 and posted == []
