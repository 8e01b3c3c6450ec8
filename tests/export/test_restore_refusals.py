"""A snapshot that is corrupt, truncated, not relayq's, does not match its manifest, or breaks
any rule of enqueue or restore.lua is refused with a clear error and nothing written: the whole
snapshot is checked before the first write, reading with memory bounded by the queue's limits.
Then what a tampered snapshot (checksum recomputed) can still do: add absent jobs, nothing more."""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from relayq import Queue
from relayq.export import InvalidSnapshot, ObjectStore, export_queue, open_store, restore_snapshot
from relayq.export import manifest as manifests
from relayq.export.snapshot import Limits
from relayq.limits import DEFAULT_MAX_PAYLOAD_BYTES
from tests.support.export import populate, wipe
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


def job_75(**changes: object) -> Tamper:
    """Job 75 (line 76) with `changes`; a change given as RawJson is written as that JSON
    text, unparsed (a nesting too deep to build as Python data)."""
    def tamper(data: bytes) -> bytes:
        lines = lines_of(data)
        job = json.loads(lines[75])
        raw = {}
        for name, value in changes.items():
            if isinstance(value, RawJson):
                raw[f'"@raw-{name}"'] = value.text
                value = f"@raw-{name}"
            job[name] = value
        line = json.dumps(job)
        for placeholder, text in raw.items():
            line = line.replace(placeholder, text)
        return rezip([*lines[:75], line.encode() + b"\n", *lines[76:]])
    return tamper


class RawJson:
    def __init__(self, text: str) -> None:
        self.text = text


def nested(depth: int) -> RawJson:
    return RawJson("[" * depth + "]" * depth)


def repeated_line(data: bytes) -> bytes:
    lines = lines_of(data)
    return rezip([*lines[:77], lines[76], *lines[77:]])


def swapped_lines(data: bytes) -> bytes:
    lines = lines_of(data)
    return rezip([*lines[:75], lines[76], lines[75], *lines[77:]])


def header_with(**changes: object) -> Tamper:
    def tamper(data: bytes) -> bytes:
        lines = lines_of(data)
        header = {**json.loads(lines[0]), **changes}
        return rezip([json.dumps(header).encode() + b"\n", *lines[1:]])
    return tamper


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
            key_suffix: str = "tampered", **entry_changes: object) -> str:
    """Stores `data` as a new snapshot; `listed`: add it to the manifest with its true size
    and checksum (then only the content itself can be at fault), or with `entry_changes`."""
    key = f"{queue}/snapshots/2099/01/01/20990101T000000000Z-{key_suffix}.ndjson.gz"
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
    # each rule of enqueue (relayq.options) and restore.lua, found before the first write
    (job_75(payload="\ud800"), True, "line 76: payload has a lone surrogate"),
    (job_75(result={"x": "\udfff"}, state="succeeded", finished_at="2026-01-01T00:00:00.000Z"),
     True, "line 76: result has a lone surrogate"),
    (job_75(type="t\ud800"), True, "line 76: type must be valid Unicode"),
    (job_75(idempotency_key="\udc00"), True, "line 76: idempotency_key must be valid Unicode"),
    (job_75(payload=nested(900)), True, "line 76: payload is nested more than 128 levels"),
    (job_75(payload=nested(995)), True, "line 76: (payload is )?nested"),
    (job_75(payload="x" * (1024 * 1024)), True, "line 76: payload is 1048578 bytes, over the "
     "limit of 1048576"),
    (job_75(max_attempts=0), True, "line 76: max_attempts must be between 1 and 1000"),
    (job_75(attempts=1.5), True, "line 76: attempts must be an integer"),
    (job_75(timeout_ms=0), True, "line 76: timeout_ms must be between 1 and"),
    (job_75(worker_id="w" * 201), True, "line 76: worker_id must be at most 200 bytes"),
    (job_75(id="other-queue.1"), True, "line 76: job 'other-queue.1' .* is not of queue"),
    (job_75(queue="other-queue"), True, "line 76: .*queue 'other-queue'.* is not of queue"),
    (job_75(id="../../etc.1"), True, "line 76: invalid job id"),
    (repeated_line, True, r"line 78: job t-\w+\.\d+ is repeated"),
    (swapped_lines, True, r"line 77: job t-\w+\.\d+ is out of order"),
    (header_with(sequence="42x"), True, "snapshot header: sequence must be an integer"),
    (header_with(sequence=2**53), True, "snapshot header: sequence must be between"),
])
def test_a_bad_snapshot_is_refused_and_nothing_is_written(
        q: Queue, exported: tuple[ObjectStore, manifests.Manifest], tamper: Tamper,
        listed: bool, message: str) -> None:
    store, current = exported
    key = publish(store, q.name, tamper(store.get(current.latest).data), listed=listed)
    q.purge_all_dead()  # so that a restore would have something to write
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
    q.purge_all_dead()
    before = keyspace(q.redis, q.name)
    with pytest.raises(InvalidSnapshot, match=message):
        restore_snapshot(q, store, key)
    assert keyspace(q.redis, q.name) == before


