"""The manifest of a queue's snapshots, `<queue>/manifest.json`, changed only by compare-and-set.

    {"format": "relayq.manifest", "version": 1, "queue": "emails", "sequence": 42,
     "latest": "emails/snapshots/2026/11/22/20261122T202456123Z-3f9c2a1b.ndjson.gz",
     "updated_at": "2026-11-22T20:24:57.001Z",
     "snapshots": [{"key": ..., "sequence": 42, "created_at": ..., "jobs": 1000,
                    "states": {"ready": 990, "dead": 10}, "bytes": 52011, "sha256": ...}, ...]}

`sequence` counts the manifest's updates (each snapshot entry keeps the one it was added
with); `snapshots` are the kept snapshots, oldest first (by key, and keys begin with the time
the snapshot started on the Redis clock); `latest` is the newest of them.

`commit` adds one entry: it reads the manifest and its ETag, builds the next version, and writes
it with `If-Match: <etag>` (or `If-None-Match: *` when there is none yet). When another exporter
got there first the write fails with 412, and `commit` reads again and retries with a jittered
backoff, so no concurrent update is ever lost. Retention is part of the same step: the new
version keeps the newest `keep` entries, and the entries it drops are returned so that the caller
deletes their objects only after the manifest no longer names them.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, field

from ..errors import RelayqError
from ..rfc3339 import format_ms
from .snapshot import SnapshotInfo
from .store import ObjectNotFound, ObjectStore, PreconditionFailed

FORMAT = "relayq.manifest"
VERSION = 1
MAX_ATTEMPTS = 100


class InvalidManifest(RelayqError):
    """A manifest that cannot be read: it is never overwritten, so exports of its queue stop
    until it is repaired or removed."""

    code = "invalid_manifest"
    http_status = 422


def manifest_key(queue: str) -> str:
    return f"{queue}/manifest.json"


def snapshots_prefix(queue: str) -> str:
    return f"{queue}/snapshots/"


@dataclass(slots=True)
class Entry:
    key: str
    sequence: int
    created_at: str
    jobs: int
    states: dict[str, int]
    bytes: int
    sha256: str

    @classmethod
    def new(cls, key: str, created_ms: int, info: SnapshotInfo) -> Entry:
        return cls(key, 0, format_ms(created_ms) or "", info.jobs, info.states, info.bytes,
                   info.sha256)


@dataclass(slots=True)
class Manifest:
    queue: str
    sequence: int = 0
    updated_at: str | None = None
    snapshots: list[Entry] = field(default_factory=list)

    @property
    def latest(self) -> str | None:
        return self.snapshots[-1].key if self.snapshots else None

    def entry(self, key: str) -> Entry | None:
        return next((e for e in self.snapshots if e.key == key), None)

    def to_json(self) -> bytes:
        return json.dumps({
            "format": FORMAT, "version": VERSION, "queue": self.queue,
            "sequence": self.sequence, "latest": self.latest, "updated_at": self.updated_at,
            "snapshots": [asdict(e) for e in self.snapshots],
        }, indent=1).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes, queue: str) -> Manifest:
        try:
            doc = json.loads(data)
            if doc.get("format") != FORMAT or doc.get("queue") != queue:
                raise ValueError("not the manifest of this queue")
            if doc.get("version") != VERSION:
                raise ValueError(f"unsupported version {doc.get('version')!r}")
            entries = [Entry(**e) for e in doc["snapshots"]]
            return cls(queue, int(doc["sequence"]), doc.get("updated_at"), entries)
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            raise InvalidManifest(f"manifest of queue {queue} is unreadable: {e}") from None


def load(store: ObjectStore, queue: str) -> tuple[Manifest, str | None]:
    """The current manifest and its ETag (an empty manifest and None when there is none)."""
    try:
        stored = store.get(manifest_key(queue))
    except ObjectNotFound:
        return Manifest(queue), None
    return Manifest.from_json(stored.data, queue), stored.etag


@dataclass(slots=True)
class Commit:
    manifest: Manifest
    pruned: list[Entry]
    conflicts: int


def commit(store: ObjectStore, queue: str, entry: Entry, keep: int, now_ms: int) -> Commit:
    """Adds `entry` to the queue's manifest by compare-and-set, keeping the newest `keep`
    entries; retries on conflict. Idempotent: an entry already listed is not added again."""
    if keep < 1:
        raise ValueError("keep must be at least 1")
    conflicts = 0
    while True:
        current, etag = load(store, queue)
        if current.entry(entry.key) is not None:
            return Commit(current, [], conflicts)  # a retried write that had gone through
        entries = sorted([*current.snapshots, _with_sequence(entry, current.sequence + 1)],
                         key=lambda e: e.key)
        kept, pruned = entries[-keep:], entries[:-keep]
        new = Manifest(queue, current.sequence + 1, format_ms(now_ms), kept)
        try:
            if etag is None:
                store.put_if_absent(manifest_key(queue), new.to_json())
            else:
                store.put_if_match(manifest_key(queue), new.to_json(), etag)
            return Commit(new, pruned, conflicts)
        except PreconditionFailed:
            conflicts += 1
            if conflicts >= MAX_ATTEMPTS:
                raise
            time.sleep(random.uniform(0, min(1.0, 0.01 * 2 ** min(conflicts, 7))))


def _with_sequence(entry: Entry, sequence: int) -> Entry:
    return Entry(**{**asdict(entry), "sequence": sequence})

