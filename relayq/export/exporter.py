"""One export of one queue: snapshot, then manifest, then retention.

1. Read the queue's jobs (relayq.export.reads: SCAN + pipelined HGETALL) into a
   `SnapshotWriter`, which writes a sorted, gzip-compressed snapshot to a local temporary file.
2. Upload it to `<queue>/snapshots/YYYY/MM/DD/<time>-<id>.ndjson.gz` with put-if-absent (the
   name is unique, so nothing is ever overwritten).
3. Add it to the manifest by compare-and-set (relayq.export.manifest.commit).
4. Delete the snapshots the manifest no longer keeps, and orphans: snapshots that never made it
   into the manifest (an exporter died between 2 and 3). An orphan is deleted only once it is
   older than the oldest kept snapshot of a full manifest and older than `orphan_grace_s`, so a
   snapshot some slow exporter is about to commit is never taken away from it.

A crash anywhere leaves a valid manifest: before step 3 it still names the previous snapshots
(all present, since only step 4 deletes and only what no manifest names), after it the new one.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from ..connection import RedisClient
from ..logs import log_event
from ..rfc3339 import format_ms
from . import manifest, reads
from .snapshot import FORMAT, VERSION, SnapshotWriter
from .store import ObjectStore, StoreUnavailable

log = logging.getLogger("relayq.export")

DEFAULT_KEEP = 24
ORPHAN_GRACE_S = 3600.0

# progress(done, total): called as jobs are read; total is an estimate (None: unknown)
Progress = Callable[[int, int | None], None]


@dataclass(slots=True)
class ExportResult:
    queue: str
    key: str
    jobs: int
    states: dict[str, int]
    bytes: int
    seconds: float
    manifest_sequence: int
    pruned: list[str]
    conflicts: int

    def to_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__slots__}


def snapshot_key(queue: str, started_ms: int) -> str:
    """`<queue>/snapshots/YYYY/MM/DD/<YYYYMMDDTHHMMSSmmmZ>-<random>.ndjson.gz`."""
    when = datetime.fromtimestamp(started_ms / 1000, UTC)
    stamp = when.strftime("%Y%m%dT%H%M%S") + f"{started_ms % 1000:03d}Z"
    return (f"{manifest.snapshots_prefix(queue)}{when:%Y/%m/%d}/{stamp}-{os.urandom(4).hex()}"
            ".ndjson.gz")


def export_queue(redis: RedisClient, store: ObjectStore, queue: str, *, keep: int = DEFAULT_KEEP,
                 progress: Progress | None = None, orphan_grace_s: float = ORPHAN_GRACE_S
                 ) -> ExportResult:
    """Exports one queue (see the module docstring); returns what was written."""
    clock = time.monotonic()
    started_ms = reads.redis_time_ms(redis)
    key = snapshot_key(queue, started_ms)
    total = reads.estimated_jobs(redis, queue) if progress else None
    with SnapshotWriter(queue) as writer, tempfile.TemporaryFile(prefix="relayq-snap-") as out:
        done = 0
        for batch in reads.job_hashes(redis, queue):
            for local_id, h, waiting_for in batch:
                writer.add(local_id, h, waiting_for)
            done += len(batch)
            if progress:
                progress(done, total)
        header = {
            "format": FORMAT, "version": VERSION, "queue": queue, "key": key,
            "started_at": format_ms(started_ms),
            "read_until": format_ms(reads.redis_time_ms(redis)),
            "sequence": reads.queue_sequence(redis, queue),
            "settings": reads.queue_settings(redis, queue),
        }
        info = writer.finish(header, out)
        out.seek(0)
        store.put_if_absent(key, out)
    done_ms = reads.redis_time_ms(redis)
    result = manifest.commit(store, queue, manifest.Entry.new(key, started_ms, info), keep,
                             done_ms)
    pruned = [e.key for e in result.pruned]
    for old in pruned:
        _delete(store, old)
    pruned += prune_orphans(store, result.manifest, keep, done_ms, orphan_grace_s)
    return ExportResult(queue, key, info.jobs, info.states, info.bytes,
                        round(time.monotonic() - clock, 3), result.manifest.sequence, pruned,
                        result.conflicts)


def prune_orphans(store: ObjectStore, current: manifest.Manifest, keep: int, now_ms: int,
                  grace_s: float) -> list[str]:
    """Deletes snapshots of the queue that the manifest does not name, when they are older
    than its oldest entry (and the manifest is full) and older than `grace_s`."""
    if len(current.snapshots) < keep:
        return []
    oldest = current.snapshots[0].key
    named = {e.key for e in current.snapshots}
    cutoff = snapshot_key(current.queue, now_ms - int(grace_s * 1000))
    deleted = []
    for key in store.list(manifest.snapshots_prefix(current.queue)):
        if key not in named and key < oldest and key < cutoff and key.endswith(".ndjson.gz"):
            _delete(store, key)
            deleted.append(key)
    return deleted


def _delete(store: ObjectStore, key: str) -> None:
    """Retention is best effort: a snapshot that could not be deleted now is an orphan that a
    later export removes."""
    try:
        store.delete(key)
    except StoreUnavailable as e:
        log_event(log, logging.WARNING, "export.delete_failed", key=key, error=str(e))