def test_a_dry_run_checks_and_counts_but_writes_nothing(
        q: Queue, exported: tuple[ObjectStore, manifests.Manifest]) -> None:
    store, _ = exported
    q.purge_all_dead()
    before = keyspace(q.redis, q.name)
    result = restore_snapshot(q, store, dry_run=True)
    assert result.jobs == 600 and result.statuses == {"present": 599, "absent": 1}
    assert keyspace(q.redis, q.name) == before



# -- hostile snapshots (issue 20): a tampered snapshot whose checksum was recomputed ---------


def test_job_75_with_a_lone_surrogate_fails_the_check_and_the_dry_run_with_nothing_written(
        q: Queue, store: ObjectStore) -> None:
    populate(q, ready=195)
    export_queue(q.redis, store, q.name)
    latest = manifests.load(store, q.name)[0].latest
    key = publish(store, q.name, job_75(payload="\ud800")(store.get(latest).data), listed=True)
    wipe(q)  # Redis lost: the real restore would write every job
    for dry_run in (True, False):
        with pytest.raises(InvalidSnapshot, match="line 76: payload has a lone surrogate"):
            restore_snapshot(q, store, key, dry_run=dry_run)
    assert keyspace(q.redis, q.name) == {}


def gzip_bomb(prefix: bytes, filler: int, suffix: bytes) -> bytes:
    """`prefix`, `filler` bytes of "a", `suffix`, as concatenated gzip members (one 16 MiB
    member repeated: about 16 KB each). The last member's CRC is broken, so that a reader that
    reaches the end fails with another error than one that stops at the long line."""
    member = gzip.compress(b"a" * 2**24, compresslevel=9)
    last = bytearray(gzip.compress(suffix))
    last[-8] ^= 0xFF  # the CRC-32 of the last member
    return gzip.compress(prefix) + member * (filler // 2**24) + bytes(last)


def bomb_snapshot(q: Queue, store: ObjectStore, filler: int) -> str:
    """A listed snapshot (checksum recomputed) whose second line holds one job with a payload
    of `filler` bytes; returns its key."""
    q.enqueue({"x": 1})
    export_queue(q.redis, store, q.name)
    header = lines_of(store.get(manifests.load(store, q.name)[0].latest).data)[0]
    start = (f'{{"id":"{q.name}.1","queue":"{q.name}","state":"ready","priority":0,'
             '"attempts":0,"max_attempts":5,"created_at":"2026-01-01T00:00:00.000Z",'
             '"payload":"').encode()
    return publish(store, q.name, gzip_bomb(header + start, filler, b'"}\n'), listed=True)


def test_a_200_mb_payload_is_refused_at_the_line_cap_unread(q: Queue, tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}/store")
    key = bomb_snapshot(q, store, 200 * 2**20)
    wipe(q)
    cap = Limits(DEFAULT_MAX_PAYLOAD_BYTES).line_bytes
    # refused at line 2, before the broken CRC at the end of the file is reached
    with pytest.raises(InvalidSnapshot, match=f"line 2 is longer than {cap} bytes"):
        restore_snapshot(q, store, key)
    assert keyspace(q.redis, q.name) == {}


# `relayq` in a child that prints its peak RSS last: VmHWM, the high-water mark of this process
# image (getrusage's ru_maxrss would include the forking pytest process's, kept across exec).
PEAK_RSS = """
import re, sys
from relayq.cli.main import main
code = main(sys.argv[1:])
with open("/proc/self/status") as status:
    print("peak-rss-kib", re.search(r"VmHWM:\\s*(\\d+)", status.read())[1], file=sys.stderr)
sys.exit(code)
"""


def test_a_gzip_bomb_is_refused_early_in_bounded_memory(
        q: Queue, redis_url: str, tmp_path: Path) -> None:
    """1 MB of gzip expanding to a 1 GiB line: `relayq restore` (a real process) refuses it at
    that line, without reading on to the end of the file, and its peak RSS stays far below the
    line's size."""
    uri = f"file://{tmp_path}/store"
    key = bomb_snapshot(q, open_store(uri), 2**30)
    assert (tmp_path / "store" / key).stat().st_size < 1_200_000
    wipe(q)
    child = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, "restore", "--from", uri, "--queue", q.name,
         "--redis", redis_url, "--snapshot", key, "--json"],
        capture_output=True, text=True, timeout=120)
    error, peak = child.stderr.strip().splitlines()
    assert child.returncode == 1
    assert error.startswith("relayq restore: line 2 is longer than ")  # not "corrupt"
    assert int(peak.split()[1]) < 100 * 1024, peak  # KiB: the line alone would be 1 GiB
    assert keyspace(q.redis, q.name) == {}


