"""A snapshot that is corrupt, truncated, not relayq's, or does not match its manifest is
refused with a clear error and nothing written: the whole snapshot is checked before the first
write."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from relayq import Queue
from relayq.export import InvalidSnapshot, ObjectStore, export_queue, open_store, restore_snapshot
from relayq.export import manifest as manifests
from tests.support.export import populate
from tests.support.helpers import keyspace

Tamper = Callable[[bytes], bytes]


def lines_of(data: bytes) -> list[bytes]:
    return gzip.decompress(data).splitlines(keepends=True)


def rezip(lines: list[bytes]) -> bytes:
    return gzip.compress(b"".join(lines))


def bad_json_at_the_end(data: bytes) -> bytes:
    lines = lines_of(data)
    return rezip([*lines, b'{"id": "broken\n'])


def refused_by_lua_after_the_first_batch(data: bytes) -> bytes:
    lines = lines_of(data)
    job = json.loads(lines[-1])
    job["priority"] = 999  # restore.lua would refuse it; it must be caught before any write
    return rezip([*lines, json.dumps(job).encode() + b"\n"])


def bad_time_in_the_middle(data: bytes) -> bytes:
    lines = lines_of(data)
    job = json.loads(lines[300])
    job["created_at"] = "yesterday"
    return rezip([*lines[:300], json.dumps(job).encode() + b"\n", *lines[301:]])


def no_header(data: bytes) -> bytes:
    return rezip(lines_of(data)[1:])


def other_queue(data: bytes) -> bytes:
    lines = lines_of(data)
    header = json.loads(lines[0])
    header["queue"] = "someone-else"
    return rezip([json.dumps(header).encode() + b"\n", *lines[1:]])


def truncated(data: bytes) -> bytes:
    return data[: len(data) * 2 // 3]


def flipped(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:]


@pytest.fixture
def exported(q: Queue, tmp_path: Path) -> tuple[ObjectStore, manifests.Manifest]:
    """A file store holding one good snapshot of 600 jobs (more than one restore batch)."""
    populate(q, ready=595)
    store = open_store(f"file://{tmp_path}/store")
    export_queue(q.redis, store, q.name)
    return store, manifests.load(store, q.name)[0]


def publish(store: ObjectStore, queue: str, data: bytes, *, listed: bool,
            **entry_changes: object) -> str:
    """Stores `data` as a new snapshot; `listed`: add it to the manifest with its true size
    and checksum (then only the content itself can be at fault), or with `entry_changes`."""
    key = f"{queue}/snapshots/2099/01/01/20990101T000000000Z-tampered.ndjson.gz"
    store.put_if_absent(key, data)
    if listed:
        current, etag = manifests.load(store, queue)
        entry = replace(current.snapshots[-1], key=key, bytes=len(data),
                        sha256=hashlib.sha256(data).hexdigest())
        current.snapshots.append(replace(entry, **entry_changes))
        store.put_if_match(manifests.manifest_key(queue), current.to_json(), etag)
    return key


@pytest.mark.parametrize("tamper, listed, message", [
    (flipped, False, r"corrupt or truncated|line \d+"),  # garbled text or a bad CRC
    (truncated, False, "corrupt or truncated"),
    (bad_json_at_the_end, True, "line 602"),
    (refused_by_lua_after_the_first_batch, True, "line 602: priority"),
    (bad_time_in_the_middle, True, "line 301: created_at must be an RFC 3339"),
    (no_header, True, "not a relayq snapshot"),
    (other_queue, True, "not 't-"),
    (lambda data: b"", True, "empty"),
    (lambda data: b"not gzip at all", False, "corrupt or truncated"),
])
def test_a_bad_snapshot_is_refused_and_nothing_is_written(
        q: Queue, exported: tuple[ObjectStore, manifests.Manifest], tamper: Tamper,
        listed: bool, message: str) -> None:
    store, current = exported
    key = publish(store, q.name, tamper(store.get(current.latest).data), listed=listed)
    q.purge_dead()  # so that a restore would have something to write
    before = keyspace(q.redis, q.name)
    with pytest.raises(InvalidSnapshot, match=message):
        restore_snapshot(q, store, key)
    assert keyspace(q.redis, q.name) == before


@pytest.mark.parametrize("change, message", [
    (lambda entry, data: {"sha256": "0" * 64}, "checksum does not match"),
    (lambda entry, data: {"bytes": len(data) + 1}, "the manifest says"),
    (lambda entry, data: {"jobs": entry.jobs + 1}, "holds 600 jobs, the manifest says 601"),
])
def test_a_snapshot_that_does_not_match_its_manifest_is_refused(
        q: Queue, exported: tuple[ObjectStore, manifests.Manifest],
        change: Callable[..., dict], message: str) -> None:
    store, current = exported
    data = store.get(current.latest).data
    key = publish(store, q.name, data, listed=True, **change(current.snapshots[-1], data))
    q.purge_dead()
    before = keyspace(q.redis, q.name)
    with pytest.raises(InvalidSnapshot, match=message):
        restore_snapshot(q, store, key)
    assert keyspace(q.redis, q.name) == before


def test_a_dry_run_checks_and_counts_but_writes_nothing(
        q: Queue, exported: tuple[ObjectStore, manifests.Manifest]) -> None:
    store, _ = exported
    q.purge_dead()
    before = keyspace(q.redis, q.name)
    result = restore_snapshot(q, store, dry_run=True)
    assert result.jobs == 600 and result.statuses == {"present": 599, "absent": 1}
    assert keyspace(q.redis, q.name) == before

