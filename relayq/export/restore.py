"""`restore`: put a queue's jobs back from a snapshot, in two phases: check it all, then write.

1. Pick the snapshot: the one named, or the manifest's latest (a key must name a snapshot of the
   queue inside the store: `manifest.check_snapshot_key`). A snapshot the manifest lists is
   checked against its recorded size and SHA-256; one it does not list (an orphan, or a store
   whose manifest is lost) is trusted to its gzip checksum alone, and the result says so.
2. Download it to a temporary file (streaming, bounded memory).
3. Check pass: the checksum, gzip integrity, the header, and every line with the checks enqueue
   and ack apply (payload and result size against the queue's limit, JSON depth, valid Unicode,
   ids, queue, field ranges) and every rule of restore.lua, ids ascending and each once, and the
   job count; lines are read as a stream with the queue's line cap (`snapshot.Limits`). Any
   fault refuses the whole snapshot with nothing written.
4. Write pass: the jobs in batches through `Queue.restore` (lua/restore.lua), which puts each job
   back only where its id is absent and never overwrites a job or an idempotency key that
   exists. Each script call is atomic; a crash or Redis error between calls leaves the jobs of
   the calls that ran, and running the same restore again completes it (those answer
   `present`). Running jobs come back ready, scheduled ones keep their due time, dead ones stay
   dead; the queue's id sequence is raised to the snapshot's.

`dry_run` stops after the check pass and reports what would happen, asking Redis only which jobs
already exist.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import RelayqError
from ..job import RestoredJob
from ..queue import Queue
from . import manifest, reads
from .snapshot import InvalidSnapshot, Limits, SnapshotReader, check_file
from .store import ObjectNotFound, ObjectStore

BATCH = 500
# progress(done, total, phase): phase is "check" or "restore"
Progress = Callable[[int, int | None, str], None]


@dataclass(slots=True)
class RestoreResult:
    queue: str
    key: str
    verified_by_manifest: bool
    jobs: int = 0
    states: dict[str, int] = field(default_factory=dict)
    # ok, present, conflict, expired; a dry run counts present and absent
    statuses: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False

    @property
    def restored(self) -> int:
        return self.statuses.get("ok", 0)

    def to_dict(self) -> dict[str, Any]:
        view = {name: getattr(self, name) for name in self.__slots__}
        view["restored"] = self.restored
        return view


def pick_snapshot(store: ObjectStore, queue: str, key: str | None
                  ) -> tuple[str, manifest.Entry | None]:
    """The snapshot to restore and its manifest entry (None when the manifest does not list
    it). InvalidArgument for a key that cannot name a snapshot of `queue`."""
    if key is not None:
        manifest.check_snapshot_key(queue, key)
    current, _ = manifest.load(store, queue)
    if key is None:
        if current.latest is None:
            raise ObjectNotFound(f"no snapshot of queue {queue} in {store.uri} (no manifest at "
                                 f"{manifest.manifest_key(queue)}); name one with --snapshot")
        key = current.latest
    return key, current.entry(key)


def restore_limits(queue: Queue[Any]) -> Limits:
    """The limits a snapshot must keep to be restored into `queue`: the smaller of this
    client's payload limit (as enqueue applies it) and the queue's own setting (as its
    scripts apply it)."""
    return Limits(min(queue.max_payload_bytes, reads.max_payload_bytes(queue.redis, queue.name)))


def restore_snapshot(queue: Queue[Any], store: ObjectStore, key: str | None = None, *,
                     dry_run: bool = False, progress: Progress | None = None) -> RestoreResult:
    """Restores `key` (default: the latest snapshot) into `queue`; see the module docstring."""
    key, entry = pick_snapshot(store, queue.name, key)
    result = RestoreResult(queue.name, key, entry is not None, dry_run=dry_run)
    limits = restore_limits(queue)
    with tempfile.TemporaryDirectory(prefix="relayq-restore-") as tmp:
        path = Path(tmp) / "snapshot.ndjson.gz"
        with path.open("wb") as f:
            store.download(key, f)
        reader = SnapshotReader(path, queue.name, limits)
        sequence = _check(reader, entry, result, progress)
        if dry_run:
            _count_present(queue, reader, result)
        else:
            _restore(queue, reader, sequence, result, progress)
    return result


def _check(reader: SnapshotReader, entry: manifest.Entry | None, result: RestoreResult,
           progress: Progress | None) -> int:
    """The check pass: raises InvalidSnapshot on any fault; fills in the job counts; returns
    the snapshot's id sequence."""
    if entry is not None:
        check_file(reader.path, entry.bytes, entry.sha256)
    sequence = int(reader.header()["sequence"])
    states: Counter[str] = Counter()
    total = entry.jobs if entry else None
    if progress:
        progress(0, total, "check")
    for job in reader.jobs():
        states[job.state] += 1
        if progress and states.total() % 10_000 == 0:
            progress(states.total(), total, "check")
    result.jobs = states.total()
    result.states = dict(sorted(states.items()))
    if entry is not None and result.jobs != entry.jobs:
        raise InvalidSnapshot(f"snapshot holds {result.jobs} jobs, the manifest says "
                              f"{entry.jobs}")
    if progress:
        progress(result.jobs, result.jobs, "check")
    return sequence


def _batches(reader: SnapshotReader) -> Iterator[list[RestoredJob]]:
    batch: list[RestoredJob] = []
    for job in reader.jobs():
        batch.append(job)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _restore(queue: Queue[Any], reader: SnapshotReader, sequence: int, result: RestoreResult,
             progress: Progress | None) -> None:
    """The write pass. A failure (Redis gone, a refusal) says how far it got and that running
    the restore again completes it."""
    statuses: Counter[str] = Counter()
    if progress:
        progress(0, result.jobs, "restore")
    try:
        for batch in _batches(reader):
            statuses.update(queue.restore(batch, min_sequence=sequence or None))
            if progress:
                progress(statuses.total(), result.jobs, "restore")
    except RelayqError as e:
        e.message = (f"{e.message} (restore stopped after {statuses.total()} of "
                     f"{result.jobs} jobs were confirmed, a few more may be written: run it "
                     "again to complete it; jobs already restored are left alone)")
        e.args = (e.message,)
        raise
    result.statuses = dict(sorted(statuses.items()))


def _count_present(queue: Queue[Any], reader: SnapshotReader, result: RestoreResult) -> None:
    present = 0
    for batch in _batches(reader):
        present += sum(reads.existing(queue.redis, queue.name, [j.local_id for j in batch]))
    result.statuses = {"present": present, "absent": result.jobs - present}
