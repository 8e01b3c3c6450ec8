"""`ExportScheduler`: exports queues on a schedule from a background thread (what
`relayq-server --export-to URI --export-every DURATION` runs, and `relayq export --every`).

Lifecycle: `start()` launches the thread `relayq-export`, which exports every queue (or the
queues given) at once and then every `every_s` seconds, measured from the start of one round
to the start of the next; `stop()` asks it to finish and waits for it (an export under way
completes first, so stop can take as long as one export). Redis or store errors never kill the
thread: the failed round is logged and retried after a backoff that doubles from 1 s up to
`every_s`, and the schedule resumes after the next success.

Several schedulers (several servers) exporting the same queues to the same store stay correct:
every snapshot has a unique name and the manifest changes only by compare-and-set, so they
write more snapshots than one would, never a lost or corrupt manifest.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable

from ..backoff import Backoff
from ..connection import RedisClient
from ..errors import InvalidArgument
from ..logs import log_event
from ..queue import list_queues
from .exporter import DEFAULT_KEEP, ExportResult, export_queue
from .store import ObjectStore, open_store

log = logging.getLogger("relayq.export")

DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)?")
UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
FIRST_RETRY_S = 1.0  # after a failed round; doubling up to max_backoff_s (default: every_s)


def parse_duration(text: str) -> float:
    """Seconds in a duration like `90`, `30s`, `5m`, `1h`, `1d` or `500ms` (a bare number is
    seconds). InvalidArgument otherwise, or for zero."""
    match = DURATION.fullmatch(text.strip()) if isinstance(text, str) else None
    if not match or float(match.group(1)) == 0:
        raise InvalidArgument(f"invalid duration {text!r}: use e.g. 30s, 5m, 1h")
    return float(match.group(1)) * UNITS[match.group(2)]


class ExportScheduler:
    """Exports `queues` (None: every queue, looked up each round) of `redis` to `store` (a URI
    or an ObjectStore) every `every_s` seconds, keeping `keep` snapshots per queue.
    `on_export` is called with each round's results (for logs and metrics)."""

    def __init__(self, redis: RedisClient, store: str | ObjectStore, every_s: float,
                 keep: int = DEFAULT_KEEP, queues: list[str] | None = None, *,
                 s3_endpoint_url: str | None = None,
                 on_export: Callable[[list[ExportResult]], None] | None = None,
                 max_backoff_s: float | None = None) -> None:
        if every_s <= 0:
            raise InvalidArgument("every_s must be positive")
        if keep < 1:
            raise InvalidArgument("keep must be at least 1")
        self.redis = redis
        self.store = (open_store(store, s3_endpoint_url=s3_endpoint_url)
                      if isinstance(store, str) else store)
        self.every_s = every_s
        self.keep = keep
        self.queues = queues
        self.on_export = on_export
        self.max_backoff_s = max_backoff_s if max_backoff_s is not None else every_s
        self.rounds = 0    # rounds that succeeded
        self.failures = 0  # rounds that failed
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ExportScheduler:
        if self._thread is not None:
            raise RuntimeError("ExportScheduler already started")
        self._thread = threading.Thread(target=self._run, name="relayq-export", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run_once(self) -> list[ExportResult]:
        """One round: every queue exported once. A queue that fails does not stop the others;
        the round then raises the first failure, after `on_export` has seen the successes."""
        queues = self.queues if self.queues is not None else list_queues(self.redis)
        results: list[ExportResult] = []
        failure: Exception | None = None
        for queue in queues:
            try:
                results.append(export_queue(self.redis, self.store, queue, keep=self.keep))
            except Exception as e:  # noqa: BLE001 - one queue's failure must not stop the rest
                log_event(log, logging.WARNING, "export.failed", queue=queue,
                          store=self.store.uri, error=str(e))
                failure = failure or e
        if self.on_export:
            self.on_export(results)
        if failure is not None:
            raise failure
        return results

    def _run(self) -> None:
        backoff = Backoff(FIRST_RETRY_S, self.max_backoff_s, jitter=False)
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.run_once()
            except Exception as e:  # noqa: BLE001 - the thread outlives any failure
                self.failures += 1
                delay = backoff.next_delay()
                log_event(log, logging.WARNING, "export.round_failed",
                          retry_in_s=round(delay, 3), error=str(e))
                self._stop.wait(delay)
                continue
            self.rounds += 1
            backoff.reset()
            self._stop.wait(max(0.0, started + self.every_s - time.monotonic()))
