"""The built-in demo handler that `relayq-worker` runs when no `--app` is given.

Deterministic where the payload asks: `{"sleep_ms": N}` sleeps N ms in slices, reporting its
progress and stopping with `relayq.Cancelled` once the job's cancel is requested (so operators can
try both), `{"cpu_ms": N}` computes (pure Python, holding the GIL) for N ms of CPU time,
`{"fail": true}` raises.
Anything else sleeps briefly (10-100 ms), fails at the worker's `--demo-fail-rate` and otherwise
succeeds with the payload echoed as its result.
"""

from __future__ import annotations

import random
import time
from typing import Any

from .app import App, current_job

SLICE_S = 0.1  # sleep_ms sleeps in slices this long, looking for a cancel between them


class DemoFailure(Exception):
    """What the demo handler raises when it fails on purpose."""


def demo_app(fail_rate: float = 0.1) -> App:
    app = App("demo")

    @app.task(name="demo", default=True)
    def demo(payload: Any) -> Any:
        asks = payload if isinstance(payload, dict) else {}
        if "sleep_ms" in asks or "fail" in asks or "cpu_ms" in asks:
            cpu_ms = asks.get("cpu_ms", 0)
            if isinstance(cpu_ms, (int, float)) and cpu_ms > 0:
                _burn(cpu_ms / 1000)
            sleep_ms = asks.get("sleep_ms", 0)
            if isinstance(sleep_ms, (int, float)) and sleep_ms > 0:
                _sleep(sleep_ms / 1000)
            if asks.get("fail") is True:
                raise DemoFailure("demo job failed on request (payload fail=true)")
            return payload
        time.sleep(random.uniform(0.01, 0.1))
        if random.random() < fail_rate:
            raise DemoFailure(f"demo job failed at random (fail rate {fail_rate:g})")
        return payload

    return app


def _burn(seconds: float) -> None:
    """Busy work for `seconds` of this thread's CPU time (threads of one process share the GIL,
    so N of them take N times as long: what --processes is for)."""
    end = time.thread_time() + seconds
    n = 0
    while time.thread_time() < end:
        for i in range(1000):
            n += i * i


def _sleep(seconds: float) -> None:
    job = current_job()
    start = time.monotonic()
    while (left := seconds - (time.monotonic() - start)) > 0:
        job.check_cancelled()
        time.sleep(min(SLICE_S, left))
        if seconds >= 1:  # short sleeps report nothing: the bench's jobs stay cheap
            job.progress(min(1.0, (time.monotonic() - start) / seconds))
