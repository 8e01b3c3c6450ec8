"""The waker, by its public behaviour only (start, arm, stop, and the `Wake` it posts), so these
tests hold while its listening is reworked: armed, it posts one wake-up per arming, with a token
when a job arrived and without one when its timeout ran out; `stop()` ends it at once even in
the middle of a blocking wait."""

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
        waker = Waker(q, posted.append)
        waker.start()
        wakers.append(waker)
        return waker

    yield start
    for waker in wakers:
        waker.stop()


def test_an_armed_waker_posts_a_token_when_a_job_arrives(q: Queue, start: Any,
                                                         posted: list[Wake]) -> None:
    waker = start(q)
    waker.arm(None)  # the longest idle block (seconds): only a token ends it this soon
    t0 = time.monotonic()
    q.enqueue("wake up")
    wait_until(lambda: posted, timeout=3, message="a wake-up")
    assert time.monotonic() - t0 < 3
    assert [(w.queue, w.token) for w in posted] == [(q.name, True)]


def test_an_armed_waker_posts_without_a_token_when_its_timeout_runs_out(
        q: Queue, start: Any, posted: list[Wake]) -> None:
    waker = start(q)
    t0 = time.monotonic()
    waker.arm(100)
    wait_until(lambda: posted, message="a wake-up after the timeout")
    assert time.monotonic() - t0 >= 0.095
    assert [(w.queue, w.token) for w in posted] == [(q.name, False)]


def test_one_wake_up_per_arming(q: Queue, start: Any, posted: list[Wake]) -> None:
    waker = start(q)
    waker.arm(20)
    wait_until(lambda: len(posted) == 1, message="the first wake-up")
    waker.arm(20)
    wait_until(lambda: len(posted) == 2, message="the second wake-up")
    q.enqueue("a job")
    waker.arm(None)
    wait_until(lambda: len(posted) == 3, timeout=3, message="the token's wake-up")
    assert [w.token for w in posted] == [False, False, True]


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
