"""A task app for tests that run `relayq-worker` processes: each run of a job is counted in a
Redis hash outside relayq's keys (`test:runs:<queue>`, job id -> runs), so that a test can
check that every job ran, and how many ran twice."""

from __future__ import annotations

import os
import time
from typing import Any

import relayq

app = relayq.App("recording")
_client: dict[str, Any] = {}


def runs_key(queue: str) -> str:
    return f"test:runs:{queue}"


@app.task(name="record", default=True)
def record(payload: Any) -> Any:
    client = _client.get("r")
    if client is None:
        # relayq.connect: the counter's key may live on another node of a cluster
        client = _client["r"] = relayq.connect(os.environ["RELAYQ_TEST_REDIS"])
    job = relayq.current_job()
    client.hincrby(runs_key(job.queue), job.id, 1)
    sleep_ms = payload.get("sleep_ms", 0) if isinstance(payload, dict) else 0
    if sleep_ms:
        time.sleep(sleep_ms / 1000)
    return payload


@app.task(name="slow_first")
def slow_first(payload: Any) -> Any:
    """Records its run like `record`, then hangs for a minute on the first attempt only: a
    job to kill its worker in the middle of."""
    record(payload)
    if relayq.current_job().attempts == 1:
        time.sleep(60)
    return payload
