"""The snapshot file: gzip-compressed NDJSON, a header line, then one job per line.

Header: `{"format": "relayq.snapshot", "version": 1, "queue", "key", "started_at",
"read_until", "sequence", "settings"}` (times RFC 3339 UTC; `sequence` is the queue's id
sequence when reading ended; `settings` the queue's recorded settings, for reference).

Each job line is the job's JSON view (the SPEC's fields: id, queue, type, payload, state, ...,
times as RFC 3339 UTC with milliseconds) plus `backoff_base_ms` and `backoff_cap_ms`, so that a
line holds everything needed to put the job back. Lease tokens are never written.

Lines are sorted by job id (so by creation time) with each job exactly once: `SnapshotWriter`
sorts runs of lines in memory, spills each run to a temporary file, and merges the runs into
the output; when Redis's SCAN returned a job twice, the copy read last wins. Memory stays
bounded by the run size, whatever the size of the queue.

`read_snapshot` checks a downloaded snapshot whole (size and SHA-256 against the manifest, gzip
integrity, the header, every line) before `restore` writes anything, then reads it again to
restore: two streaming passes, never the whole file in memory.
"""

from __future__ import annotations

import gzip
import hashlib
import heapq
import json
import tempfile
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO

from ..codec import dumps
from ..errors import RelayqError
from ..job import LOCAL_ID, STATES, Job, RestoredJob, parse_job_id
from ..limits import (
    MAX_ATTEMPTS,
    MAX_DURATION_MS,
    MAX_ERROR_BYTES,
    MAX_IDEMPOTENCY_KEY_BYTES,
    MAX_PRIORITY,
    MAX_RESTORED_ATTEMPTS,
    MAX_TIME_MS,
    MAX_TYPE_BYTES,
    MAX_WORKER_ID_BYTES,
    MIN_PRIORITY,
)
from ..rfc3339 import parse_ms

FORMAT = "relayq.snapshot"
VERSION = 1
RUN_SIZE = 50_000  # job lines sorted in memory before a run is spilled to disk
KEY_WIDTH = 20  # job ids are at most 20 digits: zero-padded, they sort as numbers


class InvalidSnapshot(RelayqError):
    """A snapshot that is corrupt, truncated, not relayq's or does not match its manifest."""

    code = "invalid_snapshot"
    http_status = 422


@dataclass(slots=True)
class SnapshotInfo:
    """What the manifest records about a written snapshot."""

    jobs: int = 0
    states: dict[str, int] = field(default_factory=dict)
    bytes: int = 0
    sha256: str = ""


def job_line(queue: str, local_id: str, h: dict[str, str]) -> str:
    """One job hash as a snapshot line (JSON text, no newline)."""
    view = Job.from_hash(queue, local_id, h, json.loads).to_dict()
    view["backoff_base_ms"] = int(h["bb"]) if "bb" in h else None
    view["backoff_cap_ms"] = int(h["bc"]) if "bc" in h else None
    return json.dumps(view, separators=(",", ":"))


