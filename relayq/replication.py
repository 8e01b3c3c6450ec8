"""Replicated-write mode: the Redis `WAIT` that follows a confirming write.

Redis replicates asynchronously, so a primary that crashes can take writes it had already
confirmed with it. In this mode enqueue, ack and nack end with `WAIT <replicas> <timeout_ms>` on
the connection that wrote (relayq/scripts.py appends it to the pipeline), and fewer replicas than
asked raise NotReplicated. A queue has a default (`Queue(..., replicas=1)`); each call may
override it. `replicas=0` is the default mode: no WAIT.
"""

from __future__ import annotations

from typing import NamedTuple

from .options import check_int

DEFAULT_TIMEOUT_MS = 1000


class Wait(NamedTuple):
    """After the writes, Redis `WAIT replicas timeout_ms`."""

    replicas: int
    timeout_ms: int


def wait_for(replicas: int, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> Wait | None:
    """The checked WAIT for these settings; None when `replicas` is 0."""
    check_int(replicas, "replicas", 0, 100)
    check_int(timeout_ms, "replica_timeout_ms", 1, 600_000)
    return Wait(replicas, timeout_ms) if replicas else None


def override(default: Wait | None, replicas: int | None, timeout_ms: int | None) -> Wait | None:
    """A call's WAIT: `default` (a queue's), with whatever the call gives instead."""
    if replicas is None and timeout_ms is None:
        return default
    base = default or Wait(0, DEFAULT_TIMEOUT_MS)
    return wait_for(base.replicas if replicas is None else replicas,
                    base.timeout_ms if timeout_ms is None else timeout_ms)
