"""`restore`: put a queue's jobs back from a snapshot, idempotently.

1. Pick the snapshot: the one named, or the manifest's latest. A snapshot the manifest lists is
   checked against its recorded size and SHA-256; one it does not list (an orphan, or a store
   whose manifest is lost) is trusted to its gzip checksum alone, and the result says so.
2. Download it to a temporary file (streaming, bounded memory).
3. First pass: check everything (checksum, gzip integrity, header, every line, the job count)
   before anything is written. Any fault refuses the whole snapshot with nothing written.
4. Second pass: send the jobs in batches through `Queue.restore` (lua/restore.lua), which puts
   each job back only where its id is absent: restoring twice gives no duplicates. Running jobs
   come back ready, scheduled ones keep their due time, dead ones stay dead; idempotency keys come
   back with their jobs; the queue's id sequence is raised to the snapshot's.

`dry_run` stops after the first pass and reports what would happen, asking Redis only which jobs
already exist.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..job import RestoredJob
from ..queue import Queue
from . import manifest, reads
from .snapshot import InvalidSnapshot, check_file, read_snapshot
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
    it)."""
    current, _ = manifest.load(store, queue)
    if key is None:
        if current.latest is None:
            raise ObjectNotFound(f"no snapshot of queue {queue} in {store.uri} (no manifest at "
                                 f"{manifest.manifest_key(queue)}); name one with --snapshot")
        key = current.latest
    return key, current.entry(key)


def restore_snapshot(queue: Queue[Any], store: ObjectStore, key: str | None = None, *,
                     dry_run: bool = False, progress: Progress | None = None) -> RestoreResult:
    """Restores `key` (default: the latest snapshot) into `queue`; see the module docstring."""
    key, entry = pick_snapshot(store, queue.name, key)
    result = RestoreResult(queue.name, key, entry is not None, dry_run=dry_run)
    with tempfile.TemporaryDirectory(prefix="relayq-restore-") as tmp:
        path = Path(tmp) / "snapshot.ndjson.gz"
        with path.open("wb") as f:
            store.download(key, f)
        header = _check(path, queue.name, entry, result, progress)
        if dry_run:
            _count_present(queue, path, result)
        else:
            _restore(queue, path, int(header.get("sequence") or 0) or None, result, progress)
    return result


def _check(path: Path, queue: str, entry: manifest.Entry | None, result: RestoreResult,
           progress: Progress | None) -> dict[str, Any]:
    """The first pass: raises InvalidSnapshot on any fault; fills in the job counts."""
    if entry is not None:
        check_file(path, entry.bytes, entry.sha256)
    header, jobs = read_snapshot(path, queue)
    states: Counter[str] = Counter()
    total = entry.jobs if entry else None
    if progress:
        progress(0, total, "check")
    for job in jobs:
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
    return header


def _batches(path: Path, queue: str) -> Any:
    batch: list[RestoredJob] = []
    for job in read_snapshot(path, queue)[1]:
        batch.append(job)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _restore(queue: Queue[Any], path: Path, sequence: int | None, result: RestoreResult,
             progress: Progress | None) -> None:
    statuses: Counter[str] = Counter()
    if progress:
        progress(0, result.jobs, "restore")
    for batch in _batches(path, queue.name):
        statuses.update(queue.restore(batch, min_sequence=sequence))
        if progress:
            progress(statuses.total(), result.jobs, "restore")
    result.statuses = dict(sorted(statuses.items()))


def _count_present(queue: Queue[Any], path: Path, result: RestoreResult) -> None:
    present = 0
    for batch in _batches(path, queue.name):
        present += sum(reads.existing(queue.redis, queue.name, [j.local_id for j in batch]))
    result.statuses = {"present": present, "absent": result.jobs - present}