@pytest.mark.parametrize("limit_of", ["client", "queue"])
def test_payloads_and_results_are_held_to_the_queues_limit(
        q: Queue, exported: tuple[ObjectStore, manifests.Manifest], limit_of: str) -> None:
    """The smaller of the client's limit (as enqueue applies it) and the queue's setting (as
    its scripts apply it)."""
    store, current = exported
    data = store.get(current.latest).data
    if limit_of == "client":
        q = Queue(q.name, q.redis, max_payload_bytes=1000)
    else:
        q.configure(max_payload_bytes=1000)
    q.purge_all_dead()
    before = keyspace(q.redis, q.name)
    payload = publish(store, q.name, job_75(payload="p" * 1000)(data), listed=True)
    with pytest.raises(InvalidSnapshot, match="line 76: payload is 1002 bytes, over the limit "
                       "of 1000"):
        restore_snapshot(q, store, payload)
    result = publish(store, q.name, job_75(result=["r" * 1000], state="succeeded",
                                           finished_at="2026-01-01T00:00:00.000Z")(data),
                     listed=True, key_suffix="result")
    with pytest.raises(InvalidSnapshot, match="line 76: result is 1004 bytes, over the limit"):
        restore_snapshot(q, store, result)
    assert keyspace(q.redis, q.name) == before


def test_a_tampered_snapshot_only_adds_absent_jobs_and_free_keys(
        q: Queue, tmp_path: Path) -> None:
    """What a snapshot with a recomputed checksum can do is add jobs that are absent (the trust
    model of docs/export.md): a present job, and an idempotency key a present job holds, stay
    as they are; a creation time in the future holds a key no longer than the queue's TTL."""
    store = open_store(f"file://{tmp_path}/store")
    held = q.enqueue({"mine": 1}, idempotency_key="held")
    export_queue(q.redis, store, q.name)
    lines = lines_of(store.get(manifests.load(store, q.name)[0].latest).data)
    own = json.loads(lines[1])
    local = int(held.id.rpartition(".")[2])
    forged = [
        {**own, "payload": {"forged": 1}, "created_at": "2026-01-01T00:00:00.000Z"},
        {**own, "id": f"{q.name}.{local + 1}", "payload": {"forged": 2}},  # the key "held"
        {**own, "id": f"{q.name}.{local + 2}", "idempotency_key": "future",
         "created_at": "2999-01-01T00:00:00.000Z"},
    ]
    key = publish(store, q.name, rezip([lines[0], *(json.dumps(j).encode() + b"\n"
                                                    for j in forged)]), listed=True, jobs=3)
    before = q.get(held.id).to_dict()
    result = restore_snapshot(q, store, key)
    assert result.statuses == {"conflict": 1, "ok": 2}
    assert q.get(held.id).to_dict() == before
    assert q.redis.get(q.keys.prefix + "idem:held") == str(local)
    assert q.enqueue({}, idempotency_key="held").id == held.id
    assert 0 < q.redis.pttl(q.keys.prefix + "idem:future") <= 86_400_000
