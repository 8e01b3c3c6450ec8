"""Concurrent exporters on one manifest, and an exporter killed between snapshot and manifest:
the manifest never loses a snapshot, never names a missing one, and orphans are pruned later."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import relayq
from relayq import Queue
from relayq.export import ObjectStore, export_queue, open_store, restore_snapshot
from relayq.export import manifest as manifests
from tests.support.helpers import wait_until


def race(store: ObjectStore, q: Queue, exporters: int, rounds: int, keep: int) -> list[str]:
    written: list[str] = []
    barrier = threading.Barrier(exporters)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            for _ in range(rounds):
                written.append(export_queue(q.redis, store, q.name, keep=keep).key)
        except BaseException as e:  # surfaced by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(exporters)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    return written


def test_racing_exporters_lose_no_snapshot(q: Queue, store: ObjectStore) -> None:
    q.enqueue_many([{"i": i} for i in range(50)])
    written = race(store, q, exporters=4, rounds=3, keep=100)
    current, _ = manifests.load(store, q.name)
    assert len(written) == 12
    assert [e.key for e in current.snapshots] == sorted(written)
    assert current.sequence == 12
    assert sorted(e.sequence for e in current.snapshots) == list(range(1, 13))
    assert list(store.list(manifests.snapshots_prefix(q.name))) == sorted(written)


def test_racing_exporters_with_retention_keep_exactly_the_newest(q: Queue, store: ObjectStore
                                                                 ) -> None:
    q.enqueue({"x": 1})
    written = race(store, q, exporters=4, rounds=3, keep=3)
    current, _ = manifests.load(store, q.name)
    assert [e.key for e in current.snapshots] == sorted(written)[-3:]
    assert current.sequence == 12
    # what retention pruned is gone; nothing the manifest names is missing
    assert list(store.list(manifests.snapshots_prefix(q.name))) == sorted(written)[-3:]


def _export_in_child(redis_url: str, uri: str, queue: str, rounds: int, out: str) -> None:
    q = Queue(queue, relayq.connect(redis_url))
    store = open_store(uri)
    keys = [export_queue(q.redis, store, queue, keep=100).key for _ in range(rounds)]
    Path(out).write_text("\n".join(keys))


def test_racing_exporter_processes_on_a_file_store(q: Queue, redis_url: str, tmp_path: Path
                                                   ) -> None:
    q.enqueue_many([{"i": i} for i in range(100)])
    uri = f"file://{tmp_path}/store"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_export_in_child,
                         args=(redis_url, uri, q.name, 3, str(tmp_path / f"keys-{i}")))
             for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * 4
    written = sorted(k for i in range(4) for k in (tmp_path / f"keys-{i}").read_text().split())
    current, _ = manifests.load(open_store(uri), q.name)
    assert len(written) == 12 and [e.key for e in current.snapshots] == written


def _export_and_die_before_the_manifest(redis_url: str, uri: str, queue: str, marker: str
                                        ) -> None:
    def stuck(*args: Any, **kwargs: Any) -> None:
        Path(marker).write_text("snapshot written")
        while True:
            time.sleep(1)  # killed here, between the snapshot and the manifest

    manifests.commit = stuck  # type: ignore[assignment]
    export_queue(Queue(queue, relayq.connect(redis_url)).redis, open_store(uri), queue)


@pytest.mark.parametrize("grace_s, pruned", [(3600.0, False), (0.0, True)])
def test_an_exporter_killed_before_the_manifest_leaves_it_valid(
        q: Queue, redis_url: str, tmp_path: Path, grace_s: float, pruned: bool) -> None:
    uri = f"file://{tmp_path}/store"
    store = open_store(uri)
    q.enqueue({"before": 1})
    good = export_queue(q.redis, store, q.name, keep=1)
    q.enqueue({"after": 2})
    marker = tmp_path / "marker"
    ctx = multiprocessing.get_context("fork")
    child = ctx.Process(target=_export_and_die_before_the_manifest,
                        args=(redis_url, uri, q.name, str(marker)))
    child.start()
    wait_until(marker.exists, timeout=30, message="the child's snapshot")
    os.kill(child.pid, signal.SIGKILL)
    child.join(10)
    assert child.exitcode == -signal.SIGKILL

    current, _ = manifests.load(store, q.name)
    assert [e.key for e in current.snapshots] == [good.key]
    (orphan,) = [k for k in store.list(manifests.snapshots_prefix(q.name)) if k != good.key]
    assert restore_snapshot(q, store).key == good.key  # the orphan is harmless

    newer = export_queue(q.redis, store, q.name, keep=1, orphan_grace_s=grace_s)
    left = list(store.list(manifests.snapshots_prefix(q.name)))
    assert (orphan in newer.pruned) == pruned
    assert left == ([newer.key] if pruned else sorted([orphan, newer.key]))
    # restore also works from what is left
    assert restore_snapshot(q, store).key == newer.key
