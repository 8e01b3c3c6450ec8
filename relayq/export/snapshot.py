"""The snapshot file: gzip-compressed NDJSON, a header line, then one job per line.

Header: `{"format": "relayq.snapshot", "version": 1, "queue", "key", "started_at",
"read_until", "sequence", "settings"}` (times RFC 3339 UTC; `sequence` is the queue's id
sequence when reading ended; `settings` the queue's recorded settings, for reference).

Each job line is the job's JSON view (docs/data-model.md: id, queue, type, payload, state, group,
depends_on, parent_results, ...; times as RFC 3339 UTC with milliseconds) plus `backoff_base_ms`
and `backoff_cap_ms`, and for a waiting job `waiting_for` (the parents whose end it has not heard
of yet), so that a line holds everything needed to put the job back. Lease tokens are never
written.

Lines are sorted by job id (so by creation time) with each job exactly once: `SnapshotWriter`
sorts runs of lines in memory, spills each run to a temporary file, and merges the runs into
the output; when Redis's SCAN returned a job twice, the copy read last wins. Memory stays
bounded by the run size, whatever the size of the queue.

`SnapshotReader` reads a downloaded snapshot as a stream, line by line, each line checked with
the checks of enqueue and ack and every rule of restore.lua. `restore` reads it twice: once to
check it whole (with size and SHA-256 against the manifest), then again to write. No line longer
than the queue's payload limit allows is ever held (`Limits`): a gzip bomb is refused at its
first long line, with memory bounded by the limits, not by what the file expands to.
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
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO

from ..codec import dumps
from ..errors import InvalidArgument, RelayqError
from ..job import LOCAL_ID, STATES, Job, RestoredJob, parse_job_id
from ..limits import (
    MAX_ATTEMPTS,
    MAX_DURATION_MS,
    MAX_ERROR_BYTES,
    MAX_IDEMPOTENCY_KEY_BYTES,
    MAX_PARENTS,
    MAX_PRIORITY,
    MAX_RESTORED_ATTEMPTS,
    MAX_SEQUENCE,
    MAX_SNAPSHOT_HEADER_BYTES,
    MAX_TIME_MS,
    MAX_TYPE_BYTES,
    MAX_WORKER_ID_BYTES,
    MIN_PRIORITY,
    SNAPSHOT_LINE_OVERHEAD_BYTES,
)
from ..options import check_group, check_int, check_json_text, check_payload_size, check_str
from ..rfc3339 import parse_ms

FORMAT = "relayq.snapshot"
VERSION = 1
RUN_SIZE = 50_000  # job lines sorted in memory before a run is spilled to disk
KEY_WIDTH = 20  # job ids are at most 20 digits: zero-padded, they sort as numbers


class InvalidSnapshot(RelayqError):
    """A snapshot that is corrupt, truncated, not relayq's or does not match its manifest."""

    code = "invalid_snapshot"


@dataclass(slots=True)
class SnapshotInfo:
    """What the manifest records about a written snapshot."""

    jobs: int = 0
    states: dict[str, int] = field(default_factory=dict)
    bytes: int = 0
    sha256: str = ""


def job_line(queue: str, local_id: str, h: dict[str, str],
             waiting_for: list[str] | None = None) -> str:
    """One job hash as a snapshot line (JSON text, no newline); `waiting_for`: of a waiting
    job, the parents it still waits for."""
    view = Job.from_hash(queue, local_id, h, json.loads).to_dict()
    view["backoff_base_ms"] = int(h["bb"]) if "bb" in h else None
    view["backoff_cap_ms"] = int(h["bc"]) if "bc" in h else None
    if view["state"] == "waiting":
        view["waiting_for"] = sorted(waiting_for or ())
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

    def add(self, local_id: str, h: dict[str, str], waiting_for: list[str] | None = None
            ) -> None:
        if not LOCAL_ID.fullmatch(local_id):
            return  # not a key relayq made: nothing to snapshot
        self._run.append((local_id.zfill(KEY_WIDTH),
                          job_line(self.queue, local_id, h, waiting_for)))
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



@dataclass(frozen=True, slots=True)
class Limits:
    """What a snapshot may hold, from the limits of the queue it is restored into: a payload or
    result of at most `payload_bytes` (as enqueue and ack take them), so a job line of at most
    `line_bytes`. Reading stops at the first longer line, whatever follows."""

    payload_bytes: int

    @property
    def line_bytes(self) -> int:
        return 2 * self.payload_bytes + SNAPSHOT_LINE_OVERHEAD_BYTES