class _Hashing:
    """A write-only file wrapper that counts and hashes what passes through."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.out.write(data)

    def flush(self) -> None:
        self.out.flush()


class SnapshotWriter:
    """Collects job lines (`add`), then writes the snapshot (`finish`). Use as a context
    manager, so that spilled runs are removed whatever happens."""

    def __init__(self, queue: str, run_size: int | None = None) -> None:
        self.queue = queue
        self.run_size = run_size or RUN_SIZE
        self._run: list[tuple[str, str]] = []
        self._spilled: list[IO[str]] = []

    def __enter__(self) -> SnapshotWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        for f in self._spilled:
            f.close()
        self._spilled.clear()

    def add(self, local_id: str, h: dict[str, str]) -> None:
        if not LOCAL_ID.fullmatch(local_id):
            return  # not a key relayq made: nothing to snapshot
        self._run.append((local_id.zfill(KEY_WIDTH), job_line(self.queue, local_id, h)))
        if len(self._run) >= self.run_size:
            self._spill()

    def _sorted_run(self) -> list[tuple[str, str]]:
        run, self._run = self._run, []
        run.sort(key=lambda item: item[0])  # stable: a later read of one id stays later
        return run

    def _spill(self) -> None:
        # closed by __exit__: the run lives until the merge has read it
        f = tempfile.TemporaryFile("w+", encoding="utf-8", prefix="relayq-run-")  # noqa: SIM115
        f.writelines(f"{key} {line}\n" for key, line in self._sorted_run())
        f.seek(0)
        self._spilled.append(f)

    def _merged(self) -> Iterator[tuple[str, str]]:
        """Every (key, line), by key; runs are merged oldest first, so equal keys come out in
        the order they were read."""
        runs: list[Any] = [((line[:KEY_WIDTH], line[KEY_WIDTH + 1:-1]) for line in f)
                           for f in self._spilled]
        runs.append(iter(self._sorted_run()))
        return heapq.merge(*runs, key=lambda item: item[0])

    def finish(self, header: dict[str, Any], out: BinaryIO, compresslevel: int = 6
               ) -> SnapshotInfo:
        """Writes header and jobs (each id once: the copy read last) to `out`, gzip-compressed."""
        info = SnapshotInfo()
        states: Counter[str] = Counter()
        hashing = _Hashing(out)
        with gzip.GzipFile(fileobj=hashing, mode="wb", compresslevel=compresslevel,
                           mtime=0) as gz:
            gz.write(json.dumps(header, separators=(",", ":")).encode() + b"\n")
            pending: tuple[str, str] | None = None
            batch: list[bytes] = []
            for item in self._merged():
                if pending is not None and item[0] != pending[0]:
                    batch.append(pending[1].encode() + b"\n")
                    states[_state_of(pending[1])] += 1
                    if len(batch) >= 1000:
                        gz.write(b"".join(batch))
                        batch.clear()
                pending = item
            if pending is not None:
                batch.append(pending[1].encode() + b"\n")
                states[_state_of(pending[1])] += 1
            gz.write(b"".join(batch))
        info.jobs = sum(states.values())
        info.states = dict(sorted(states.items()))
        info.bytes = hashing.size
        info.sha256 = hashing.sha.hexdigest()
        return info


def _state_of(line: str) -> str:
    """The state field of a job line, without parsing the whole line."""
    start = line.index('"state":"') + 9
    return line[start:line.index('"', start)]


# -- reading --------------------------------------------------------------------------------


def _int(view: dict[str, Any], name: str, lo: int, hi: int, optional: bool = True) -> int | None:
    value = view.get(name)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer between {lo} and {hi}")
    return value


def _str(view: dict[str, Any], name: str, max_bytes: int) -> str | None:
    value = view.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value.encode("utf-8", "surrogatepass")) > max_bytes:
        raise ValueError(f"{name} must be a string of at most {max_bytes} bytes")
    return value


def _time(view: dict[str, Any], name: str) -> int | None:
    value = view.get(name)
    if value is None:
        return None
    ms = parse_ms(value, name)
    if not 0 <= ms <= MAX_TIME_MS:
        raise ValueError(f"{name} is out of range")
    return ms


def restored_job(view: Any, queue: str) -> RestoredJob:
    """A snapshot line (parsed) as a job to restore into `queue`, checked the way restore.lua
    checks it, so that a snapshot that passes here is not refused halfway through a restore.
    ValueError names what is wrong."""
    if not isinstance(view, dict):
        raise ValueError("a job line must be a JSON object")
    job_queue, local_id = parse_job_id(view.get("id"))
    if job_queue != queue:
        raise ValueError(f"job {view.get('id')} is not of queue {queue}")
    state = view.get("state")
    if state not in STATES:
        raise ValueError(f"unknown state {state!r}")
    if "payload" not in view:
        raise ValueError("payload is missing")
    result = view.get("result")
    job = RestoredJob(
        local_id=local_id, state=state,
        priority=_int(view, "priority", MIN_PRIORITY, MAX_PRIORITY, optional=False),
        payload=dumps(view["payload"]), type=_str(view, "type", MAX_TYPE_BYTES),
        attempts=_int(view, "attempts", 0, MAX_RESTORED_ATTEMPTS, optional=False),
        max_attempts=_int(view, "max_attempts", 1, MAX_ATTEMPTS, optional=False),
        created_at=_time(view, "created_at"),
        run_at=_time(view, "run_at"), started_at=_time(view, "started_at"),
        finished_at=_time(view, "finished_at"),
        result=None if result is None else dumps(result),
        last_error=_str(view, "last_error", MAX_ERROR_BYTES),
        idempotency_key=_str(view, "idempotency_key", MAX_IDEMPOTENCY_KEY_BYTES) or None,
        timeout_ms=_int(view, "timeout_ms", 1, MAX_DURATION_MS),
        backoff_base_ms=_int(view, "backoff_base_ms", 0, MAX_DURATION_MS),
        backoff_cap_ms=_int(view, "backoff_cap_ms", 0, MAX_DURATION_MS),
        worker_id=_str(view, "worker_id", MAX_WORKER_ID_BYTES) or None,
    )
    if job.created_at is None:
        raise ValueError("created_at is missing")
    if state == "scheduled" and job.run_at is None:
        raise ValueError("a scheduled job needs run_at")
    if state in ("succeeded", "dead", "cancelled") and job.finished_at is None:
        raise ValueError(f"a {state} job needs finished_at")
    return job


def check_file(path: Path, size: int | None, sha256: str | None) -> None:
    """Size and SHA-256 of the downloaded object against what the manifest recorded."""
    digest = hashlib.sha256()
    actual = 0
    with path.open("rb") as f:
        while chunk := f.read(1024 * 1024):
            digest.update(chunk)
            actual += len(chunk)
    if size is not None and actual != size:
        raise InvalidSnapshot(f"snapshot is {actual} bytes, the manifest says {size}: "
                              "truncated or replaced")
    if sha256 is not None and digest.hexdigest() != sha256:
        raise InvalidSnapshot("snapshot checksum does not match the manifest: corrupt or "
                              "replaced")


def read_header(line: bytes, queue: str) -> dict[str, Any]:
    try:
        header = json.loads(line)
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise InvalidSnapshot("not a relayq snapshot: the first line is not its header")
    if header.get("version") != VERSION:
        raise InvalidSnapshot(f"snapshot format version {header.get('version')!r} is not "
                              f"supported (this relayq reads version {VERSION})")
    if header.get("queue") != queue:
        raise InvalidSnapshot(f"snapshot is of queue {header.get('queue')!r}, not {queue!r}")
    return header


def read_snapshot(path: Path, queue: str) -> tuple[dict[str, Any], Iterator[RestoredJob]]:
    """The header and an iterator over the jobs of a snapshot file. Every fault (bad gzip,
    truncation, bad JSON, a job that would be refused) raises InvalidSnapshot naming the line."""
    f = gzip.open(path, "rb")  # noqa: SIM115 - closed by jobs(), or here on a bad header
    lines = enumerate(f, start=1)
    try:
        header = read_header(_next_line(lines)[1], queue)
    except BaseException:
        f.close()
        raise

    def jobs() -> Iterator[RestoredJob]:
        with f:
            number = 1
            try:
                for number, line in lines:  # noqa: B007 - read by the handlers below
                    yield restored_job(json.loads(line), queue)
            except (OSError, EOFError, zlib.error) as e:
                raise InvalidSnapshot(f"snapshot is corrupt or truncated after line {number}: "
                                      f"{e}") from None
            except (ValueError, RelayqError) as e:
                message = getattr(e, "message", None) or str(e)
                raise InvalidSnapshot(f"line {number}: {message}") from None

    return header, jobs()


def _next_line(lines: Iterator[tuple[int, bytes]]) -> tuple[int, bytes]:
    try:
        return next(lines)
    except StopIteration:
        raise InvalidSnapshot("snapshot is empty: no header line") from None
    except (OSError, EOFError, zlib.error) as e:
        raise InvalidSnapshot(f"snapshot is corrupt or truncated: {e}") from None
