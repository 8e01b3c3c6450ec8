"""Throttling failed authentications, per client address, in memory: one per process of the
HTTP server (relayq.api), and one in the RESP gateway (relayq.gateway, for AUTH and HELLO).

Each address has a token bucket of `burst` failures, refilled at `rate` per second. A request
that needs a key spends nothing when its key is good; a 401 spends a token. While an address has
no whole token left, every request from it that needs a key is refused with 429 and
`Retry-After` *before its key is looked at*, so guessing cannot go on and a throttled client
learns nothing about the keys it tries (a good key is refused too). Requests to public routes
are never throttled.

The address is the TCP peer: behind a proxy every client shares the proxy's bucket. At most
`max_addresses` buckets are kept: beyond that the least recently failed go first (a bucket that
has refilled to full is the same as none).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from .errors import TooManyRequests

DEFAULT_RATE = 1.0  # failures forgiven per second
DEFAULT_BURST = 20  # failures in a row before an address is throttled


class AuthThrottle:
    """`check(address)` before authenticating (TooManyRequests when throttled), `failed(address)`
    after a 401. `burst` 0 turns throttling off."""

    def __init__(self, rate: float = DEFAULT_RATE, burst: int = DEFAULT_BURST, *,
                 max_addresses: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 0:
            raise ValueError("rate must be positive and burst 0 or more")
        self.rate = rate
        self.burst = burst
        self.max_addresses = max_addresses
        self.clock = clock
        self._lock = threading.Lock()
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at

    def _tokens(self, address: str, now: float) -> float:
        tokens, at = self._buckets.get(address, (self.burst, now))
        return min(self.burst, tokens + (now - at) * self.rate)

    def check(self, address: str) -> None:
        """TooManyRequests (with the seconds until the next token) when `address` has none."""
        if not self.burst:
            return
        with self._lock:
            tokens = self._tokens(address, self.clock())
        if tokens < 1:
            wait = max(1, math.ceil((1 - tokens) / self.rate))
            raise TooManyRequests(f"too many failed authentications from this address: "
                                  f"retry in {wait} s", retry_after_s=wait)

    def failed(self, address: str) -> bool:
        """Spends a token for a failed authentication; True when that left none."""
        if not self.burst:
            return False
        with self._lock:
            now = self.clock()
            tokens = max(0.0, self._tokens(address, now) - 1)
            self._buckets[address] = (tokens, now)
            self._buckets.move_to_end(address)
            while len(self._buckets) > self.max_addresses:
                self._buckets.popitem(last=False)
        return tokens < 1

    def __len__(self) -> int:
        return len(self._buckets)
