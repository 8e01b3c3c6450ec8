"""Fixtures of the worker's component tests: jobs claimed from the real redis-server and held
the way the dispatcher holds them (`Running`), so that each component meets real jobs, real
leases and real scripts without the rest of the worker."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import relayq
from relayq import Queue
from relayq.worker.inflight import Running

Claim = Callable[..., list[Running]]


@pytest.fixture
def claim() -> Claim:
    """`claim(q, *payloads, visibility_ms=..., started=False, **enqueue_options)`: enqueues one
    job per payload (type "work" unless given) and claims them all, in order. `started` marks
    them as running in a handler since now (else they are prefetched, never started)."""

    def claim(q: Queue[Any], *payloads: Any, visibility_ms: int = 30_000, started: bool = False,
              **options: Any) -> list[Running]:
        options.setdefault("type", "work")
        ids = [q.enqueue(payload, **options).id for payload in payloads]
        jobs = q.claim(len(ids), visibility_ms=visibility_ms, worker_id="component-test")
        assert [job.id for job in jobs] == ids
        return [Running(job, q, started=time.monotonic() if started else None) for job in jobs]

    return claim


@pytest.fixture
def unreachable() -> Iterator[Queue[Any]]:
    """A queue on a port where nothing listens: every call meets a Redis outage."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = relayq.connect(f"redis://127.0.0.1:{port}")
    yield Queue("nowhere", client)
    client.close()
