"""`Periodic`, the loop under the lease keeper and maintenance: it ticks every interval until
stopped, stops at once even mid-wait, and survives a failing round (a bug, or Redis gone: a
real Queue on a port where nothing listens) to tick again."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import relayq
from relayq.worker.periodic import Periodic
from tests.support.helpers import wait_until


class Ticker(Periodic):
    """Records when each round began; a round runs `each_round(n)` (n counts from 1)."""

    def __init__(self, interval_s: float, each_round: Callable[[int], Any] = lambda n: None,
                 **options: Any) -> None:
        super().__init__("ticker", interval_s, **options)
        self.each_round = each_round
        self.rounds: list[float] = []

    def tick(self) -> None:
        self.rounds.append(time.monotonic())
        self.each_round(len(self.rounds))


@pytest.fixture
def run() -> Iterator[Callable[[Ticker], Ticker]]:
    started: list[Ticker] = []

    def run(ticker: Ticker) -> Ticker:
        ticker.start()
        started.append(ticker)
        return ticker

    yield run
    for ticker in started:
        ticker.stop()


def events(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.getMessage() == name]


def test_ticks_every_interval_until_stopped(run: Any) -> None:
    ticker = run(Ticker(0.02))
    wait_until(lambda: len(ticker.rounds) >= 4, message="four rounds")
    ticker.stop()
    assert not ticker._thread.is_alive()
    count = len(ticker.rounds)
    gaps = [b - a for a, b in zip(ticker.rounds, ticker.rounds[1:])]
    assert all(gap >= 0.019 for gap in gaps), gaps  # waits its interval between rounds
    assert len(ticker.rounds) == count


def test_stop_is_prompt_in_the_middle_of_a_long_wait(run: Any) -> None:
    ticker = run(Ticker(60))
    t0 = time.monotonic()
    ticker.stop()
    assert time.monotonic() - t0 < 1
    assert not ticker._thread.is_alive() and ticker.rounds == []


def test_a_failing_round_is_logged_and_the_loop_goes_on(
        run: Any, caplog: pytest.LogCaptureFixture) -> None:
    def fail_first(n: int) -> None:
        if n == 1:
            raise RuntimeError("a bug in round one")

    with caplog.at_level(logging.ERROR, logger="relayq.worker"):
        ticker = run(Ticker(0.01, fail_first))
        wait_until(lambda: len(ticker.rounds) >= 3, message="rounds after the failing one")
    (failed,) = events(caplog, "ticker.failed")
    assert failed.exc_info and "a bug in round one" in str(failed.exc_info[1])
    assert ticker._thread.is_alive()


def test_a_redis_outage_is_logged_without_a_traceback_and_the_loop_goes_on(
        run: Any, unreachable: relayq.Queue[Any], caplog: pytest.LogCaptureFixture) -> None:
    def outage_first(n: int) -> None:
        if n <= 2:
            unreachable.stats()

    with caplog.at_level(logging.WARNING, logger="relayq.worker"):
        ticker = run(Ticker(0.01, outage_first))
        wait_until(lambda: len(ticker.rounds) >= 3, message="a round after the outage")
    outages = events(caplog, "redis.unavailable")
    assert len(outages) == 2 and not events(caplog, "ticker.failed")
    assert all(r.fields["part"] == "ticker" and not r.exc_info  # type: ignore[attr-defined]
               for r in outages)


@pytest.mark.parametrize("back_off", [True, False])
def test_back_off_pauses_after_an_outage(run: Any, unreachable: relayq.Queue[Any],
                                         back_off: bool) -> None:
    """With `back_off` (maintenance) each round that met an outage is followed by a pause of at
    least the backoff's shortest (0.05 s); without it (the lease keeper: a lease must be
    extended as soon as Redis is back) the next round comes after the interval (1 ms)."""
    ticker = run(Ticker(0.001, lambda n: unreachable.stats() if n <= 3 else None,
                        back_off=back_off))
    wait_until(lambda: len(ticker.rounds) >= 4, message="a round after the outage")
    three_gaps = ticker.rounds[3] - ticker.rounds[0]
    if back_off:
        assert three_gaps >= 3 * 0.05
    else:
        assert three_gaps < 3 * 0.05


def test_jitter_spreads_the_wait_over_the_second_half_of_the_interval() -> None:
    jittered = Ticker(1.0, jitter=True)
    delays = [jittered._delay() for _ in range(200)]
    assert all(0.5 <= d <= 1.0 for d in delays) and len(set(delays)) > 100
    assert min(delays) < 0.6 and max(delays) > 0.9
    assert {Ticker(1.0)._delay() for _ in range(10)} == {1.0}


def test_a_nudge_runs_a_round_at_once_and_nudges_during_a_round_make_one_more(run: Any) -> None:
    release = threading.Event()
    ticker = run(Ticker(3600, each_round=lambda n: release.wait(10) if n == 1 else None))
    ticker.nudge()
    wait_until(lambda: len(ticker.rounds) == 1, message="the nudged round")
    for _ in range(5):  # while the first round runs
        ticker.nudge()
    release.set()
    wait_until(lambda: len(ticker.rounds) == 2, message="one more round")
    ticker.stop()
    assert len(ticker.rounds) == 2 and not ticker._thread.is_alive()
