"""Jobs: enqueue (one or a batch), list one state (paged, searched), claim (with long poll),
ack, nack, heartbeat (which says whether the job's cancel was requested), progress, get, cancel
(a running job's by request: 202).

A job id names its queue (``<queue>.<number>``), so routes under /api/jobs/<id> find the queue
from the id. Long polls wait in the process-wide wake hub (relayq.api.wake_hub).
"""

from __future__ import annotations

import math
from typing import Any

from flask import Blueprint, Response, request

from .. import tracing
from ..errors import InvalidArgument
from ..job import parse_job_id
from ..limits import (
    BATCH_LIMIT,
    DEFAULT_PAGE,
    DEFAULT_VISIBILITY_MS,
    MAX_HTTP_CLAIM_COUNT,
    MAX_LEASE_BYTES,
    MAX_PAGE,
    MAX_VISIBILITY_MS,
    MAX_WAIT_MS,
    MAX_WORKER_ID_BYTES,
)
from ..metrics import record_claimed, record_enqueued, record_throttled
from ..options import JobOptions
from ..queue import Queue
from ..results import NewJob
from ..rfc3339 import format_ms, parse_ms
from .body import (
    check_fields,
    check_query,
    json_body,
    optional,
    optional_int,
    query_int,
    required_str,
)
from .bridge import CLIENT_DISCONNECTED
from .native import Request, post
from .security import requires
from .services import services

bp = Blueprint("jobs", __name__, url_prefix="/api")

OPTION_FIELDS = ("type", "priority", "delay_ms", "run_at", "max_attempts", "idempotency_key",
                 "timeout_ms", "backoff_base_ms", "backoff_cap_ms", "group",
                 "depends_on", "on_parent_failure")  # the last two: workflows
JOB_FIELDS = ("payload", *OPTION_FIELDS)


def new_job(body: Any, what: str = "request body") -> NewJob[Any]:
    """A job to enqueue from its JSON object; option ranges are checked by `Queue`."""
    fields = check_fields(body, JOB_FIELDS, ("payload",), what)
    options = {name: fields[name] for name in OPTION_FIELDS if name in fields}
    for name, value in options.items():
        if value is None:
            raise InvalidArgument(f"{name} must not be null (leave it out instead)")
    if "run_at" in options:
        options["run_at"] = parse_ms(options["run_at"], "run_at")
    return NewJob(fields["payload"], JobOptions(**options))


def _enqueue_view(result: Any) -> dict[str, Any]:
    return {"id": result.id, "state": result.state, "duplicate": result.duplicate}


@post("/queues/<queue>/jobs", "jobs:write")
async def enqueue(req: Request, queue: str) -> Any:
    q = req.queue(queue)
    job = new_job(await req.json(JOB_FIELDS, ("payload",)))
    with tracing.incoming(req.headers):  # the caller's traceparent, if any
        (result,) = await q.enqueue_many([job])
    record_enqueued(q.name, 0 if result.duplicate else 1)
    return _enqueue_view(result), 200 if result.duplicate else 201


@bp.get("/queues/<queue>/jobs")
@requires("jobs:read")
def list_jobs(queue: str) -> Any:
    q = services().queue(queue)
    check_query(("state", "limit", "cursor", "q"))
    state = request.args.get("state")
    if state is None:
        raise InvalidArgument("state is required (ready, scheduled, running, succeeded, dead, "
                              "waiting or cancelled)")
    jobs, next_cursor = q.jobs(state, query_int("limit", 1, MAX_PAGE, DEFAULT_PAGE),
                               request.args.get("cursor"), request.args.get("q"))
    return {"jobs": [job.to_dict() for job in jobs], "next_cursor": next_cursor}


@bp.post("/queues/<queue>/jobs/batch")
@requires("jobs:write")
def enqueue_batch(queue: str) -> Any:
    """Served by Flask on a request thread, not on the event loop (relayq.api.native): measured,
    a batch of 100 costs the same CPU either way (~3.4 ms, the jobs' JSON and Redis encoding),
    and on the loop a large batch would hold every other request of its process meanwhile."""
    q = services().queue(queue)
    items = json_body(("jobs",), ("jobs",))["jobs"]
    if not isinstance(items, list) or not 1 <= len(items) <= BATCH_LIMIT:
        raise InvalidArgument(f"jobs must be a list of 1 to {BATCH_LIMIT} jobs")
    jobs = [new_job(item, f"job {i + 1}") for i, item in enumerate(items)]
    with tracing.incoming(request.headers):
        results = q.enqueue_many(jobs)
    record_enqueued(q.name, sum(not r.duplicate for r in results))
    return {"jobs": [_enqueue_view(r) for r in results]}, 201


