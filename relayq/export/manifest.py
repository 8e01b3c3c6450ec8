"""The manifest of a queue's snapshots, `<queue>/manifest.json`, changed only by compare-and-set.

    {"format": "relayq.manifest", "version": 1, "queue": "emails", "sequence": 42,
     "latest": "emails/snapshots/2026/11/22/20261122T202456123Z-3f9c2a1b.ndjson.gz",
     "updated_at": "2026-11-22T20:24:57.001Z",
     "snapshots": [{"key": ..., "sequence": 42, "created_at": ..., "jobs": 1000,
                    "states": {"ready": 990, "dead": 10}, "bytes": 52011, "sha256": ...}, ...]}

`sequence` counts the manifest's updates (each snapshot entry keeps the one it was added
with); `snapshots` are the kept snapshots, oldest first (by key, and keys begin with the time
the snapshot started on the Redis clock); `latest` is the newest of them. Every field is checked
on reading (`Manifest.from_json`): an entry's key must name a snapshot of the queue inside the
store, so a tampered manifest cannot make restore read another object.

`commit` adds one entry: it reads the manifest and its ETag, builds the next version, and writes
it with `If-Match: <etag>` (or `If-None-Match: *` when there is none yet). When another exporter
got there first the write fails with 412, and `commit` reads again and retries with a jittered
backoff, so no concurrent update is ever lost. Retention is part of the same step: the new
version keeps the newest `keep` entries, and the entries it drops are returned so that the caller
deletes their objects only after the manifest no longer names them.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ..backoff import Backoff
from ..errors import InvalidArgument, RelayqError
from ..rfc3339 import format_ms
from .snapshot import SnapshotInfo
from .store import ObjectNotFound, ObjectStore, PreconditionFailed, check_key

FORMAT = "relayq.manifest"
VERSION = 1
MAX_ATTEMPTS = 100
CONFLICT_FIRST_S, CONFLICT_CAP_S = 0.02, 1.0  # backoff between compare-and-set attempts


class InvalidManifest(RelayqError):
    """A manifest that cannot be read: it is never overwritten, so exports of its queue stop
    until it is repaired or removed."""

    code = "invalid_manifest"


def manifest_key(queue: str) -> str:
    return f"{queue}/manifest.json"


def snapshots_prefix(queue: str) -> str:
    return f"{queue}/snapshots/"


SNAPSHOT_SUFFIX = ".ndjson.gz"


def check_snapshot_key(queue: str, key: object) -> str:
    """`key` if it can name a snapshot of `queue` (under `<queue>/snapshots/`, ending in
    `.ndjson.gz`, inside the store), else InvalidArgument: a manifest or a command line never
    makes restore read anything else."""
    key = check_key(key)
    if not (key.startswith(snapshots_prefix(queue)) and key.endswith(SNAPSHOT_SUFFIX)):
        raise InvalidArgument(f"invalid snapshot key {key!r}: a snapshot of queue {queue} is "
                              f"{snapshots_prefix(queue)}...{SNAPSHOT_SUFFIX}")
    return key


SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def _count(doc: dict[str, Any], name: str) -> int:
    value = doc.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r:.40}")
    return value


def _entry(doc: Any, queue: str) -> Entry:
    """One entry of `snapshots`, every field checked (ValueError or TypeError names what is
    wrong)."""
    if not isinstance(doc, dict):
        raise ValueError("a snapshot entry must be an object")
    entry = Entry(**doc)
    try:
        check_snapshot_key(queue, entry.key)
    except InvalidArgument as e:
        raise ValueError(e.message) from None
    for name in ("sequence", "jobs", "bytes"):
        _count(doc, name)
    if not (isinstance(entry.sha256, str) and SHA256_HEX.fullmatch(entry.sha256)):
        raise ValueError(f"sha256 of {entry.key} must be 64 hex digits")
    if not (isinstance(entry.states, dict) and all(
            isinstance(k, str) and not isinstance(v, bool) and isinstance(v, int)
            for k, v in entry.states.items())):
        raise ValueError(f"states of {entry.key} must map states to counts")
    if not isinstance(entry.created_at, str):
        raise ValueError(f"created_at of {entry.key} must be a string")
    return entry


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
            entries = [_entry(e, queue) for e in doc["snapshots"]]
            return cls(queue, _count(doc, "sequence"), doc.get("updated_at"), entries)
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as e:
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
    backoff = Backoff(CONFLICT_FIRST_S, CONFLICT_CAP_S)
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
            time.sleep(backoff.next_delay())


def _with_sequence(entry: Entry, sequence: int) -> Entry:
    return Entry(**{**asdict(entry), "sequence": sequence})

