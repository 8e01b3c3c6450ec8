"""`Periodic`: the lifecycle shared by the worker's background loops (lease keeper, maintenance,
registry, workflow facts): a daemon thread that calls `tick()` every `interval_s` until `stop()`,
or at once when `nudge()`d (nudges that arrive during a round make one more round). A round that
meets an outage (Redis, or over HTTP the server: relayq.errors.OUTAGES) is logged (and, with
`back_off`, followed by a capped, jittered pause); any other failure of a round is logged with
its traceback and the loop goes on, because jobs depend on these loops running."""

from __future__ import annotations

import logging
import random
import threading

from ..backoff import Backoff
from ..errors import OUTAGES, outage_event
from ..logs import log_event

log = logging.getLogger("relayq.worker")


class Periodic:
    def __init__(self, part: str, interval_s: float, *, jitter: bool = False,
                 back_off: bool = False) -> None:
        self.part = part
        self.interval_s = interval_s
        self.jitter = jitter  # wait between half and all of the interval: workers spread out
        self.back_off = back_off
        self._stop = threading.Event()
        self._nudged = threading.Event()  # set by nudge() and by stop_soon(): ends the wait
        self._thread = threading.Thread(target=self._run, name=f"relayq-{part}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.stop_soon()
        self._thread.join(timeout)

    def stop_soon(self) -> None:
        """Asks the loop to end after its round in flight, without waiting for it (so that
        several loops wind down together: `stop` then waits for each)."""
        self._stop.set()
        self._nudged.set()

    def nudge(self) -> None:
        """Asks for a round now instead of at the end of the interval (cheap: any thread may
        call it as often as it likes; nudges during a round make exactly one more round)."""
        self._nudged.set()

    def tick(self) -> None:
        raise NotImplementedError

    def _delay(self) -> float:
        return self.interval_s * (random.uniform(0.5, 1.0) if self.jitter else 1.0)

    def _run(self) -> None:
        backoff = Backoff()
        while True:
            self._nudged.wait(self._delay())
            self._nudged.clear()
            if self._stop.is_set():
                break
            try:
                self.tick()
                backoff.reset()
                continue
            except OUTAGES as e:
                log_event(log, logging.WARNING, outage_event(e), part=self.part,
                          error=str(e))
            except Exception:  # a bug: skip this round, keep the thread
                log.exception(f"{self.part}.failed")
            if self.back_off:
                backoff.wait(self._stop)