@bp.post("/queues/<queue>/claim")
@requires("jobs:work")
def claim(queue: str) -> Any:
    q = services().queue(queue)
    body = json_body(("worker_id", "count", "wait_ms", "visibility_ms"))
    worker_id = (required_str(body, "worker_id", MAX_WORKER_ID_BYTES) if "worker_id" in body
                 else f"http:{request.remote_addr}")
    count = optional_int(body, "count", 1, MAX_HTTP_CLAIM_COUNT, 1)
    wait_ms = optional_int(body, "wait_ms", 0, MAX_WAIT_MS, 0)
    visibility_ms = optional_int(body, "visibility_ms", 1, MAX_VISIBILITY_MS,
                                 DEFAULT_VISIBILITY_MS)
    result = services().wake_hub.claim(
        q, wait_ms, lambda: q.claim(count, visibility_ms=visibility_ms, worker_id=worker_id),
        request.environ.get(CLIENT_DISCONNECTED, lambda: False))
    if not result:
        headers = {}
        if result.status == "throttled":
            record_throttled(q.name)
            if result.retry_in_ms is not None:
                headers["Retry-After"] = str(max(1, math.ceil(result.retry_in_ms / 1000)))
        return Response(status=204, headers=headers)
    record_claimed(q.name, result)
    return {"jobs": [job.to_dict(with_lease=True) for job in result]}


def _job_queue(job_id: str) -> Queue[Any]:
    return services().queue(parse_job_id(job_id)[0])


def _lease(body: dict[str, Any]) -> str:
    return required_str(body, "lease", MAX_LEASE_BYTES)


@post("/jobs/<job_id>/ack", "jobs:work")
async def ack(req: Request, job_id: str) -> Any:
    q = req.queue(parse_job_id(job_id)[0])
    body = await req.json(("lease", "result"), ("lease",))
    # cancelled: its cancel was requested while it ran, and the cancel wins (result kept)
    return {"state": await q.ack(job_id, _lease(body), body.get("result"))}


@bp.post("/jobs/<job_id>/nack")
@requires("jobs:work")
def nack(job_id: str) -> Any:
    q = _job_queue(job_id)
    body = json_body(("lease", "error", "retry", "delay_ms"), ("lease",))
    lease = _lease(body)
    error = optional(body, "error", str, "")
    retry = optional(body, "retry", bool, True)
    delay_ms = optional(body, "delay_ms", int)
    outcome = q.nack(job_id, lease, error, retry=retry, delay_ms=delay_ms)
    return {"state": outcome.state, "attempts": outcome.attempts,
            "run_at": format_ms(outcome.run_at)}


@bp.post("/jobs/<job_id>/heartbeat")
@requires("jobs:work")
def heartbeat(job_id: str) -> Any:
    q = _job_queue(job_id)
    body = json_body(("lease", "visibility_ms"), ("lease",))
    lease = _lease(body)
    visibility_ms = optional_int(body, "visibility_ms", 1, MAX_VISIBILITY_MS,
                                 DEFAULT_VISIBILITY_MS)
    beat = q.beat(job_id, lease, visibility_ms)
    return {"lease_deadline": format_ms(beat.deadline_ms),
            "cancel_requested": beat.cancel_requested}


@bp.post("/jobs/<job_id>/progress")
@requires("jobs:work")
def progress(job_id: str) -> Any:
    """A worker over HTTP reports how far its job got (as `current_job().progress` does; no
    rate limit here: the caller's loop is its own)."""
    q = _job_queue(job_id)
    body = json_body(("lease", "progress", "info"), ("lease", "progress"))
    lease = _lease(body)
    fraction = optional(body, "progress", (int, float))
    return {"cancel_requested": q.progress(job_id, lease, fraction, body.get("info"))}


@bp.get("/jobs/<job_id>")
@requires("jobs:read")
def get(job_id: str) -> Any:
    return _job_queue(job_id).get(job_id).to_dict()


@bp.delete("/jobs/<job_id>")
@requires("jobs:write")
def cancel(job_id: str) -> Any:
    """A ready or scheduled job is cancelled (200); a running one has its cancel requested
    (202: it ends cancelled once its handler stops, within seconds)."""
    if _job_queue(job_id).cancel(job_id) == "running":
        return {"state": "running", "cancel_requested": True}, 202
    return {"state": "cancelled"}
