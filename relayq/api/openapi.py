"""`GET /api/openapi.json`: the OpenAPI 3.1 document of every route of this server.

Written by hand from small builders so that it reads like the README's API table; every bound
comes from relayq.limits. Tests keep it true: they validate real responses against it, run
schemathesis over it and compare its bounds with the limits.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from ..auth import SCOPES
from ..flows import REF
from ..job import HISTORY_OUTCOMES, LISTED_STATES, STATES
from ..limits import (
    BATCH_LIMIT,
    FRACTIONAL_SETTINGS,
    GROUP_PATTERN,
    HISTORY_LIMIT,
    JOB_ID_PATTERN,
    MAX_ATTEMPTS,
    MAX_BURST,
    MAX_CRON_BYTES,
    MAX_CURSOR_DIGITS,
    MAX_DURATION_MS,
    MAX_FLOW_JOBS,
    MAX_GROUPS_PAGE,
    MAX_HOST_BYTES,
    MAX_HTTP_CLAIM_COUNT,
    MAX_HTTP_OUTCOMES,
    MAX_IDEMPOTENCY_KEY_BYTES,
    MAX_KEY_NAME_BYTES,
    MAX_LEASE_BYTES,
    MAX_PAGE,
    MAX_PARENTS,
    MAX_PRIORITY,
    MAX_RATE,
    MAX_RUNNING_LIMIT,
    MAX_SEARCH_BYTES,
    MAX_TYPE_BYTES,
    MAX_TZ_BYTES,
    MAX_VISIBILITY_MS,
    MAX_WAIT_MS,
    MAX_WORKER_ID_BYTES,
    MIN_EVERY_MS,
    MIN_PRIORITY,
    MIN_RATE,
    MISFIRE_GRACE_MS,
    QUEUE_NAME_PATTERN,
    SCHEDULE_ID_PATTERN,
    SEARCH_SCAN_LIMIT,
    SETTING_RANGES,
    WORKER_TTL_MS,
)
from ..results import TOTALS
from ..schedules import MISFIRE_POLICIES, TEMPLATE_OPTIONS
from ..workflows import ON_PARENT_FAILURE
from .dashboard import FILE_NAME
from .security import public

bp = Blueprint("openapi", __name__, url_prefix="/api")

JSON = "application/json"


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: list[str] | tuple[str, ...] = (), **properties: Any) -> dict[str, Any]:
    """A closed JSON object schema: only these properties."""
    schema: dict[str, Any] = {"type": "object", "properties": properties,
                              "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    return schema


def closed(**properties: Any) -> dict[str, Any]:
    """A closed object whose every property is required (the shape of a response)."""
    return obj(list(properties), **properties)


def integer(lo: int | None = None, hi: int | None = None, **more: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer", **more}
    if lo is not None:
        schema["minimum"] = lo
    if hi is not None:
        schema["maximum"] = hi
    return schema


def string(max_length: int | None = None, **more: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", **more}
    if max_length is not None:
        schema.update(minLength=1, maxLength=max_length)
    return schema


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "type": [schema["type"], "null"]}


TIME = string(format="date-time", description="RFC 3339 UTC with milliseconds")
ANY_JSON: dict[str, Any] = {"description": "any JSON value"}

JOB_PROPERTIES: dict[str, Any] = {
    "id": string(pattern=f"^{JOB_ID_PATTERN}$"),
    "queue": string(),
    "type": nullable(string()),
    "payload": ANY_JSON,
    "state": {"type": "string", "enum": list(STATES)},
    "priority": integer(MIN_PRIORITY, MAX_PRIORITY),
    "attempts": integer(0),
    "max_attempts": integer(1),
    "created_at": TIME,
    "run_at": nullable(TIME),
    "started_at": nullable(TIME),
    "finished_at": nullable(TIME),
    "lease_deadline": nullable(TIME),
    "worker_id": nullable(string()),
    "result": ANY_JSON,
    "last_error": nullable(string()),
    "idempotency_key": nullable(string()),
    "timeout_ms": nullable(integer(1)),
    "trace": {**nullable(string(pattern="^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")),
              "description": "the W3C traceparent of the job's enqueue (OpenTelemetry, "
                             "relayq[otel]); null when the enqueue was not traced"},
    "history": {"type": ["array", "null"], "items": {"$ref": "#/components/schemas/Attempt"},
                "maxItems": HISTORY_LIMIT,
                "description": f"earlier attempts that failed or were lost, newest first (at "
                               f"most {HISTORY_LIMIT}); null where not read: claims and "
                               "listings"},
    "cancel_requested": {"type": "boolean",
                         "description": "a running job whose cancel was requested: it ends "
                                        "cancelled when its attempt ends"},
    "progress": nullable({"type": "number", "minimum": 0, "maximum": 1,
                          "description": "how far the running attempt got "
                                         "(current_job().progress)"}),
    "progress_info": ANY_JSON,
    "schedule_id": nullable(string(description="the periodic schedule that made the job")),
    "tick_at": nullable({**TIME, "description": "the tick of its schedule the job is for"}),
    "group": nullable(string(pattern=f"^{GROUP_PATTERN}$",
                             description="its group (fair queues); null when none")),
}
JOB_ID_LIST = {"type": "array", "items": string(pattern=f"^{JOB_ID_PATTERN}$")}
# Workflows (docs/workflows.md): present only on jobs that have parents (or children).
WORKFLOW_PROPERTIES: dict[str, Any] = {
    "depends_on": {**JOB_ID_LIST, "description": "its parents"},
    "on_parent_failure": {"type": "string", "enum": list(ON_PARENT_FAILURE)},
    "parent_results": {"type": "object", "additionalProperties": ANY_JSON,
                       "description": "the results of its succeeded parents, by id (together "
                                      "at most the queue's payload limit)"},
    "children": {**JOB_ID_LIST, "description": "the jobs that depend on it (GET only)"},
}
ATTEMPT = closed(
    worker_id=nullable(string()), started_at=nullable(TIME), finished_at=TIME,
    outcome={"type": "string", "enum": list(HISTORY_OUTCOMES),
             "description": "retried: the handler failed, the job runs again; reaped: the "
                            "lease expired (worker lost), the job went back to ready; dead: "
                            "failed or lost with no attempt left (or retry: false); "
                            "cancelled: its cancel was requested while it ran"},
    error=nullable(string()),
)
WORKER = closed(
    id=string(), host=string(), pid=integer(0),
    queues={"type": "array", "items": string()}, concurrency=integer(1), busy=integer(0),
    jobs={"type": "array", "items": string(pattern=f"^{JOB_ID_PATTERN}$"),
          "description": "ids of the jobs it holds"},
    started_at=TIME, last_seen_at=TIME,
)

NEW_JOB = obj(
    ["payload"],
    payload=ANY_JSON,
    type=string(MAX_TYPE_BYTES, description=f"at most {MAX_TYPE_BYTES} bytes of UTF-8"),
    priority=integer(MIN_PRIORITY, MAX_PRIORITY),
    delay_ms=integer(0, MAX_DURATION_MS),
    run_at={**TIME, "description": "RFC 3339 with a time zone, a fraction of at most 6 digits, "
                                   f"at most {MAX_DURATION_MS} ms (ten years) from now; "
                                   "not with delay_ms"},
    max_attempts=integer(1, MAX_ATTEMPTS),
    idempotency_key=string(MAX_IDEMPOTENCY_KEY_BYTES,
                           description=f"at most {MAX_IDEMPOTENCY_KEY_BYTES} bytes of UTF-8"),
    timeout_ms=integer(1, MAX_DURATION_MS),
    backoff_base_ms=integer(0, MAX_DURATION_MS),
    backoff_cap_ms=integer(0, MAX_DURATION_MS),
    depends_on={**JOB_ID_LIST, "minItems": 1, "maxItems": MAX_PARENTS,
                "description": "parent job ids (any queue): the job waits until each "
                               "succeeded"},
    on_parent_failure={"type": "string", "enum": list(ON_PARENT_FAILURE),
                       "description": "cancel (default): a dead or cancelled parent cancels "
                                      "the job; run: it runs anyway"},
    group=string(pattern=f"^{GROUP_PATTERN}$",
                 description="fair queues: the queue serves its groups (a tenant id, say) in "
                             "round robin, each within its own limits"),
)
NEW_JOB["not"] = {"required": ["delay_ms", "run_at"]}
FLOW_REF = string(pattern=f"^{REF.pattern}$", description="the job's name within the flow")
FLOW_JOB = obj(["ref", "queue", "payload"], ref=FLOW_REF,
               queue=string(pattern=f"^{QUEUE_NAME_PATTERN}$"),
               **{**NEW_JOB["properties"], "depends_on": {
                   "type": "array", "maxItems": MAX_PARENTS, "items": string(),
                   "description": "refs of the flow's jobs, or ids of existing jobs"}})
FLOW_JOB["not"] = NEW_JOB["not"]

LEASE = string(MAX_LEASE_BYTES)
ENQUEUED = closed(id=JOB_PROPERTIES["id"], state=nullable(string()), duplicate={"type": "boolean"})
STATS = closed(
    queue=string(), ready=integer(0), scheduled=integer(0), running=integer(0),
    dead=integer(0), succeeded=integer(0), paused={"type": "boolean"},
    rate_limit={"oneOf": [{"type": "null"}, closed(rate={"type": "number"}, burst=integer(1))]},
    totals={"type": "object", "properties": {name: integer(0) for name in TOTALS},
            "additionalProperties": integer(0)},
    latency_ms=integer(0, description="age of the oldest ready job (0 when none)"),
    waiting=integer(0, description="jobs waiting for their parents (workflows)"),
)
TEMPLATE = {name: NEW_JOB["properties"][name] for name in TEMPLATE_OPTIONS}
SCHEDULE_WHEN = {
    "cron": string(MAX_CRON_BYTES, description="5 fields, or 6 with seconds first (cronsim); "
                                               "not with every_ms"),
    "every_ms": integer(MIN_EVERY_MS, MAX_DURATION_MS, description="not with cron"),
    "tz": string(MAX_TZ_BYTES, description="IANA zone of a cron schedule (default UTC)"),
    "misfire": {"type": "string", "enum": list(MISFIRE_POLICIES),
                "description": f"ticks found over {MISFIRE_GRACE_MS} ms late (nothing ran): "
                               "once (default, one job), skip (none) or all (one each, the "
                               "newest 1000)"},
}
NEW_SCHEDULE = obj(["payload"], payload=ANY_JSON, **SCHEDULE_WHEN,
                   start_at={**TIME, "description": "RFC 3339; no tick before it"},
                   end_at={**TIME, "description": "RFC 3339, after start_at; no tick after it"},
                   paused={"type": "boolean", "description": "left out: kept (a new schedule "
                                                             "is active)"},
                   **TEMPLATE)
NEW_SCHEDULE["oneOf"] = [{"required": ["cron"]}, {"required": ["every_ms"]}]
SCHEDULE = obj(
    ["id", "queue", "cron", "every_ms", "tz", "start_at", "end_at", "misfire", "payload",
     "paused", "origin", "revision", "next_run_at", "last_run_at", "last_tick_at",
     "last_job_id", "created_at", "updated_at"],
    id=string(pattern=f"^{SCHEDULE_ID_PATTERN}$"), queue=string(),
    cron=nullable(string()), every_ms=nullable(integer(MIN_EVERY_MS)), tz=string(),
    start_at=nullable(TIME), end_at=nullable(TIME),
    misfire={"type": "string", "enum": list(MISFIRE_POLICIES)}, payload=ANY_JSON,
    paused={"type": "boolean"},
    origin=nullable(string(description="app: saved by workers from an @app.task")),
    revision=integer(1, description="raised by every change of what fires"),
    next_run_at=nullable({**TIME, "description": "null when paused or ended"}),
    last_run_at=nullable(TIME), last_tick_at=nullable(TIME),
    last_job_id=nullable(string(pattern=f"^{JOB_ID_PATTERN}$")),
    created_at=TIME, updated_at=TIME, **TEMPLATE)
API_KEY_PROPERTIES: dict[str, Any] = {
    "id": string(pattern="^[0-9a-f]{16}$"), "name": string(),
    "scopes": {"type": "array", "items": {"type": "string", "enum": list(SCOPES)}},
    "created_at": TIME,
}

# -- fair queues (relayq/queue_groups.py, relayq/api/groups.py) --
GROUP_NAME = string(pattern=f"^{GROUP_PATTERN}$")
# at least one of them; the ones left out take the queue's defaults (group_* settings)
GROUP_LIMITS = {**obj(
    max_running=integer(0, MAX_RUNNING_LIMIT, description="0: no limit for this group"),
    rate={"type": "number", "minimum": 0, "maximum": MAX_RATE,
          "description": f"jobs per second: 0 (none for this group) or at least {MIN_RATE}; "
                        "needs a burst (its own or the queue's group_burst)"},
    burst=integer(1, MAX_BURST),
), "minProperties": 1}
GROUP_INFO = closed(
    group=GROUP_NAME, ready=integer(0), running=integer(0),
    max_running=nullable(integer(0)), rate=nullable({"type": "number"}),
    burst=nullable(integer(1)),
    state={"type": "string", "enum": ["ready", "limited", "throttled", "idle"]},
)
GROUP_LIST = closed(
    groups={"type": "array", "items": GROUP_INFO}, next_cursor=nullable(string()),
    total=integer(0), with_ready=integer(0), limited=integer(0), throttled=integer(0),
    defaults=closed(max_running=nullable(integer(0)), group_max_running=nullable(integer(0)),
                    group_rate=nullable({"type": "number"}),
                    group_burst=nullable(integer(0))),
)
GROUP_PAGE = ({"name": "limit", "in": "query", "required": False,
               "schema": integer(1, MAX_GROUPS_PAGE)},
              {"name": "cursor", "in": "query", "required": False,
               "schema": string(pattern=f"^[0-9]{{1,{MAX_CURSOR_DIGITS}}}$")})

# The settings of Queue.configure (relayq/limits.py's SETTING_RANGES), one schema each.
SETTING_SCHEMAS = {
    name: ({"type": "number", "minimum": lo, "maximum": hi} if name in FRACTIONAL_SETTINGS
           else integer(lo, hi))
    for name, (lo, hi) in SETTING_RANGES.items()}

SCHEMAS: dict[str, Any] = {
    "Error": closed(error=closed(code=string(), message=string())),
    "Job": obj(list(JOB_PROPERTIES), **JOB_PROPERTIES, **WORKFLOW_PROPERTIES),
    "Attempt": ATTEMPT,
    "JobList": closed(jobs={"type": "array", "items": ref("Job")},
                      next_cursor=nullable(string())),
    "Worker": WORKER,
    "WorkerEntry": obj(
        ["host", "pid", "queues", "concurrency"], host=string(MAX_HOST_BYTES), pid=integer(0),
        queues={"type": "array", "items": string(pattern=f"^{QUEUE_NAME_PATTERN}$"),
                "maxItems": MAX_HTTP_OUTCOMES},
        concurrency=integer(1), busy=integer(0),
        jobs={"type": "array", "items": string(pattern=f"^{JOB_ID_PATTERN}$"),
              "maxItems": MAX_HTTP_OUTCOMES, "description": "ids of the jobs it holds"},
        started_at={**TIME, "description": "from the first reply (kept across refreshes)"},
        ttl_ms=integer(1, MAX_VISIBILITY_MS, description="default "
                                                         f"{WORKER_TTL_MS}")),
    "WorkerRemoved": closed(id=string(), removed={"const": True}),
    "WorkerList": closed(workers={"type": "array", "items": ref("Worker")}),
    "ClaimedJob": obj([*JOB_PROPERTIES, "lease"], **JOB_PROPERTIES, **WORKFLOW_PROPERTIES,
                      lease=string()),
    "NewJob": NEW_JOB,
    "Enqueued": ENQUEUED,
    "Batch": obj(["jobs"], jobs={"type": "array", "items": ref("NewJob"), "minItems": 1,
                                 "maxItems": BATCH_LIMIT}),
    "BatchEnqueued": closed(jobs={"type": "array", "items": ref("Enqueued")}),
    # workflows (relayq/flows.py)
    "Flow": obj(["jobs"], jobs={"type": "array", "minItems": 1, "maxItems": MAX_FLOW_JOBS,
                                "items": FLOW_JOB}),
    "FlowCreated": closed(jobs={"type": "array", "items": closed(
        ref=FLOW_REF, id=JOB_PROPERTIES["id"], state=nullable(string()))}),
    "Claim": obj(worker_id=string(MAX_WORKER_ID_BYTES), count=integer(1, MAX_HTTP_CLAIM_COUNT),
                 wait_ms=integer(0, MAX_WAIT_MS), visibility_ms=integer(1, MAX_VISIBILITY_MS)),
    "Claimed": closed(jobs={"type": "array", "items": ref("ClaimedJob"), "minItems": 1}),
    "Ack": obj(["lease"], lease=LEASE, result=ANY_JSON),
    "Acked": closed(state={"enum": ["succeeded", "cancelled"],
                           "description": "cancelled: its cancel was requested while it ran "
                                          "(the cancel wins; the result is kept)"}),
    "Nack": obj(["lease"], lease=LEASE, error=string(), retry={"type": "boolean"},
                delay_ms=integer(0, MAX_DURATION_MS)),
    "Nacked": closed(state={"enum": ["scheduled", "ready", "dead", "cancelled"]},
                     attempts=integer(0),
                     run_at=nullable(TIME)),
    "Heartbeat": obj(["lease"], lease=LEASE, visibility_ms=integer(1, MAX_VISIBILITY_MS)),
    "LeaseExtended": closed(lease_deadline=TIME, cancel_requested={
        "type": "boolean", "description": "the job's cancel was requested: stop its work (it "
                                          "ends cancelled whatever you report)"}),
    "Progress": obj(["lease", "progress"], lease=LEASE,
                    progress={"type": "number", "minimum": 0, "maximum": 1},
                    info={"description": "any JSON value within the payload limit"}),
    "ProgressSet": closed(cancel_requested={"type": "boolean"}),
    "Settle": obj(
        outcomes={"type": "array", "maxItems": MAX_HTTP_OUTCOMES, "items": obj(
            ["id", "lease", "outcome"], id=JOB_PROPERTIES["id"], lease=LEASE,
            outcome={"enum": ["ack", "nack", "release"],
                     "description": "release: hand the job back without spending an attempt"},
            result={**ANY_JSON, "description": "ack only"},
            error=string(description="nack only"), retry={"type": "boolean"},
            delay_ms=integer(0, MAX_DURATION_MS))},
        claim=integer(0, MAX_HTTP_CLAIM_COUNT, description="jobs to claim after (default 0)"),
        visibility_ms=integer(1, MAX_VISIBILITY_MS), worker_id=string(MAX_WORKER_ID_BYTES)),
    "Settled": closed(
        statuses={"type": "array",
                  "items": {"enum": ["ok", "cancelled", "not_found", "lease_lost"]},
                  "description": "one per outcome, in order (cancelled: an ack of a job "
                                 "whose cancel was requested; it ended cancelled)"},
        jobs={"type": "array", "items": ref("ClaimedJob")},
        claim_status={"enum": [None, "ok", "empty", "paused", "throttled"],
                      "description": "null without a claim"},
        retry_in_ms=nullable(integer(0, description="when to claim again (the next "
                                                    "scheduled job, the rate limit's token)"))),
    "Heartbeats": obj(["leases"], leases={
        "type": "array", "minItems": 1, "maxItems": MAX_HTTP_OUTCOMES,
        "items": obj(["id", "lease"], id=JOB_PROPERTIES["id"], lease=LEASE)},
        visibility_ms=integer(1, MAX_VISIBILITY_MS)),
    "LeasesExtended": closed(leases={"type": "array", "items": closed(
        status={"enum": ["ok", "not_found", "lease_lost"]}, lease_deadline=nullable(TIME),
        cancel_requested={"type": "boolean"})}),
    "Reaped": closed(requeued=integer(0), dead=integer(0)),
    "Cancelled": closed(state={"const": "cancelled"}),
    "CancelRequested": closed(state={"const": "running"}, cancel_requested={"const": True}),
    "QueueStats": STATS,
    "QueueList": closed(queues={"type": "array", "items": ref("QueueStats")}),
    "Paused": closed(queue=string(), paused={"type": "boolean"}),
    "RateLimit": obj(["rate"], rate={"type": "number", "minimum": MIN_RATE, "maximum": MAX_RATE,
                                     "description": "jobs per second"},
                     burst=integer(1, MAX_BURST)),
    "RateLimitSet": closed(queue=string(), rate_limit=STATS["properties"]["rate_limit"]),
    "SettingsChange": {**obj(**SETTING_SCHEMAS), "minProperties": 1},
    "Settings": closed(queue=string(), settings=closed(**SETTING_SCHEMAS)),
    # -- fair queues (relayq/api/groups.py) --
    "GroupLimits": GROUP_LIMITS,
    "GroupLimitsSet": closed(queue=string(), group=GROUP_NAME,
                             limits={"oneOf": [{"type": "null"}, closed(
                                 **{k: nullable(v)
                                    for k, v in GROUP_LIMITS["properties"].items()})]}),
    "GroupList": GROUP_LIST,
    "DeadList": closed(jobs={"type": "array", "items": ref("Job")},
                       next_cursor=nullable(string())),
    "Requeued": closed(requeued=integer(0)),
    "Purged": closed(purged=integer(0)),
    "NewKey": obj(["name", "scopes"], name=string(MAX_KEY_NAME_BYTES),
                  scopes={**API_KEY_PROPERTIES["scopes"], "minItems": 1}),
    "KeyCreated": closed(**API_KEY_PROPERTIES, key=string(
        pattern="^rq_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$", description="shown only here, once")),
    "KeyList": closed(keys={"type": "array", "items": closed(**API_KEY_PROPERTIES)}),
    "KeyRevoked": closed(id=string(), revoked={"const": True}),
    "Health": closed(status={"const": "ok"}, long_polls=integer(0), event_streams=integer(0)),
    "Ready": closed(status={"const": "ready"}),
    "NewSchedule": NEW_SCHEDULE,
    "Schedule": SCHEDULE,
    "ScheduleList": closed(schedules={"type": "array", "items": ref("Schedule")}),
    "ScheduleDeleted": closed(queue=string(), id=string(), deleted={"const": True}),
    "ScheduleTriggered": closed(queue=string(), schedule_id=string(),
                                job_id=string(pattern=f"^{JOB_ID_PATTERN}$")),
}

ERRORS = {
    400: "bad input (invalid_argument, invalid_json, invalid_queue_name, invalid_job_id, ...)",
    401: "no key, a malformed Authorization header, or an unknown or revoked key",
    403: "the key lacks the scope (or, on /api/keys, a scope of the key it would make or revoke)",
    404: "no such job, schedule, key or route",
    405: "method not allowed",
    409: "lease_lost, conflict or last_admin_key",
    413: "payload_too_large",
    429: "too_many_requests: too many failed authentications from this address; the key was "
         "not checked (Retry-After)",
    503: "redis_unavailable, redis_busy or server_busy: try again after Retry-After",
}


def _json(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": ref(schema)}}}


def op(summary: str, scope: str | None, ok: dict[int, tuple[str, str]], *,
       body: str | None = None, body_required: bool = True, errors: tuple[int, ...] = (),
       params: tuple[str, ...] = (), query: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    """One operation. `scope` None: public. `ok`: status -> (schema, description)."""
    responses: dict[str, Any] = {str(s): _json(name, text) for s, (name, text) in ok.items()}
    codes = {*errors, 503}
    if scope is not None:
        codes |= {401, 403, 429}
    if body is not None:
        codes |= {400, 413}
    if params:
        codes |= {400, 404}
    for status in sorted(codes):
        responses[str(status)] = _json("Error", ERRORS[status])
    operation: dict[str, Any] = {
        "summary": summary + (f" (scope {scope})" if scope else " (public)"),
        "responses": responses,
        "parameters": [{"$ref": f"#/components/parameters/{p}"} for p in params] + list(query),
    }
    if scope is None:
        operation["security"] = []
    if body is not None:
        operation["requestBody"] = {"required": body_required,
                                    "content": {JSON: {"schema": ref(body)}}}
    return operation


NO_JOBS = {"description": "nothing claimable now (empty, paused or throttled)", "headers": {
    "Retry-After": {"description": "seconds until the rate limit has a token (throttled "
                                   f"only; at most {round(1 / MIN_RATE)}: the rate's minimum)",
                    "schema": {"type": "string", "pattern": "^[0-9]+$"}}}}
SSE = {"description": "text/event-stream: `stats` events about every second and `job` events "
                      "({queue, state, ids}) as jobs change state. With `queue`, job events "
                      "come from the queue's event log, each with an SSE id (its position) "
                      "and also `id` and `at` in its data (state `progress` adds progress and "
                      "progress_info; `cancel_requested` is one too), resumable from "
                      "Last-Event-ID or `since`; a `reset` event says the log no longer held "
                      "the position (events were lost: reload)",
       "content": {"text/event-stream": {"schema": {"type": "string"}}}}
QUEUE_NAME = string(pattern=f"^{QUEUE_NAME_PATTERN}$")
QUEUE_FILTER = {"name": "queue", "in": "query", "required": False, "schema": QUEUE_NAME}
SINCE = {"name": "since", "in": "query", "required": False,
         "description": "with `queue`: start after this position of the queue's event log (an "
                        "event's id, `<ms>-<seq>`), as the Last-Event-ID header does",
         "schema": string(pattern="^[0-9]{1,20}(-[0-9]{1,20})?$")}
PAGE = ({"name": "limit", "in": "query", "required": False, "schema": integer(1, MAX_PAGE)},
        {"name": "cursor", "in": "query", "required": False,
         "schema": string(pattern=f"^[0-9]{{1,{MAX_CURSOR_DIGITS}}}$")})

TRACE_HEADERS = (
    {"name": "traceparent", "in": "header", "required": False, "schema": string(),
     "description": "W3C trace context of the caller: the enqueue span is its child and the "
                    "job carries the trace to the worker's run span; a malformed one is "
                    "ignored"},
    {"name": "tracestate", "in": "header", "required": False, "schema": string()},
)

JOB_LIST_QUERY = (
    {"name": "state", "in": "query", "required": True,
     "schema": {"type": "string", "enum": list(LISTED_STATES)},
     "description": "ready: in claim order (priority, then FIFO); scheduled: by due time; "
                    "running: by lease deadline; succeeded, dead: newest first; waiting, "
                    "cancelled: always an empty page (no index keeps them)"},
    *PAGE,
    {"name": "q", "in": "query", "required": False, "schema": string(MAX_SEARCH_BYTES),
     "description": "only jobs whose id, type or last error contains this text (case "
                    f"insensitive). A page reads at most {SEARCH_SCAN_LIMIT} jobs of the state, "
                    "so it may hold fewer matches than `limit` (even none) with a "
                    "next_cursor: follow it until null"},
)

PATHS: dict[str, Any] = {
    "/api/queues/{queue}/jobs": {
        "post": op("Enqueue a job", "jobs:write", {201: ("Enqueued", "created"),
                                                   200: ("Enqueued", "duplicate idempotency key")},
                   body="NewJob", params=("queue",), query=TRACE_HEADERS),
        "get": op("Jobs of one state, paged (and searched)", "jobs:read",
                  {200: ("JobList", "a page")}, params=("queue",), query=JOB_LIST_QUERY),
    },
    "/api/workers": {"get": op(
        "Live worker processes (each refreshes its entry; a dead one expires)", "jobs:read",
        {200: ("WorkerList", "workers, by id")})},
    "/api/workers/{worker_id}": {
        "put": op("Write or refresh the registry entry of a worker that works over HTTP "
                  "(relayq-worker --server); it expires after ttl_ms unless refreshed",
                  "jobs:work", {200: ("Worker", "the entry as listed")}, body="WorkerEntry",
                  params=("worker_id",)),
        "delete": op("Take a worker out of the registry (it stopped)", "jobs:work",
                     {200: ("WorkerRemoved", "removed (or already gone)")},
                     params=("worker_id",)),
    },
    "/api/queues/{queue}/jobs/batch": {"post": op(
        f"Enqueue up to {BATCH_LIMIT} jobs, all or nothing", "jobs:write",
        {201: ("BatchEnqueued", "created")}, body="Batch", params=("queue",),
        query=TRACE_HEADERS)},
    "/api/flows": {"post": op(
        f"Create a graph of up to {MAX_FLOW_JOBS} jobs with their dependencies, all or nothing "
        "(a cycle, an unknown ref or a bad job: 400 naming the ref)", "jobs:write",
        {201: ("FlowCreated", "created, in the order given")}, body="Flow")},
    "/api/queues/{queue}/claim": {"post": op(
        "Claim jobs under a lease, optionally waiting (long poll)", "jobs:work",
        {200: ("Claimed", "claimed jobs, each with its lease")}, body="Claim",
        body_required=False, params=("queue",))},
    "/api/jobs/{job_id}/ack": {"post": op(
        "Finish a running job successfully", "jobs:work", {200: ("Acked", "succeeded")},
        body="Ack", params=("job_id",), errors=(409,))},
    "/api/jobs/{job_id}/nack": {"post": op(
        "Fail a running job (retry or dead)", "jobs:work", {200: ("Nacked", "failed")},
        body="Nack", params=("job_id",), errors=(409,))},
    "/api/jobs/{job_id}/heartbeat": {"post": op(
        "Extend a running job's lease", "jobs:work", {200: ("LeaseExtended", "extended")},
        body="Heartbeat", params=("job_id",), errors=(409,))},
    "/api/jobs/{job_id}/progress": {"post": op(
        "Report a running job's progress (fenced by its lease)", "jobs:work",
        {200: ("ProgressSet", "stored")}, body="Progress", params=("job_id",), errors=(409,))},
    "/api/queues/{queue}/settle": {"post": op(
        "Record many outcomes (ack, nack, release) and claim the next jobs, in one round "
        "trip (what relayq-worker --server sends)", "jobs:work",
        {200: ("Settled", "a status per outcome, and the claimed jobs")}, body="Settle",
        body_required=False, params=("queue",))},
    "/api/queues/{queue}/heartbeat": {"post": op(
        "Extend many leases of one queue", "jobs:work",
        {200: ("LeasesExtended", "a status and deadline per lease, in order")},
        body="Heartbeats", params=("queue",))},
    "/api/queues/{queue}/reap": {"post": op(
        "Put jobs whose lease expired back (or dead): the reaper", "jobs:work",
        {200: ("Reaped", "how many")}, params=("queue",))},
    "/api/jobs/{job_id}": {
        "get": op("A job", "jobs:read", {200: ("Job", "the job")}, params=("job_id",)),
        "delete": op("Cancel a job: a ready or scheduled one at once (200), a running one by "
                     "request (202: it ends cancelled once its handler stops)", "jobs:write",
                     {200: ("Cancelled", "cancelled"),
                      202: ("CancelRequested", "running: its cancel is requested")},
                     params=("job_id",), errors=(409,)),
    },
    "/api/queues": {"get": op("Every queue with its stats", "jobs:read",
                              {200: ("QueueList", "queues")})},
    "/api/queues/{queue}": {"get": op("A queue's stats", "jobs:read",
                                      {200: ("QueueStats", "stats")}, params=("queue",))},
    "/api/queues/{queue}/pause": {"post": op("Pause a queue", "queues:admin",
                                             {200: ("Paused", "paused")}, params=("queue",))},
    "/api/queues/{queue}/resume": {"post": op("Resume a queue", "queues:admin",
                                              {200: ("Paused", "resumed")}, params=("queue",))},
    "/api/queues/{queue}/rate-limit": {
        "put": op("Set the rate limit", "queues:admin", {200: ("RateLimitSet", "set")},
                  body="RateLimit", params=("queue",)),
        "delete": op("Remove the rate limit", "queues:admin", {200: ("RateLimitSet", "removed")},
                     params=("queue",)),
    },
    "/api/queues/{queue}/settings": {
        "get": op("A queue's settings (defaults of new jobs, retention, event log, fair-queue "
                  "limits)", "jobs:read", {200: ("Settings", "every setting")},
                  params=("queue",)),
        "patch": op("Change some of a queue's settings (all given or none)", "queues:admin",
                    {200: ("Settings", "every setting, after the change")},
                    body="SettingsChange", params=("queue",)),
    },
    "/api/queues/{queue}/groups": {"get": op(
        "A queue's groups (fair queues), the largest backlog first, paged", "jobs:read",
        {200: ("GroupList", "a page")}, params=("queue",), query=GROUP_PAGE)},
    "/api/queues/{queue}/groups/{group}/limits": {
        "put": op("Set a group's own limits (the ones left out take the queue's defaults)",
                  "queues:admin", {200: ("GroupLimitsSet", "set")}, body="GroupLimits",
                  params=("queue", "group")),
        "delete": op("Remove a group's own limits", "queues:admin",
                     {200: ("GroupLimitsSet", "removed")}, params=("queue", "group")),
    },
    "/api/queues/{queue}/dead": {
        "get": op("Dead jobs, most recent first, paged", "queues:admin",
                  {200: ("DeadList", "a page")}, params=("queue",), query=PAGE),
        "delete": op("Purge every dead job", "queues:admin", {200: ("Purged", "purged")},
                     params=("queue",)),
    },
    "/api/queues/{queue}/dead/requeue": {"post": op(
        "Requeue every dead job (attempts reset)", "queues:admin",
        {200: ("Requeued", "requeued")}, params=("queue",))},
    "/api/queues/{queue}/dead/{job_id}/requeue": {"post": op(
        "Requeue one dead job (attempts reset)", "queues:admin",
        {200: ("Requeued", "requeued")}, params=("queue", "job_id"))},
    "/api/queues/{queue}/dead/{job_id}": {"delete": op(
        "Purge one dead job", "queues:admin", {200: ("Purged", "purged")},
        params=("queue", "job_id"))},
    "/api/queues/{queue}/schedules": {"get": op(
        "A queue's periodic schedules, by id", "jobs:read",
        {200: ("ScheduleList", "schedules")}, params=("queue",))},
    "/api/queues/{queue}/schedules/{schedule_id}": {
        "put": op("Save a periodic schedule (an upsert by id: the same definition changes "
                  "nothing)", "queues:admin",
                  {201: ("Schedule", "created"), 200: ("Schedule", "updated or unchanged")},
                  body="NewSchedule", params=("queue", "schedule_id")),
        "get": op("A periodic schedule", "jobs:read", {200: ("Schedule", "the schedule")},
                  params=("queue", "schedule_id")),
        "delete": op("Delete a periodic schedule (its jobs stay)", "queues:admin",
                     {200: ("ScheduleDeleted", "deleted")}, params=("queue", "schedule_id")),
    },
    "/api/queues/{queue}/schedules/{schedule_id}/pause": {"post": op(
        "Pause a schedule (its ticks meanwhile are not made up for)", "queues:admin",
        {200: ("Schedule", "paused")}, params=("queue", "schedule_id"))},
    "/api/queues/{queue}/schedules/{schedule_id}/resume": {"post": op(
        "Resume a schedule from its next tick", "queues:admin",
        {200: ("Schedule", "resumed")}, params=("queue", "schedule_id"))},
    "/api/queues/{queue}/schedules/{schedule_id}/trigger": {"post": op(
        "Make one job of the schedule now", "queues:admin",
        {201: ("ScheduleTriggered", "the job made")}, params=("queue", "schedule_id"))},
    "/api/events": {"get": op("Live events (Server-Sent Events)", "jobs:read", {},
                              query=(QUEUE_FILTER, SINCE), errors=(400,))},
    "/api/keys": {
        "post": op("Create an API key (the secret is shown once)", "keys:admin",
                   {201: ("KeyCreated", "created")}, body="NewKey"),
        "get": op("API keys (never their secrets)", "keys:admin", {200: ("KeyList", "keys")}),
    },
    "/api/keys/{key_id}": {"delete": op(
        "Revoke an API key (only one whose scopes the caller holds; never the last admin key: "
        "409 last_admin_key)", "keys:admin", {200: ("KeyRevoked", "revoked")},
        params=("key_id",), errors=(409,))},
    "/api/openapi.json": {"get": {"summary": "This document (public)", "security": [],
                                  "responses": {"200": {"description": "OpenAPI 3.1",
                                                        "content": {JSON: {}}}}}},
    "/healthz": {"get": op("Liveness", None, {200: ("Health", "alive")})},
    "/readyz": {"get": op("Readiness: Redis reachable, scripts loaded", None,
                          {200: ("Ready", "ready")})},
}
PATHS["/api/queues/{queue}/claim"]["post"]["responses"]["204"] = NO_JOBS
PATHS["/api/events"]["get"]["responses"]["200"] = SSE
PATHS["/api/events"]["get"]["description"] = (
    "Also accepts, in place of the Authorization header, the session cookie of "
    "POST /api/session (EventSource cannot send a header). Ends once the key is revoked.")


def _no_content(operation: dict[str, Any], description: str) -> dict[str, Any]:
    operation["responses"]["204"] = {"description": description}
    return operation


def _text(operation: dict[str, Any], description: str, *media_types: str) -> dict[str, Any]:
    operation["responses"]["200"] = {
        "description": description,
        "content": {media: {"schema": {"type": "string"}} for media in media_types}}
    return operation


PATHS["/api/session"] = {
    "post": _no_content(op("Open a session for the event stream: an HttpOnly cookie "
                           "(SameSite=Strict, Path=/api/events) that GET /api/events accepts "
                           "in place of the key, set again with Path=/api/session for DELETE",
                           "jobs:read", {}),
                        "opened; the cookie is in Set-Cookie (none with auth off)"),
    "delete": _no_content(op("End the session (at once, on the server) and drop its cookies",
                             None, {}), "ended"),
}
PATHS["/metrics"] = {"get": _text(
    op("Prometheus metrics: this process's counters and every queue's state", None, {}),
    "the exposition (OpenMetrics when the Accept header asks for it)",
    "text/plain", "application/openmetrics-text")}


def _file(summary: str, media_type: str, params: tuple[str, ...] = ()) -> dict[str, Any]:
    """A file of the dashboard: 200, or 304 when the If-None-Match ETag is still current."""
    operation = _text(op(summary, None, {}, params=params), "the file", media_type)
    operation["responses"]["304"] = {"description": "unchanged (If-None-Match)"}
    return operation


PATHS["/"] = {"get": _file("The dashboard (web/index.html)", "text/html")}
PATHS["/favicon.svg"] = {"get": _file("The dashboard's icon", "image/svg+xml")}
PATHS["/css/{name}"] = {"get": _file("A stylesheet of the dashboard", "text/css", ("name",))}
PATHS["/js/{name}"] = {"get": _file("A script of the dashboard", "text/javascript", ("name",))}
PATHS["/js/views/{name}"] = {"get": _file("A view script of the dashboard", "text/javascript",
                                          ("name",))}

PARAMETERS = {
    "queue": {"name": "queue", "in": "path", "required": True, "schema": QUEUE_NAME},
    "job_id": {"name": "job_id", "in": "path", "required": True,
               "schema": JOB_PROPERTIES["id"]},
    "worker_id": {"name": "worker_id", "in": "path", "required": True,
                  "schema": string(MAX_WORKER_ID_BYTES)},
    "schedule_id": {"name": "schedule_id", "in": "path", "required": True,
                    "schema": string(pattern=f"^{SCHEDULE_ID_PATTERN}$")},
    "group": {"name": "group", "in": "path", "required": True, "schema": GROUP_NAME},
    "key_id": {"name": "key_id", "in": "path", "required": True,
               "schema": API_KEY_PROPERTIES["id"]},
    "name": {"name": "name", "in": "path", "required": True,
             "schema": string(pattern=f"^{FILE_NAME.pattern}$")},
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "relayq HTTP API", "version": "1",
             "description": "A task queue on Redis. At-least-once delivery; errors are "
                            '{"error": {"code", "message"}} with stable codes.'},
    "security": [{"bearer": []}],
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "parameters": PARAMETERS,
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                       "description": "an API key: rq_<id>_<secret>"}},
    },
}


@bp.get("/openapi.json")
@public
def document() -> Any:
    return DOCUMENT
