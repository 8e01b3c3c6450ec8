"""Backoff: how long a loop waits before trying again after a failure. The one implementation of
"delays that double up to a cap", with full jitter by default; used by every loop that rides out
Redis going away (the worker's loops, the server's hubs, `connect_patiently`), the export
scheduler, the manifest's compare-and-set retries and the SDK's `Client.wait` polling.

(The worker's `relayq.Retry` exception and redis-py's `Retry` are other things: the first asks
for a job to run again, the second is a client's resend policy, which relayq turns off.)
"""

from __future__ import annotations

import random
import threading

RECONNECT_FIRST_S = 0.2  # a loop that lost Redis tries again within 0.2 s, then 0.4 s, ...
RECONNECT_CAP_S = 5.0    # ... and at least every 5 s while Redis stays away


class Backoff:
    """The n-th delay (from 1) is at most `first_s * 2**(n-1)`, capped at `cap_s`. With `jitter`
    each delay is drawn uniformly below that bound ("full jitter", so that many clients that
    failed together do not retry together) but never under `first_s / 4` (never a busy loop);
    without, it is the bound itself. `equal_jitter`: between half the bound and the bound, so
    that the delays visibly grow (for waits a person watches). `reset()` after a success starts
    again from `first_s`."""

    def __init__(self, first_s: float = RECONNECT_FIRST_S, cap_s: float = RECONNECT_CAP_S, *,
                 jitter: bool = True, equal_jitter: bool = False) -> None:
        self.first_s = first_s
        self.cap_s = cap_s
        self.jitter = jitter
        self.equal_jitter = equal_jitter
        self.failures = 0

    def next_delay(self) -> float:
        """The delay before the next try; counts one more failure."""
        bound = min(self.cap_s, self.first_s * 2 ** min(self.failures, 30))
        self.failures += 1
        if not self.jitter:
            return bound
        if self.equal_jitter:
            return random.uniform(bound / 2, bound)
        return max(self.first_s / 4, random.uniform(0, bound))

    def wait(self, stop: threading.Event) -> None:
        """Sleeps the next delay, or less if `stop` is set meanwhile."""
        stop.wait(self.next_delay())

    def reset(self) -> None:
        self.failures = 0
