"""Export and restore end to end against real components: the suite's redis-server, a local
directory and an S3-compatible server over HTTP (moto)."""

from __future__ import annotations

import gzip
import io
import json
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from relayq import Queue, scripts
from relayq.errors import RedisUnavailable
from relayq.export import ObjectStore, export_queue, open_store, reads, restore_snapshot, snapshot
from relayq.export import manifest as manifests
from relayq.export.snapshot import SnapshotWriter
from tests.support.export import all_ids, populate, snapshot_view, views, wipe
from tests.support.helpers import keyspace, wait_until


def read_lines(store: ObjectStore, key: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in gzip.decompress(store.get(key).data).splitlines()]


def test_round_trip_after_losing_redis(q: Queue, store: ObjectStore) -> None:
    ids = populate(q)
    before = views(q, all_ids(q))
    seq = int(q.redis.get(q.keys.seq))
    result = export_queue(q.redis, store, q.name, keep=5)
    assert result.jobs == len(before) == 25
    assert result.states == {"cancelled": 1, "dead": 1, "ready": 20, "running": 1,
                             "scheduled": 1, "succeeded": 1}

    wipe(q)
    restored = restore_snapshot(q, store)
    assert restored.key == result.key and restored.verified_by_manifest
    assert restored.statuses == {"ok": 25}
    after = views(q, all_ids(q))
    running = before.pop(ids["running"])
    back = after.pop(ids["running"])
    assert after == before
    assert back == {**running, "state": "ready", "lease_deadline": None, "worker_id": None}
    # not in a snapshot: a restored job starts with no attempt history (the dead one had one)
    assert {q.get(i).to_dict()["history"] == [] for i in all_ids(q)} == {True}
    assert int(q.redis.get(q.keys.seq)) >= seq
    # the indexes are whole again: the interrupted job is claimable, the rest follow in order
    claimed = q.claim(100)
    assert claimed[0].id == ids["running"] and len(claimed) == 21
    dup = q.enqueue({}, idempotency_key="later")
    assert dup.duplicate and dup.id == ids["scheduled"]
    assert q.dead()[0][0].id == ids["dead"]


def test_snapshot_layout_header_and_manifest(q: Queue, store: ObjectStore) -> None:
    populate(q, ready=5)
    first = export_queue(q.redis, store, q.name, keep=5)
    second = export_queue(q.redis, store, q.name, keep=5)
    assert first.key.startswith(f"{q.name}/snapshots/") and first.key.endswith(".ndjson.gz")
    parts = first.key.split("/")
    assert len(parts) == 6 and len(parts[2]) == 4 and len(parts[3]) == len(parts[4]) == 2
    assert parts[5].startswith(parts[2] + parts[3] + parts[4] + "T")
    lines = read_lines(store, first.key)
    header, jobs = lines[0], lines[1:]
    assert header["format"] == "relayq.snapshot" and header["queue"] == q.name
    assert header["sequence"] == int(q.redis.get(q.keys.seq)) and header["key"] == first.key
    numbers = [int(j["id"].split(".")[1]) for j in jobs]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers) == first.jobs
    assert all("lease" not in j for j in jobs)
    current, _ = manifests.load(store, q.name)
    assert current.sequence == 2 and current.latest == second.key
    assert [e.key for e in current.snapshots] == [first.key, second.key]
    entry = current.entry(first.key)
    assert entry.jobs == first.jobs and entry.bytes == first.bytes and len(entry.sha256) == 64


def test_retention_keeps_the_newest_and_deletes_the_rest(q: Queue, store: ObjectStore) -> None:
    q.enqueue({"x": 1})
    keys = [export_queue(q.redis, store, q.name, keep=2).key for _ in range(4)]
    current, _ = manifests.load(store, q.name)
    assert [e.key for e in current.snapshots] == keys[-2:]
    assert list(store.list(manifests.snapshots_prefix(q.name))) == keys[-2:]


def test_restoring_twice_gives_no_duplicates(q: Queue, store: ObjectStore) -> None:
    populate(q)
    export_queue(q.redis, store, q.name)
    wipe(q)
    assert restore_snapshot(q, store).restored == 25
    after_first = keyspace(q.redis, q.name)
    again = restore_snapshot(q, store)
    assert again.restored == 0 and again.statuses == {"present": 25}
    assert keyspace(q.redis, q.name) == after_first