def _int(view: dict[str, Any], name: str, lo: int, hi: int, optional: bool = True) -> int | None:
    value = view.get(name)
    if value is None and optional:
        return None
    return check_int(value, name, lo, hi)


def _text(view: dict[str, Any], name: str, max_bytes: int) -> str | None:
    """An optional string field: None or "" is absent (as restore.lua reads '')."""
    value = view.get(name)
    if value is None or value == "":
        return None
    return check_str(value, name, max_bytes)


def _json(view: dict[str, Any], name: str, limits: Limits) -> str:
    """A payload or result as the JSON text to store, checked as enqueue and ack check it."""
    return check_json_text(check_payload_size(dumps(view[name]), limits.payload_bytes, name),
                           name)


def _job_ids(view: dict[str, Any], name: str) -> list[str]:
    """A list of full job ids (absent: empty), each checked; at most MAX_PARENTS."""
    value = view.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_PARENTS:
        raise ValueError(f"{name} must be a list of at most {MAX_PARENTS} job ids")
    for job_id in value:
        parse_job_id(job_id)
    return value


def _workflow(view: dict[str, Any], state: str, limits: Limits) -> dict[str, str | None]:
    """The workflow fields of a job line as restore.lua takes them: parents, what to do if one
    fails, the results of those that succeeded, and (waiting) those still to end."""
    parents = _job_ids(view, "depends_on")
    waiting_for = _job_ids(view, "waiting_for")
    if state == "waiting" and not parents:
        raise ValueError("a waiting job needs depends_on")
    if not set(waiting_for) <= set(parents) or (waiting_for and state != "waiting"):
        raise ValueError("waiting_for must name parents of a waiting job")
    on_failure = view.get("on_parent_failure")
    if on_failure not in (None, "cancel", "run"):
        raise ValueError("on_parent_failure must be cancel or run")
    results = view.get("parent_results") or {}
    if not isinstance(results, dict) or not set(results) <= set(parents):
        raise ValueError("parent_results must map parents to their results")
    texts = {parent: check_json_text(dumps(result), "parent result")
             for parent, result in results.items()}
    if sum(len(text.encode()) for text in texts.values()) > limits.payload_bytes:
        raise ValueError(f"parent_results are over the payload limit of {limits.payload_bytes}")
    return {"depends_on": ",".join(parents) or None, "on_parent_failure": on_failure,
            "parent_results": json.dumps(texts) if texts else None,
            "waiting_for": ",".join(waiting_for) or None}


def _time(view: dict[str, Any], name: str) -> int | None:
    value = view.get(name)
    if value is None:
        return None
    ms = parse_ms(value, name)
    if not 0 <= ms <= MAX_TIME_MS:
        raise ValueError(f"{name} is out of range")
    return ms


