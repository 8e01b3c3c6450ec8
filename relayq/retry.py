"""Reconnection backoff for loops that must ride out Redis going away: exponential with full
jitter, capped, reset after a success. Used by the worker's loops and the server."""

from __future__ import annotations

import random
import threading


class ReconnectBackoff:
    """`equal_jitter`: each delay is between half and all of its ceiling, so that the delays
    visibly grow (for waits a person watches, such as a worker waiting for Redis at start)."""

    def __init__(self, base_s: float = 0.1, cap_s: float = 5.0, *,
                 equal_jitter: bool = False) -> None:
        self.base_s = base_s
        self.cap_s = cap_s
        self.equal_jitter = equal_jitter
        self.failures = 0

    def next_delay(self) -> float:
        """The delay before the next try (full jitter, never zero, so never a busy loop)."""
        self.failures += 1
        ceiling = min(self.cap_s, self.base_s * 2 ** min(self.failures, 20))
        if self.equal_jitter:
            return random.uniform(ceiling / 2, ceiling)
        return max(self.base_s / 2, random.uniform(0, ceiling))

    def wait(self, stop: threading.Event) -> None:
        """Sleeps the next delay, or less if `stop` is set meanwhile."""
        stop.wait(self.next_delay())

    def reset(self) -> None:
        self.failures = 0