def test_restore_into_a_live_queue_leaves_present_jobs_alone(q: Queue, store: ObjectStore
                                                             ) -> None:
    ids = populate(q, ready=3)
    export_queue(q.redis, store, q.name)
    (job,) = q.claim(1)  # moves on after the snapshot
    q.ack(job.id, job.lease, "later result")
    q.purge_all_dead()
    result = restore_snapshot(q, store)
    assert result.statuses == {"ok": 1, "present": 7}  # only the purged dead job came back
    assert q.get(job.id).result == "later result"
    assert q.get(ids["dead"]).state == "dead"


def test_a_large_queue_spills_sorted_runs_and_still_round_trips(
        q: Queue, store: ObjectStore, monkeypatch: Any) -> None:
    monkeypatch.setattr(snapshot, "RUN_SIZE", 700)  # runs of 700 lines: 5 runs to merge
    q.enqueue_many([{"i": i} for i in range(3000)])
    result = export_queue(q.redis, store, q.name)
    lines = read_lines(store, result.key)[1:]
    assert [j["payload"]["i"] for j in lines] == list(range(3000))
    wipe(q)
    assert restore_snapshot(q, store).restored == 3000
    assert [j.payload["i"] for j in q.claim(1000)] == list(range(1000))  # FIFO kept


def test_the_writer_keeps_the_last_read_of_a_job_seen_twice(q: Queue) -> None:
    base = {"p": "{}", "c": "1"}
    with SnapshotWriter(q.name, run_size=2) as writer:
        for local, state in [("30", "ready"), ("10", "ready"), ("20", "ready"),
                             ("10", "running"), ("5", "ready"), ("30", "succeeded"),
                             ("bogus", "ready")]:
            writer.add(local, {**base, "s": state})
        out = io.BytesIO()
        info = writer.finish({"format": "x"}, out)
    lines = [json.loads(x) for x in gzip.decompress(out.getvalue()).splitlines()[1:]]
    assert [(j["id"].split(".")[1], j["state"]) for j in lines] == [
        ("5", "ready"), ("10", "running"), ("20", "ready"), ("30", "succeeded")]
    assert info.jobs == 4 and info.states == {"ready": 2, "running": 1, "succeeded": 1}


def test_jobs_moving_during_the_export_appear_once_in_the_old_or_new_state(
        q: Queue, store: ObjectStore, monkeypatch: Any) -> None:
    monkeypatch.setattr(reads, "SCAN_COUNT", 20)  # many small batches: the export takes a while
    ids = {r.id for r in q.enqueue_many([{"i": i} for i in range(3000)])}
    moved, stop = [0], threading.Event()

    def worker() -> None:  # claims and acks while the export runs
        while not stop.is_set():
            jobs = q.claim(5)
            for job in jobs[:4]:
                q.ack(job.id, job.lease, {"done": job.payload["i"]})
            moved[0] += len(jobs)

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        wait_until(lambda: moved[0] > 0, message="the worker to start")
        at_start = moved[0]
        result = export_queue(q.redis, store, q.name)
        during = moved[0] - at_start
    finally:
        stop.set()
        thread.join()
    assert during > 0  # jobs really changed state while the export ran
    jobs = read_lines(store, result.key)[1:]
    assert [j["id"] for j in jobs] == sorted(ids, key=lambda i: int(i.split(".")[1]))
    for job in jobs:  # each line is one whole version of its job
        assert job["state"] in ("ready", "running", "succeeded")
        assert (job["result"] is not None) == (job["state"] == "succeeded")
        assert (job["started_at"] is None) == (job["state"] == "ready")


# -- an interrupted restore: a rerun completes it ------------------------------------------

# `relayq restore` in a child that dies by SIGKILL in the middle of its third write round trip:
# half of that round trip's script calls have run, nothing after them.
KILLED_MIDWAY = """
import os, signal, sys
from relayq import scripts
from relayq.cli.main import main
real, round_trips = scripts.run_pipelined, []
def run_pipelined(client, calls, wait=None):
    calls = list(calls)
    round_trips.append(calls)
    if len(round_trips) == 3:
        real(client, calls[:len(calls) // 2], wait)
        os.kill(os.getpid(), signal.SIGKILL)
    return real(client, calls, wait)
scripts.run_pipelined = run_pipelined
sys.exit(main(sys.argv[1:]))
"""


def restored_state(q: Queue) -> dict[str, Any]:
    """The queue's keyspace but its event log, which records when each restore call ran (one
    entry per call and state), not what was restored."""
    return {key: value for key, value in keyspace(q.redis, q.name).items() if key != q.keys.log}