def restored_job(view: Any, queue: str, limits: Limits) -> RestoredJob:
    """A snapshot line (parsed) as a job to restore into `queue`, checked with the checks of
    enqueue and ack (relayq.options) and every rule of restore.lua, so that a snapshot that
    passes here is not refused halfway through a restore. ValueError or InvalidArgument names
    what is wrong."""
    if not isinstance(view, dict):
        raise ValueError("a job line must be a JSON object")
    job_queue, local_id = parse_job_id(view.get("id"))
    if job_queue != queue or view.get("queue") != queue:
        raise ValueError(f"job {view.get('id')!r:.100} (queue {view.get('queue')!r:.80}) is "
                         f"not of queue {queue}")
    state = view.get("state")
    if state not in STATES:
        raise ValueError(f"unknown state {state!r:.40}")
    if "payload" not in view:
        raise ValueError("payload is missing")
    job = RestoredJob(
        local_id=local_id, state=state,
        priority=_int(view, "priority", MIN_PRIORITY, MAX_PRIORITY, optional=False),
        payload=_json(view, "payload", limits), type=_text(view, "type", MAX_TYPE_BYTES),
        attempts=_int(view, "attempts", 0, MAX_RESTORED_ATTEMPTS, optional=False),
        max_attempts=_int(view, "max_attempts", 1, MAX_ATTEMPTS, optional=False),
        created_at=_time(view, "created_at"),
        run_at=_time(view, "run_at"), started_at=_time(view, "started_at"),
        finished_at=_time(view, "finished_at"),
        result=None if view.get("result") is None else _json(view, "result", limits),
        last_error=_text(view, "last_error", MAX_ERROR_BYTES),
        idempotency_key=_text(view, "idempotency_key", MAX_IDEMPOTENCY_KEY_BYTES),
        timeout_ms=_int(view, "timeout_ms", 1, MAX_DURATION_MS),
        backoff_base_ms=_int(view, "backoff_base_ms", 0, MAX_DURATION_MS),
        backoff_cap_ms=_int(view, "backoff_cap_ms", 0, MAX_DURATION_MS),
        worker_id=_text(view, "worker_id", MAX_WORKER_ID_BYTES),
        group=None if view.get("group") is None else check_group(view["group"]),
        **_workflow(view, state, limits),
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
    except (ValueError, RecursionError):
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise InvalidSnapshot("not a relayq snapshot: the first line is not its header")
    if header.get("version") != VERSION:
        raise InvalidSnapshot(f"snapshot format version {header.get('version')!r:.40} is not "
                              f"supported (this relayq reads version {VERSION})")
    if header.get("queue") != queue:
        raise InvalidSnapshot(f"snapshot is of queue {header.get('queue')!r:.80}, not {queue!r}")
    try:
        check_int(header.get("sequence"), "sequence", 0, MAX_SEQUENCE)
    except InvalidArgument as e:
        raise InvalidSnapshot(f"snapshot header: {e.message}") from None
    return header


class SnapshotReader:
    """Reads a snapshot file as a stream: `header()` reads its first line, each `jobs()` reads
    it from the start. gzip is decompressed as lines are read, and no line longer than the
    limits allow is ever held, so memory stays bounded whatever the file expands to. Every
    fault (bad gzip, truncation, a line too long, bad JSON, ids out of order or repeated, a job
    that enqueue or restore.lua would refuse) raises InvalidSnapshot naming the line."""

    def __init__(self, path: Path, queue: str, limits: Limits) -> None:
        self.path, self.queue, self.limits = path, queue, limits
        self.number = 0  # the line last read

    def _line(self, f: IO[bytes], limit: int) -> bytes:
        """The next line (b"" at the end), read with at most `limit` bytes held."""
        self.number += 1
        line = f.readline(limit + 1)
        if len(line) > limit:
            why = ("a header" if self.number == 1 else
                   f"a job with payload and result of at most {self.limits.payload_bytes} bytes")
            raise InvalidSnapshot(f"line {self.number} is longer than {limit} bytes, the most "
                                  f"{why} can take: refused unread")
        return line

    def header(self) -> dict[str, Any]:
        with self._opened() as f:
            line = self._line(f, MAX_SNAPSHOT_HEADER_BYTES)
            if not line:
                raise InvalidSnapshot("snapshot is empty: no header line")
            return read_header(line, self.queue)

    def jobs(self) -> Iterator[RestoredJob]:
        """The header is checked again, then every job, in order."""
        with self._opened() as f:
            read_header(self._line(f, MAX_SNAPSHOT_HEADER_BYTES), self.queue)
            previous = ""
            while line := self._line(f, self.limits.line_bytes):
                try:
                    job = restored_job(json.loads(line), self.queue, self.limits)
                except RecursionError:
                    raise InvalidSnapshot(f"line {self.number}: nested too deep") from None
                except (ValueError, RelayqError) as e:
                    message = getattr(e, "message", None) or str(e)
                    raise InvalidSnapshot(f"line {self.number}: {message}") from None
                key = job.local_id.zfill(KEY_WIDTH)
                if key <= previous:
                    raise InvalidSnapshot(
                        f"line {self.number}: job {self.queue}.{job.local_id} is "
                        f"{'repeated' if key == previous else 'out of order'}: a snapshot "
                        "holds each job once, in ascending id order")
                previous = key
                yield job

    @contextmanager
    def _opened(self) -> Iterator[IO[bytes]]:
        self.number = 0
        try:
            with gzip.open(self.path, "rb") as f:
                yield f
        except (OSError, EOFError, zlib.error) as e:
            raise InvalidSnapshot(f"snapshot is corrupt or truncated after line "
                                  f"{max(self.number - 1, 0)}: {e}") from None
