"""Export and restore: snapshots of queue state in object storage, coordinated by
compare-and-set on ETags instead of locks. docs/export.md describes the layout, the formats and
the consistency a snapshot gives.

- store, filestore, s3store: the object-store interface and its backends (`open_store(uri)`)
- reads: every Redis read of export (SCAN + pipelined HGETALL)
- snapshot: the snapshot file (writing it sorted and bounded in memory; checking it)
- manifest: the per-queue manifest and its compare-and-set update with retention
- exporter: one export of one queue (snapshot, manifest, pruning)
- restore: a snapshot back into a queue, through `Queue.restore`
- scheduler: `ExportScheduler`, exports on a schedule from a thread
"""

from .exporter import ExportResult, export_queue
from .manifest import InvalidManifest
from .restore import RestoreResult, restore_snapshot
from .scheduler import ExportScheduler, parse_duration
from .snapshot import InvalidSnapshot
from .store import (
    ObjectNotFound,
    ObjectStore,
    PreconditionFailed,
    StoreUnavailable,
    open_store,
)

__all__ = [
    "ExportResult", "ExportScheduler", "InvalidManifest", "InvalidSnapshot", "ObjectNotFound",
    "ObjectStore", "PreconditionFailed", "RestoreResult", "StoreUnavailable", "export_queue",
    "open_store", "parse_duration", "restore_snapshot",
]
