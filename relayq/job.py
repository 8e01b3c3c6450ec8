"""Jobs as Python sees them: ids, the `Job` record read from a job hash, and its JSON view.

A job id is ``<queue>.<number>``: the queue the job lives in, then a number that Redis made from
its clock and a per-queue sequence (``<epoch ms><6 digits>``), so ids of a queue sort by creation
time and every id says which queue (and so which Redis hash slot) holds the job.

The job hash uses short field names to keep memory per job small; docs/data-model.md maps them
to the names of the JSON view, and `Job.from_hash` reads them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Generic, NamedTuple, TypeVar

from .errors import InvalidJobId
from .keys import QUEUE_NAME
from .limits import DEFAULT_MAX_ATTEMPTS, MAX_JOB_ID_DIGITS
from .rfc3339 import format_ms

T = TypeVar("T")

LOCAL_ID = re.compile(rf"[0-9]{{1,{MAX_JOB_ID_DIGITS}}}")
STATES = ("scheduled", "ready", "running", "succeeded", "dead", "cancelled", "waiting")
# The states a listing (Queue.jobs, GET /api/queues/{q}/jobs) accepts (`cancelled` has no index:
# it lists as an empty page).
LISTED_STATES = ("ready", "scheduled", "running", "succeeded", "dead", "waiting", "cancelled")
# How an attempt in a job's history ended (written by lua/nack.lua and lua/reap.lua).
# cancelled: the attempt of a job whose cancel was requested while it ran (nack, reap).
HISTORY_OUTCOMES = ("retried", "reaped", "dead", "cancelled")


def make_job_id(queue: str, local_id: str) -> str:
    return f"{queue}.{local_id}"


def parse_job_id(job_id: object) -> tuple[str, str]:
    """(queue, local id) of a job id, or InvalidJobId."""
    if isinstance(job_id, str):
        queue, dot, local = job_id.rpartition(".")
        if dot and QUEUE_NAME.fullmatch(queue) and LOCAL_ID.fullmatch(local):
            return queue, local
    raise InvalidJobId(f"invalid job id {job_id!r}: expected <queue>.<number>")


class Attempt(NamedTuple):
    """One earlier attempt of a job (its history): who ran it, when, how it ended (one of
    HISTORY_OUTCOMES) and its error. Times in epoch ms."""

    worker_id: str | None
    started_at: int | None
    finished_at: int
    outcome: str
    error: str | None

    @classmethod
    def from_entry(cls, entry: str) -> Attempt:
        """An entry of relayq:{q}:history:<id> (JSON written by lua/lib/history.lua)."""
        e = json.loads(entry)
        started = e.get("st")
        return cls(e.get("w") or None, int(started) if started else None, int(e["f"]),
                   e["o"], e.get("e") or None)

    def to_dict(self) -> dict[str, Any]:
        return {"worker_id": self.worker_id, "started_at": format_ms(self.started_at),
                "finished_at": format_ms(self.finished_at), "outcome": self.outcome,
                "error": self.error}


@dataclass(slots=True)
class Job(Generic[T]):
    """One job. Times are epoch milliseconds on the Redis clock; `to_dict()` gives the JSON view.
    `lease` is set on jobs handed out by a claim: present it to ack, nack and heartbeat."""

    id: str
    queue: str
    payload: T
    state: str
    type: str | None = None
    priority: int = 0
    attempts: int = 0
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    created_at: int = 0
    run_at: int | None = None
    started_at: int | None = None
    finished_at: int | None = None
    lease_deadline: int | None = None
    worker_id: str | None = None
    result: Any = None
    last_error: str | None = None
    idempotency_key: str | None = None
    timeout_ms: int | None = None
    lease: str | None = field(default=None, repr=False)
    # Earlier attempts, newest first; None where not read (claims and listings).
    history: list[Attempt] | None = None
    # The W3C traceparent of its enqueue (relayq/tracing.py); None when not traced.
    trace: str | None = None
    # A running job's cancel was requested (it ends cancelled when its attempt ends).
    cancel_requested: bool = False
    # How far the running attempt got (current_job().progress): a fraction in [0, 1], and info.
    progress: float | None = None
    progress_info: Any = None
    # A job made by a periodic schedule: its id and the tick (epoch ms) the job is for.
    schedule_id: str | None = None
    tick_at: int | None = None
    # Its group (fair queues, docs/fair-queues.md); None when it has none.
    group: str | None = None
    # Workflows (docs/workflows.md): its parents (full ids), what it does when one fails
    # ('cancel' or 'run'), the results of its succeeded parents by id (None: no parents), and
    # its children (full ids; read by Queue.get only, else None).
    depends_on: list[str] | None = None
    on_parent_failure: str | None = None
    parent_results: dict[str, Any] | None = None
    children: list[str] | None = None
    # It has children (hash field `ch`), as of the read: its worker's fact mover is nudged when
    # it ends (relayq/worker/fact_mover.py).
    has_children: bool = field(default=False, repr=False)

    @classmethod
    def from_hash(cls, queue: str, local_id: str, h: dict[str, str], decode: Any) -> Job[Any]:
        """Builds a Job from a job hash (as HGETALL returns it); `decode` turns payload text
        into the payload; results are plain JSON. (A hot path of the worker: positional
        arguments, one lookup per field.)"""
        get = h.get
        state = get("s", "")
        created = int(get("c", 0))
        run_at, started, finished = get("r"), get("st"), get("f")
        deadline, timeout, result, payload = get("ld"), get("to"), get("res"), get("p")
        tick = get("ta")
        job = cls(
            f"{queue}.{local_id}", queue,
            decode(payload) if payload is not None else None,
            state, get("t"), int(get("pr", 0)), int(get("a", 0)),
            int(get("ma", DEFAULT_MAX_ATTEMPTS)), created,
            int(run_at) if run_at else created,
            int(started) if started else None,
            int(finished) if finished else None,
            int(deadline) if deadline and state == "running" else None,
            get("w"),
            json.loads(result) if result else None,
            get("err"), get("ik"),
            int(timeout) if timeout else None,
            get("l") if state == "running" else None,
            None,
            get("tp"),
            get("cr") == "1",
            float(progress) if (progress := get("pg")) else None,
            json.loads(info) if (info := get("pi")) else None,
            get("sc"),
            int(tick) if tick else None,
            get("g"),
        )
        if (parents := get("dp")) is not None:  # a job of a workflow (lib/deps.lua)
            job.depends_on = parents.split(",")
            job.on_parent_failure = get("opf") or "cancel"
            job.parent_results = {name[2:]: json.loads(value) for name, value in h.items()
                                  if name.startswith("R:")}
        job.has_children = get("ch") == "1"
        return job

    def to_dict(self, encode_payload: Any = None, with_lease: bool = False) -> dict[str, Any]:
        """The JSON view (docs/data-model.md; times as RFC 3339 strings). `encode_payload` maps a
        typed payload back to plain JSON data."""
        view = {
            "id": self.id,
            "queue": self.queue,
            "type": self.type,
            "payload": encode_payload(self.payload) if encode_payload else self.payload,
            "state": self.state,
            "priority": self.priority,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "created_at": format_ms(self.created_at),
            "run_at": format_ms(self.run_at),
            "started_at": format_ms(self.started_at),
            "finished_at": format_ms(self.finished_at),
            "lease_deadline": format_ms(self.lease_deadline),
            "worker_id": self.worker_id,
            "result": self.result,
            "last_error": self.last_error,
            "idempotency_key": self.idempotency_key,
            "timeout_ms": self.timeout_ms,
            "trace": self.trace,
            "history": (None if self.history is None
                        else [attempt.to_dict() for attempt in self.history]),
            "cancel_requested": self.cancel_requested,
            "progress": self.progress,
            "progress_info": self.progress_info,
            "schedule_id": self.schedule_id,
            "tick_at": format_ms(self.tick_at),
            "group": self.group,
        }
        if self.depends_on is not None:
            view["depends_on"] = self.depends_on
            view["on_parent_failure"] = self.on_parent_failure
            view["parent_results"] = self.parent_results
        if self.children is not None:
            view["children"] = self.children
        if with_lease:
            view["lease"] = self.lease
        return view


class RestoredJob(NamedTuple):
    """A job to put back as it was (`Queue.restore`, fed by `relayq restore`): the job hash's
    values, with times in epoch ms and payload and result as JSON text. The field order is
    restore.lua's."""

    local_id: str
    state: str
    priority: int
    payload: str
    type: str | None
    attempts: int
    max_attempts: int
    created_at: int
    run_at: int | None = None
    started_at: int | None = None
    finished_at: int | None = None
    result: str | None = None
    last_error: str | None = None
    idempotency_key: str | None = None
    timeout_ms: int | None = None
    backoff_base_ms: int | None = None
    backoff_cap_ms: int | None = None
    worker_id: str | None = None
    group: str | None = None
    depends_on: str | None = None  # parents' full ids, comma-separated (workflows)
    on_parent_failure: str | None = None
    parent_results: str | None = None  # JSON object: parent full id -> its result as JSON text
    waiting_for: str | None = None  # of a waiting job: parents still to end, comma-separated
