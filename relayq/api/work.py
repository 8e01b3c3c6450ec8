"""The batched routes of a worker that reaches relayq over HTTP alone (`relayq-worker --server`):
settle (record many outcomes and claim the next jobs in one request), a heartbeat for many
leases, and the reaper. Each is one `Queue` operation, the same the worker calls over Redis
(`Queue.settle`, `Queue.heartbeat_many`, `Queue.reap`), so fencing, retries with backoff and
dead letters behave the same whichever way a worker connects. Sizes are bounded by
`relayq.limits` (MAX_HTTP_OUTCOMES, MAX_HTTP_CLAIM_COUNT); every outcome is checked before
anything is written.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from ..codec import dumps
from ..errors import InvalidArgument
from ..limits import (
    DEFAULT_VISIBILITY_MS,
    MAX_DURATION_MS,
    MAX_HTTP_CLAIM_COUNT,
    MAX_HTTP_OUTCOMES,
    MAX_JOB_ID_DIGITS,
    MAX_LEASE_BYTES,
    MAX_QUEUE_NAME_LENGTH,
    MAX_VISIBILITY_MS,
    MAX_WORKER_ID_BYTES,
)
from ..metrics import record_claimed, record_throttled
from ..options import check_int
from ..results import Outcome
from ..rfc3339 import format_ms
from .body import check_fields, json_body, optional, optional_int, required_str
from .native import Request, post
from .security import requires
from .services import services

bp = Blueprint("work", __name__, url_prefix="/api")
JOB_ID_BYTES = MAX_QUEUE_NAME_LENGTH + 1 + MAX_JOB_ID_DIGITS  # <queue>.<number>

OUTCOME_FIELDS = ("id", "lease", "outcome", "result", "error", "retry", "delay_ms")
KINDS = ("ack", "nack", "release")
EXTRA_FIELDS = {"ack": ("result",), "nack": ("error", "retry", "delay_ms"), "release": ()}


def _items(body: dict[str, Any], name: str, required: bool) -> list[Any]:
    items = body.get(name, [])
    low = 1 if required else 0
    if not isinstance(items, list) or not low <= len(items) <= MAX_HTTP_OUTCOMES:
        raise InvalidArgument(f"{name} must be a list of {low} to {MAX_HTTP_OUTCOMES} items")
    return items


def _outcome(item: Any, what: str) -> Outcome:
    """One outcome from its JSON object; the job id and lease are checked by `Queue.settle`."""
    fields = check_fields(item, OUTCOME_FIELDS, ("id", "lease", "outcome"), what)
    kind = fields["outcome"]
    if kind not in KINDS:
        raise InvalidArgument(f"{what}: outcome must be one of {', '.join(KINDS)}")
    misplaced = [name for name in OUTCOME_FIELDS[3:] if name in fields
                 and name not in EXTRA_FIELDS[kind]]
    if misplaced:
        raise InvalidArgument(f"{what}: {misplaced[0]} does not go with outcome {kind!r}")
    job_id = required_str(fields, "id", JOB_ID_BYTES)
    lease = required_str(fields, "lease", MAX_LEASE_BYTES)
    if kind == "ack":
        result = fields.get("result")
        return Outcome(job_id, lease, "ack", result_json="" if result is None else dumps(result))
    if kind == "release":
        return Outcome(job_id, lease, "release")
    delay_ms = optional(fields, "delay_ms", int)
    if delay_ms is not None:
        check_int(delay_ms, "delay_ms", 0, MAX_DURATION_MS)
    return Outcome(job_id, lease, "nack", error=optional(fields, "error", str, ""),
                   retry=optional(fields, "retry", bool, True), delay_ms=delay_ms)


@post("/queues/<queue>/settle", "jobs:work")
async def settle(req: Request, queue: str) -> Any:
    """Records `outcomes` (ack, nack or release of jobs this caller holds) and claims up to
    `claim` jobs, in one round trip to Redis: a status per outcome, in order."""
    q = req.queue(queue)
    body = await req.json(("outcomes", "claim", "visibility_ms", "worker_id"))
    outcomes = [_outcome(item, f"outcome {i + 1}")
                for i, item in enumerate(_items(body, "outcomes", False))]
    count = optional_int(body, "claim", 0, MAX_HTTP_CLAIM_COUNT, 0)
    visibility_ms = optional_int(body, "visibility_ms", 1, MAX_VISIBILITY_MS,
                                 DEFAULT_VISIBILITY_MS)
    worker_id = (required_str(body, "worker_id", MAX_WORKER_ID_BYTES) if "worker_id" in body
                 else f"http:{req.address}")
    statuses, claimed = await q.settle(outcomes, count, visibility_ms=visibility_ms,
                                       worker_id=worker_id)
    view: dict[str, Any] = {"statuses": statuses, "jobs": [], "claim_status": None,
                            "retry_in_ms": None}
    if claimed is not None:
        view["claim_status"] = claimed.status
        view["retry_in_ms"] = claimed.retry_in_ms
        if claimed:
            record_claimed(q.name, claimed)
            view["jobs"] = [job.to_dict(with_lease=True) for job in claimed]
        elif claimed.status == "throttled":
            record_throttled(q.name)
    return view


@bp.post("/queues/<queue>/heartbeat")
@requires("jobs:work")
def heartbeat_many(queue: str) -> Any:
    """Extends many leases of one queue: a status, new deadline and whether its cancel was
    requested per lease, in order."""
    q = services().queue(queue)
    body = json_body(("leases", "visibility_ms"), ("leases",))
    leases = []
    for i, item in enumerate(_items(body, "leases", True)):
        fields = check_fields(item, ("id", "lease"), ("id", "lease"), f"lease {i + 1}")
        leases.append((required_str(fields, "id", JOB_ID_BYTES),
                       required_str(fields, "lease", MAX_LEASE_BYTES)))
    visibility_ms = optional_int(body, "visibility_ms", 1, MAX_VISIBILITY_MS,
                                 DEFAULT_VISIBILITY_MS)
    replies = q.heartbeat_many(leases, visibility_ms)
    return {"leases": [{"status": beat.status, "lease_deadline": format_ms(beat.deadline_ms)
                        if beat.status == "ok" else None,
                        "cancel_requested": beat.cancel_requested} for beat in replies]}


@bp.post("/queues/<queue>/reap")
@requires("jobs:work")
def reap(queue: str) -> Any:
    """Puts the jobs whose lease expired back (or into the dead letters when their attempts
    are spent): the reaper that a worker over Redis runs itself."""
    q = services().queue(queue)
    json_body(())
    requeued, dead = q.reap()
    return {"requeued": requeued, "dead": dead}
