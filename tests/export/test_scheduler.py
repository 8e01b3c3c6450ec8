"""`ExportScheduler`, driven directly (relayq-server will run it): exports every queue on its
schedule, rides out Redis and store failures, stops cleanly, and several racing schedulers keep
the manifest exact."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import relayq
from relayq import InvalidArgument, Queue
from relayq.export import ExportScheduler, ObjectStore, StoreUnavailable, parse_duration
from relayq.export import manifest as manifests
from relayq.export.store import Data, MemoryStore
from relayq.tools.redis_process import RedisProcess
from tests.support.helpers import wait_until


@pytest.mark.parametrize("text, seconds", [("90", 90), ("30s", 30), ("5m", 300), ("1h", 3600),
                                           ("1d", 86400), ("250ms", 0.25), ("1.5m", 90)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "5 minutes", "-1s", "1w", "m"])
def test_parse_duration_refuses_nonsense(text: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_duration(text)


def sequence(store: ObjectStore, queue: str) -> int:
    return manifests.load(store, queue)[0].sequence


def test_exports_every_queue_on_schedule(r: Any, queue_name: str) -> None:
    queues = [Queue(f"{queue_name}-{i}", r) for i in range(2)]
    for q in queues:
        q.enqueue({"q": q.name})
    store = MemoryStore()
    rounds: list[list[str]] = []
    scheduler = ExportScheduler(r, store, every_s=0.1, keep=2,
                                queues=[q.name for q in queues],
                                on_export=lambda res: rounds.append([x.key for x in res]))
    scheduler.start()
    try:
        wait_until(lambda: all(sequence(store, q.name) >= 3 for q in queues), timeout=20,
                   message="three exports of each queue")
    finally:
        scheduler.stop()
    assert scheduler.failures == 0 and scheduler.rounds >= 3
    for q in queues:
        current, _ = manifests.load(store, q.name)
        assert len(current.snapshots) == 2  # keep=2
        assert list(store.list(manifests.snapshots_prefix(q.name))) == [
            e.key for e in current.snapshots]


class FlakyStore(MemoryStore):
    """A store that is down until `up` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.up = threading.Event()
        self.refused = 0

    def put_if_absent(self, key: str, data: Data) -> str:
        if not self.up.is_set():
            self.refused += 1
            raise StoreUnavailable("store down")
        return super().put_if_absent(key, data)


def test_rides_out_a_store_that_is_down(q: Queue) -> None:
    q.enqueue({"x": 1})
    store = FlakyStore()
    scheduler = ExportScheduler(q.redis, store, every_s=0.05, queues=[q.name],
                                max_backoff_s=0.05)
    scheduler.start()
    try:
        wait_until(lambda: store.refused >= 3, message="failed rounds")
        assert scheduler.rounds == 0
        store.up.set()
        wait_until(lambda: sequence(store, q.name) >= 1, message="an export once the store is up")
    finally:
        scheduler.stop()
    assert scheduler.failures >= 3 and scheduler.rounds >= 1


def test_failures_are_logged_as_structured_events(q: Queue,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    store = FlakyStore()
    scheduler = ExportScheduler(q.redis, store, every_s=0.05, queues=[q.name],
                                max_backoff_s=0.05)
    with caplog.at_level(logging.WARNING, logger="relayq.export"):
        scheduler.start()
        try:
            wait_until(lambda: any(r.getMessage() == "export.round_failed"
                                   for r in caplog.records), message="a failed round logged")
        finally:
            scheduler.stop()
    events = {r.getMessage(): r.fields for r in caplog.records}  # type: ignore[attr-defined]
    assert events["export.failed"] == {"queue": q.name, "store": store.uri,
                                       "error": "store down"}
    assert events["export.round_failed"] == {"retry_in_s": 0.05, "error": "store down"}


@pytest.fixture
def own_redis() -> Iterator[RedisProcess]:
    server = RedisProcess().start()
    yield server
    server.stop()


def test_rides_out_redis_going_away_and_coming_back(own_redis: RedisProcess) -> None:
    client = relayq.connect(own_redis.url, socket_timeout=2)
    Queue("kept", client).enqueue({"x": 1})
    store = MemoryStore()
    scheduler = ExportScheduler(client, store, every_s=0.05, max_backoff_s=0.1)
    scheduler.start()
    try:
        wait_until(lambda: sequence(store, "kept") >= 1, message="a first export")
        own_redis.kill()
        failures = scheduler.failures
        wait_until(lambda: scheduler.failures >= failures + 2, message="failed rounds")
        own_redis.start()
        Queue("kept", client).enqueue({"y": 2})  # the server came back empty: a new job
        done = sequence(store, "kept")
        wait_until(lambda: sequence(store, "kept") > done, message="exports after the restart")
    finally:
        scheduler.stop()
        client.close()
    assert manifests.load(store, "kept")[0].snapshots[-1].jobs == 1


def test_racing_schedulers_keep_the_manifest_exact(q: Queue) -> None:
    q.enqueue_many([{"i": i} for i in range(20)])
    store = MemoryStore()
    written: list[str] = []
    lock = threading.Lock()

    def record(results: list[Any]) -> None:
        with lock:
            written.extend(r.key for r in results)

    schedulers = [ExportScheduler(q.redis, store, every_s=0.01, keep=4, queues=[q.name],
                                  on_export=record) for _ in range(3)]
    for s in schedulers:
        s.start()
    try:
        wait_until(lambda: len(written) >= 30, timeout=60, message="30 exports")
    finally:
        for s in schedulers:
            s.stop()
    current, _ = manifests.load(store, q.name)
    assert sum(s.failures for s in schedulers) == 0
    assert current.sequence == len(written)
    assert [e.key for e in current.snapshots] == sorted(written)[-4:]
    assert list(store.list(manifests.snapshots_prefix(q.name))) == sorted(written)[-4:]


def test_stop_before_start_and_bad_settings() -> None:
    with pytest.raises(InvalidArgument):
        ExportScheduler(None, MemoryStore(), every_s=0)
    with pytest.raises(InvalidArgument):
        ExportScheduler(None, MemoryStore(), every_s=1, keep=0)
    ExportScheduler(None, MemoryStore(), every_s=1).stop()