def whole_restore(q: Queue, store: ObjectStore) -> dict[str, Any]:
    """Exports 2,500 jobs (five write batches of 500), then the keyspace that one uninterrupted
    restore of them gives; leaves the queue wiped."""
    populate(q, ready=2495)
    export_queue(q.redis, store, q.name)
    wipe(q)
    assert restore_snapshot(q, store).statuses == {"ok": 2500}
    whole = restored_state(q)
    wipe(q)
    return whole


def test_a_restore_cut_by_a_redis_error_is_completed_by_running_it_again(
        q: Queue, store: ObjectStore, monkeypatch: Any) -> None:
    whole = whole_restore(q, store)
    real, round_trips = scripts.run_pipelined, []

    def connection_reset(client: Any, calls: Any, wait: Any = None) -> Any:
        calls = list(calls)
        round_trips.append(calls)
        if len(round_trips) == 3:  # half of the third batch's script calls run, then Redis is gone
            real(client, calls[:len(calls) // 2], wait)
            raise RedisUnavailable("Redis unavailable: Connection reset by peer")
        return real(client, calls, wait)

    monkeypatch.setattr(scripts, "run_pipelined", connection_reset)
    with pytest.raises(RedisUnavailable, match="after 1000 of 2500 jobs .* run it again"):
        restore_snapshot(q, store)
    assert len(all_ids(q)) == 1250
    monkeypatch.undo()
    again = restore_snapshot(q, store)
    assert again.statuses == {"ok": 1250, "present": 1250}
    assert restored_state(q) == whole


def test_a_restore_killed_mid_write_is_completed_by_running_it_again(
        q: Queue, redis_url: str, tmp_path: Path) -> None:
    uri = f"file://{tmp_path}/store"
    store = open_store(uri)
    whole = whole_restore(q, store)
    argv = ["restore", "--from", uri, "--queue", q.name, "--redis", redis_url, "--json"]
    killed = subprocess.run([sys.executable, "-c", KILLED_MIDWAY, *argv], capture_output=True,
                            timeout=120)
    assert killed.returncode == -signal.SIGKILL
    assert len(all_ids(q)) == 1250
    rerun = subprocess.run([sys.executable, "-m", "relayq.cli.main", *argv],
                           capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["statuses"] == {"ok": 1250, "present": 1250}
    assert restored_state(q) == whole


def test_workflows_and_groups_survive_export_and_restore(q: Queue, tmp_path: Path) -> None:
    """A workflow caught mid-way, with parents in its own queue and in another: the waiting
    child comes back waiting for the parents it had not heard from, keeps the result of the one
    that had succeeded and its group, and runs once they have succeeded after the restore."""
    store = open_store(f"file://{tmp_path}")
    up = Queue(q.name + "-up", q.redis)
    done = q.enqueue({"done": 1}).id
    (claimed,) = q.claim(1)
    q.ack(done, claimed.lease, {"r": 7})
    local_parent = q.enqueue({"a": 1}, group="tenant-1").id
    remote_parent = up.enqueue({"b": 1}).id
    child = q.enqueue({"c": 1}, group="tenant-2",
                      depends_on=[done, local_parent, remote_parent]).id
    before = {i: snapshot_view(q, i) for i in (done, local_parent, child)}
    assert before[child]["state"] == "waiting"

    line = next(j for j in read_lines(store, export_queue(q.redis, store, q.name).key)[1:]
                if j["id"] == child)
    assert line["waiting_for"] == sorted([local_parent, remote_parent])
    assert line["group"] == "tenant-2" and line["parent_results"] == {done: {"r": 7}}
    export_queue(q.redis, store, up.name)
    wipe(q)
    wipe(up)
    assert restore_snapshot(up, store).statuses == {"ok": 1}
    assert restore_snapshot(q, store).statuses == {"ok": 3}

    q.move_workflow_facts()  # the movers link the child again, to both parents
    assert {i: snapshot_view(q, i) for i in before} == before  # the parent lists it again
    assert [(g.group, g.ready) for g in q.groups().groups] == [("tenant-1", 1)]
    (a,) = q.claim(5)
    assert a.id == local_parent and a.group == "tenant-1"
    q.ack(a.id, a.lease)
    assert q.get(child).state == "waiting"  # still waits for the other queue's parent
    (b,) = up.claim(1)
    up.ack(b.id, b.lease, "B")
    up.move_workflow_facts()  # the fact crosses to the child's queue
    (c,) = q.claim(5)
    assert c.id == child and c.group == "tenant-2"
    assert q.get(child).parent_results == {done: {"r": 7}, local_parent: None,
                                           remote_parent: "B"}
