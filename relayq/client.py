"""`relayq.Client`: the HTTP SDK. Everything the HTTP API offers, from Python, over one pool of
keep-alive connections (urllib3, thread-safe: share one Client between threads).

Retries: a call is sent again, with exponential backoff and jitter (and honouring Retry-After),
after a connection error or a 5xx reply only when repeating it is safe: reads, pause/resume,
rate limits, ack/nack/heartbeat (the engine answers a repeat by the lease holder the same way),
and enqueues that carry an idempotency key. Anything else is retried only when the connection
failed before the request was sent; so a 503 `redis_busy` (Redis out of memory, read-only,
loading, ...: nothing ran) is retried for those calls and raises `RedisBusy` for the others.
Error replies raise the exception of `relayq.errors` for their code, through its one table
(`relayq.errors.ERRORS`: `JobNotFound`, `LeaseLost`, `Forbidden`, ...); a server that cannot be
reached raises `ServerUnavailable`.

    client = relayq.Client("http://localhost:8080", api_key="rq_...")  # or $RELAYQ_SERVER,
    job = client.enqueue("emails", {"to": "ada@example.com"})          #    $RELAYQ_API_KEY
    print(client.wait(job.id, timeout=30).result)

The operations are written once, without I/O, in `ClientOps`: each is a generator that yields
the `Request`s it makes (and `Sleep`s, for `wait`) and is sent each 2xx reply; the paths,
bodies, which calls are safe to repeat, how a reply reads and which exception an error reply
raises are all there. `Client` sends the requests with urllib3, `relayq.aio.Client` with httpx.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, NamedTuple, TypeVar
from urllib.parse import quote

import urllib3

from . import tracing
from .backoff import Backoff
from .codec import dumps
from .deprecation import deprecated
from .errors import (
    Forbidden,
    InvalidArgument,
    NotFound,
    PayloadTooLarge,
    RelayqError,
    ScheduleNotFound,
    ServerUnavailable,
    Unauthorized,
    error_for,
)
from .event_stream import (
    MAX_RECONNECT_S,
    READ_CHUNK,
    STREAM_READ_S,
    EventStreamParser,
    NextEvent,
    stream_headers,
    stream_path,
    until_finished_on_events,
)
from .events import Event, check_event_id
from .flows import FlowResult, flow_spec
from .job import Attempt, Job, parse_job_id
from .keys import check_queue_name
from .limits import BATCH_LIMIT, DEFAULT_PAGE
from .options import JobOptions, check_run_at, is_digits
from .protocol import Heartbeat
from .queue_groups import GroupsPage, groups_page_from_view
from .results import ClaimResult, EnqueueResult, NackResult, NewJob, Outcome, QueueStats
from .rfc3339 import format_ms, parse_ms, to_epoch_ms
from .schedules import check_schedule_id
from .steps import Sleep, drive
from .worker_registry import WorkerEntry

R = TypeVar("R")

DEFAULT_SERVER = "http://localhost:8080"
RETRY_STATUSES = (500, 502, 503, 504)
BACKOFF_MAX_S = 5.0  # the longest wait between two tries of a call
CONNECT_TIMEOUT_S = 5.0
# replies without a relayq error body (from a proxy, or the HTTP server itself): by status
NON_JSON_ERRORS: dict[int, type[RelayqError]] = {
    401: Unauthorized, 403: Forbidden, 404: NotFound, 413: PayloadTooLarge}
TIME_FIELDS = ("created_at", "run_at", "started_at", "finished_at", "lease_deadline")


def default_server() -> str:
    """The server when none is named: $RELAYQ_SERVER, else http://localhost:8080."""
    return os.environ.get("RELAYQ_SERVER") or DEFAULT_SERVER


def unavailable(server: str, why: str) -> ServerUnavailable:
    """The error for a server that did not answer (either client)."""
    return ServerUnavailable(f"relayq-server at {server} is not answering ({why}): is it "
                             "running? set $RELAYQ_SERVER to use another")


def _why(error: urllib3.exceptions.HTTPError) -> str:
    """Why a server could not be reached, in a few words (urllib3's text is a paragraph)."""
    reason = getattr(error, "reason", None) or error
    exceptions = urllib3.exceptions
    if isinstance(reason, exceptions.NameResolutionError):
        return "unknown host"
    if isinstance(reason, exceptions.NewConnectionError):
        text = str(reason)
        return text.rsplit("] ", 1)[1].lower() if "] " in text else "cannot connect"
    if isinstance(reason, exceptions.ConnectTimeoutError):
        return "connect timed out"
    if isinstance(reason, exceptions.ReadTimeoutError):
        return "no reply in time"
    if isinstance(reason, exceptions.SSLError):
        return "TLS error"
    if isinstance(reason, exceptions.ProtocolError):
        return "connection broken"
    return type(reason).__name__


def _ms(text: str) -> int:
    return parse_ms(text, "a time of the reply")


def _ms_or_none(text: str | None) -> int | None:
    return None if text is None else _ms(text)


def job_from_view(view: dict[str, Any]) -> Job[Any]:
    """A `Job` from its JSON view (times back to epoch ms)."""
    fields = {k: v for k, v in view.items() if k in Job.__dataclass_fields__}
    fields.update({name: _ms_or_none(view.get(name)) for name in TIME_FIELDS})
    if view.get("history") is not None:
        fields["history"] = [
            Attempt(a["worker_id"], _ms_or_none(a["started_at"]), _ms(a["finished_at"]),
                    a["outcome"], a["error"]) for a in view["history"]]
    return Job(**fields)


def stats_from_view(view: dict[str, Any]) -> QueueStats:
    return QueueStats(view["queue"], view["ready"], view["scheduled"], view["running"],
                      view["dead"], view["succeeded"], view["paused"], view["rate_limit"],
                      view["totals"], view["latency_ms"], view["waiting"])


def _job_body(job: NewJob[Any]) -> dict[str, Any]:
    """The JSON of one job to enqueue: its payload and the options that are set."""
    options = job.options
    body: dict[str, Any] = {"payload": job.payload}
    for name in JobOptions.__dataclass_fields__:
        value = getattr(options, name)
        if value is not None:
            body[name] = value
    if isinstance(options.run_at, (datetime, int)):
        body["run_at"] = format_ms(check_run_at(options.run_at))
    return body


def _outcome_body(outcome: Outcome) -> dict[str, Any]:
    """The JSON of one outcome of a settle request."""
    body: dict[str, Any] = {"id": outcome.job_id, "lease": outcome.lease,
                            "outcome": outcome.kind}
    if outcome.kind == "ack" and outcome.result_json:
        body["result"] = json.loads(outcome.result_json)
    elif outcome.kind == "nack":
        body.update(error=outcome.error, retry=outcome.retry)
        if outcome.delay_ms is not None:
            body["delay_ms"] = outcome.delay_ms
    return body


class Request(NamedTuple):
    """A step of a client operation: one HTTP call. `repeatable`: safe to send again after a
    failure once it may have been sent (see the module's docstring); `fields`: the query
    string; `extra_wait_s`: added to the read timeout (long polls); `headers`: sent besides
    the client's own (a trace context). Sent back the 2xx reply as (status, decoded JSON or
    None, headers)."""

    method: str
    path: str
    body: Any = None
    repeatable: bool = False
    fields: dict[str, Any] | None = None
    extra_wait_s: float = 0.0
    headers: dict[str, str] | None = None


ClientOp = Generator[Request | Sleep, Any, R]


class ClientOps:
    """Every operation of the HTTP API, without I/O (see the module's docstring). `server`
    defaults to $RELAYQ_SERVER or http://localhost:8080, `api_key` to $RELAYQ_API_KEY.
    `timeout` is each call's read timeout in seconds (long polls add their wait); `retries`
    bounds the retries of a safe call."""

    def __init__(self, server: str | None = None, api_key: str | None = None, *,
                 timeout: float = 30.0, retries: int = 3, backoff_s: float = 0.1) -> None:
        self.server = (server or default_server()).rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("RELAYQ_API_KEY")
        self.timeout = timeout
        self.retries = retries
        self.backoff_s = backoff_s

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.server!r})"

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "User-Agent": "relayq-client"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _reply(self, path: str, status: int, raw: bytes, headers: Any) -> tuple[int, Any, Any]:
        """(status, decoded JSON or None, headers) of a 2xx reply; raises for anything else."""
        try:
            data = json.loads(raw) if raw.strip() else None
        except ValueError:  # not from relayq (a proxy's page, ...)
            data = None
        if 200 <= status < 300:
            return status, data, headers
        raise self._error(path, status, data)

    def _error(self, path: str, status: int, data: Any) -> RelayqError:
        error = data.get("error") if isinstance(data, dict) else None
        if not isinstance(error, dict):
            cls = NON_JSON_ERRORS.get(status, ServerUnavailable if status >= 500 else RelayqError)
            return cls(f"HTTP {status} from {path}, without a relayq error body")
        code, message = str(error.get("code")), str(error.get("message", ""))
        if code == "unauthorized":  # say where the key comes from, not what header to send
            message = (f"relayq-server at {self.server} wants an API key: set $RELAYQ_API_KEY"
                       if not self.api_key else f"{message}: check $RELAYQ_API_KEY")
        if code == "not_found" and "/schedules/" in path:
            return ScheduleNotFound(message)
        return error_for(code, message, about_job=not path.startswith("/api/keys"))

    @staticmethod
    def _data(method: str, path: str, body: Any = None, *, repeatable: bool,
              fields: dict[str, Any] | None = None, headers: dict[str, str] | None = None
              ) -> ClientOp[Any]:
        return (yield Request(method, path, body, repeatable, fields, headers=headers))[1]

    @staticmethod
    def _queue(queue: str) -> str:
        return f"/api/queues/{check_queue_name(queue)}"

    @staticmethod
    def _job(job_id: str) -> str:
        parse_job_id(job_id)  # InvalidJobId here, before anything is sent
        return f"/api/jobs/{job_id}"

    def _dead(self, queue: str, job_id: str | None) -> str:
        path = self._queue(queue) + "/dead"
        if job_id is not None:
            parse_job_id(job_id)
            path += f"/{job_id}"
        return path

    # -- the operations (the public methods of Client and relayq.aio.Client run these) -----

    def _enqueue(self, queue: str, payload: Any, options: dict[str, Any]
                 ) -> ClientOp[EnqueueResult]:
        job = NewJob(payload, JobOptions(**options))
        data = yield from self._data("POST", self._queue(queue) + "/jobs", _job_body(job),
                                     repeatable=job.options.idempotency_key is not None,
                                     headers=tracing.outgoing_headers())
        return EnqueueResult(data["id"], data["state"], data["duplicate"])

    def _enqueue_many(self, queue: str, jobs: Iterable[NewJob[Any] | Any]
                      ) -> ClientOp[list[EnqueueResult]]:
        items = [j if isinstance(j, NewJob) else NewJob(j) for j in jobs]
        path = self._queue(queue) + "/jobs/batch"
        results = []
        for start in range(0, len(items), BATCH_LIMIT):
            chunk = items[start:start + BATCH_LIMIT]
            data = yield from self._data("POST", path, {"jobs": [_job_body(j) for j in chunk]},
                                         repeatable=all(j.options.idempotency_key for j in chunk),
                                         headers=tracing.outgoing_headers())
            results += [EnqueueResult(r["id"], r["state"], r["duplicate"]) for r in data["jobs"]]
        return results

    def _flow(self, parts: Sequence[Any]) -> ClientOp[list[FlowResult]]:
        """Workflows: POST /api/flows with the jobs of FlowJob, chain(...), group(...)."""
        data = yield from self._data("POST", "/api/flows", {"jobs": flow_spec(*parts)},
                                     repeatable=False, headers=tracing.outgoing_headers())
        return [FlowResult(**job) for job in data["jobs"]]

    def _get(self, job_id: str) -> ClientOp[Job[Any]]:
        return job_from_view((yield from self._data("GET", self._job(job_id), repeatable=True)))

    def _stats(self, queue: str) -> ClientOp[QueueStats]:
        return stats_from_view((yield from self._data("GET", self._queue(queue),
                                                      repeatable=True)))

    def _queues(self) -> ClientOp[list[QueueStats]]:
        data = yield from self._data("GET", "/api/queues", repeatable=True)
        return [stats_from_view(v) for v in data["queues"]]

    def _claim(self, queue: str, count: int, wait_ms: int, visibility_ms: int | None,
               worker_id: str | None) -> ClientOp[ClaimResult]:
        body: dict[str, Any] = {"count": count, "wait_ms": wait_ms}
        if visibility_ms is not None:
            body["visibility_ms"] = visibility_ms
        if worker_id is not None:
            body["worker_id"] = worker_id
        status, data, headers = yield Request(
            "POST", self._queue(queue) + "/claim", body, repeatable=False,
            extra_wait_s=wait_ms / 1000 if isinstance(wait_ms, int) else 0.0)
        if status == 204:
            retry_after = headers.get("Retry-After")
            return ClaimResult((), "empty" if retry_after is None else "throttled",
                               int(retry_after) * 1000 if is_digits(retry_after) else None)
        return ClaimResult(job_from_view(v) for v in data["jobs"])

    def _ack(self, job_id: str, lease: str, result: Any) -> ClientOp[str]:
        return (yield from self._data("POST", self._job(job_id) + "/ack",
                                      {"lease": lease, "result": result}, repeatable=True)
                )["state"]

    def _nack(self, job_id: str, lease: str, error: str, retry: bool, delay_ms: int | None
              ) -> ClientOp[NackResult]:
        body: dict[str, Any] = {"lease": lease, "error": error, "retry": retry}
        if delay_ms is not None:
            body["delay_ms"] = delay_ms
        data = yield from self._data("POST", self._job(job_id) + "/nack", body, repeatable=True)
        return NackResult(data["state"], data["attempts"], _ms_or_none(data["run_at"]))

    def _heartbeat(self, job_id: str, lease: str, visibility_ms: int | None) -> ClientOp[int]:
        body: dict[str, Any] = {"lease": lease}
        if visibility_ms is not None:
            body["visibility_ms"] = visibility_ms
        data = yield from self._data("POST", self._job(job_id) + "/heartbeat", body,
                                     repeatable=True)
        return _ms(data["lease_deadline"])

    def _settle(self, queue: str, outcomes: Sequence[Outcome], claim: int,
                visibility_ms: int | None, worker_id: str | None
                ) -> ClientOp[tuple[list[str], ClaimResult | None]]:
        body: dict[str, Any] = {"outcomes": [_outcome_body(o) for o in outcomes]}
        if claim:
            body["claim"] = claim
        if visibility_ms is not None:
            body["visibility_ms"] = visibility_ms
        if worker_id is not None:
            body["worker_id"] = worker_id
        data = yield from self._data("POST", self._queue(queue) + "/settle", body,
                                     repeatable=not claim)
        if data["claim_status"] is None:
            return data["statuses"], None
        return data["statuses"], ClaimResult((job_from_view(v) for v in data["jobs"]),
                                             data["claim_status"], data["retry_in_ms"])

    def _heartbeat_many(self, queue: str, leases: Iterable[tuple[str, str]],
                        visibility_ms: int | None) -> ClientOp[list[Heartbeat]]:
        body: dict[str, Any] = {"leases": [{"id": i, "lease": lease} for i, lease in leases]}
        if visibility_ms is not None:
            body["visibility_ms"] = visibility_ms
        data = yield from self._data("POST", self._queue(queue) + "/heartbeat", body,
                                     repeatable=True)
        return [Heartbeat(r["status"],
                          -1 if r["lease_deadline"] is None else _ms(r["lease_deadline"]),
                          r["cancel_requested"]) for r in data["leases"]]

    def _reap(self, queue: str) -> ClientOp[tuple[int, int]]:
        data = yield from self._data("POST", self._queue(queue) + "/reap", repeatable=True)
        return data["requeued"], data["dead"]

    def _progress(self, job_id: str, lease: str, fraction: float, info: Any) -> ClientOp[bool]:
        body: dict[str, Any] = {"lease": lease, "progress": fraction}
        if info is not None:
            body["info"] = info
        return (yield from self._data("POST", self._job(job_id) + "/progress", body,
                                      repeatable=True))["cancel_requested"]

    def _cancel(self, job_id: str) -> ClientOp[str]:
        # asking again is harmless, so the call is retried like a read
        return (yield from self._data("DELETE", self._job(job_id), repeatable=True))["state"]

    def _pause(self, queue: str, paused: bool) -> ClientOp[None]:
        yield from self._data("POST", self._queue(queue) + ("/pause" if paused else "/resume"),
                              repeatable=True)

    def _set_rate_limit(self, queue: str, rate: float, burst: int | None) -> ClientOp[None]:
        body: dict[str, Any] = {"rate": rate}
        if burst is not None:
            body["burst"] = burst
        yield from self._data("PUT", self._queue(queue) + "/rate-limit", body, repeatable=True)

    def _clear_rate_limit(self, queue: str) -> ClientOp[None]:
        yield from self._data("DELETE", self._queue(queue) + "/rate-limit", repeatable=True)

    def _settings(self, queue: str) -> ClientOp[dict[str, float]]:
        data = yield from self._data("GET", self._queue(queue) + "/settings", repeatable=True)
        return data["settings"]  # type: ignore[no-any-return]

    def _configure(self, queue: str, settings: dict[str, float]) -> ClientOp[dict[str, float]]:
        if not settings:
            raise InvalidArgument("configure needs at least one setting")
        data = yield from self._data("PATCH", self._queue(queue) + "/settings", settings,
                                     repeatable=True)
        return data["settings"]  # type: ignore[no-any-return]

    # fair queues (relayq/queue_groups.py, relayq/api/groups.py)

    def _groups(self, queue: str, limit: int, cursor: str | None) -> ClientOp[GroupsPage]:
        fields = {"limit": str(limit), **({"cursor": cursor} if cursor is not None else {})}
        view = yield from self._data("GET", self._queue(queue) + "/groups", repeatable=True,
                                     fields=fields)
        return groups_page_from_view(view)

    def _group_limits(self, queue: str, group: str, limits: dict[str, Any] | None
                      ) -> ClientOp[None]:
        path = f"{self._queue(queue)}/groups/{quote(group, safe='')}/limits"
        if limits is None:
            yield from self._data("DELETE", path, repeatable=True)
        else:
            body = {k: v for k, v in limits.items() if v is not None}
            yield from self._data("PUT", path, body, repeatable=True)

    def _jobs(self, queue: str, state: str, limit: int, cursor: str | None,
              search: str | None) -> ClientOp[tuple[list[Job[Any]], str | None]]:
        fields: dict[str, Any] = {"state": state, "limit": str(limit)}
        if cursor is not None:
            fields["cursor"] = cursor
        if search is not None:
            fields["q"] = search
        data = yield from self._data("GET", self._queue(queue) + "/jobs", repeatable=True,
                                     fields=fields)
        return [job_from_view(v) for v in data["jobs"]], data["next_cursor"]

    def _workers(self) -> ClientOp[list[WorkerEntry]]:
        views = (yield from self._data("GET", "/api/workers", repeatable=True))["workers"]
        return [WorkerEntry(**{**v, "started_at": _ms(v["started_at"]),
                               "last_seen_at": _ms(v["last_seen_at"])}) for v in views]

    def _dead_page(self, queue: str, limit: int, cursor: str | None
                   ) -> ClientOp[tuple[list[Job[Any]], str | None]]:
        fields: dict[str, Any] = {"limit": str(limit)}
        if cursor is not None:
            fields["cursor"] = cursor
        data = yield from self._data("GET", self._queue(queue) + "/dead", repeatable=True,
                                     fields=fields)
        return [job_from_view(v) for v in data["jobs"]], data["next_cursor"]

    def _requeue_dead(self, queue: str, job_id: str | None) -> ClientOp[int]:
        data = yield from self._data("POST", self._dead(queue, job_id) + "/requeue",
                                     repeatable=False)
        return data["requeued"]  # type: ignore[no-any-return]

    def _purge_dead(self, queue: str, job_id: str | None) -> ClientOp[int]:
        data = yield from self._data("DELETE", self._dead(queue, job_id), repeatable=False)
        return data["purged"]  # type: ignore[no-any-return]

    def _register_worker(self, entry: WorkerEntry, ttl_ms: int) -> ClientOp[WorkerEntry]:
        body: dict[str, Any] = {
            "host": entry.host, "pid": entry.pid, "queues": entry.queues,
            "concurrency": entry.concurrency, "busy": entry.busy, "jobs": entry.jobs,
            "ttl_ms": ttl_ms}
        if entry.started_at:
            body["started_at"] = format_ms(entry.started_at)
        v = yield from self._data("PUT", f"/api/workers/{quote(entry.id, safe='')}", body,
                                  repeatable=True)
        return WorkerEntry(**{**v, "started_at": _ms(v["started_at"]),
                              "last_seen_at": _ms(v["last_seen_at"])})

    def _remove_worker(self, worker_id: str) -> ClientOp[None]:
        yield from self._data("DELETE", f"/api/workers/{quote(worker_id, safe='')}",
                              repeatable=True)

    def _schedule_path(self, queue: str, schedule_id: str) -> str:
        return f"{self._queue(queue)}/schedules/{check_schedule_id(schedule_id)}"

    def _save_schedule(self, queue: str, schedule_id: str, payload: Any,
                       fields: dict[str, Any]) -> ClientOp[dict[str, Any]]:
        body: dict[str, Any] = {"payload": payload}
        for name, value in fields.items():
            if value is None:
                continue
            if name in ("start_at", "end_at") and not isinstance(value, str):
                value = format_ms(to_epoch_ms(value) if isinstance(value, datetime) else value)
            body[name] = value
        return (yield from self._data("PUT", self._schedule_path(queue, schedule_id), body,
                                      repeatable=True))

    def _schedules(self, queue: str) -> ClientOp[list[dict[str, Any]]]:
        return (yield from self._data("GET", self._queue(queue) + "/schedules",
                                      repeatable=True))["schedules"]

    def _get_schedule(self, queue: str, schedule_id: str) -> ClientOp[dict[str, Any]]:
        return (yield from self._data("GET", self._schedule_path(queue, schedule_id),
                                      repeatable=True))

    def _unschedule(self, queue: str, schedule_id: str) -> ClientOp[None]:
        yield from self._data("DELETE", self._schedule_path(queue, schedule_id),
                              repeatable=False)

    def _pause_schedule(self, queue: str, schedule_id: str, paused: bool
                        ) -> ClientOp[dict[str, Any]]:
        verb = "/pause" if paused else "/resume"
        return (yield from self._data("POST", self._schedule_path(queue, schedule_id) + verb,
                                      repeatable=True))

    def _trigger_schedule(self, queue: str, schedule_id: str) -> ClientOp[str]:
        return (yield from self._data("POST", self._schedule_path(queue, schedule_id) + "/trigger",
                                      repeatable=False))["job_id"]

    def _create_key(self, name: str, scopes: Iterable[str]) -> ClientOp[dict[str, Any]]:
        if isinstance(scopes, str):
            raise InvalidArgument("scopes must be a list of scope names")
        return (yield from self._data("POST", "/api/keys",
                                      {"name": name, "scopes": list(scopes)}, repeatable=False))

    def _list_keys(self) -> ClientOp[list[dict[str, Any]]]:
        return (yield from self._data("GET", "/api/keys", repeatable=True))["keys"]

    def _revoke_key(self, key_id: str) -> ClientOp[None]:
        yield from self._data("DELETE", f"/api/keys/{quote(key_id, safe='')}", repeatable=False)


class Client(ClientOps):
    """A client of one relayq server over urllib3 (thread-safe: share one between threads).
    Options as for `ClientOps`; `pool_size`: keep-alive connections kept."""

    def __init__(self, server: str | None = None, api_key: str | None = None, *,
                 timeout: float = 30.0, retries: int = 3, backoff_s: float = 0.1,
                 pool_size: int = 10) -> None:
        super().__init__(server, api_key, timeout=timeout, retries=retries, backoff_s=backoff_s)
        self._http = urllib3.PoolManager(maxsize=pool_size, headers=self._headers())

    def close(self) -> None:
        self._http.clear()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing: the I/O of the operations of ClientOps -----------------------------------

    def _drive(self, op: ClientOp[R]) -> R:
        """Runs an operation, each request sent with urllib3 (relayq/steps.py)."""
        return drive(op, self._step)

    def _step(self, step: Request | Sleep) -> Any:
        if type(step) is Sleep:
            time.sleep(step.seconds)
            return None
        return self._call(step)

    def _retry(self, repeatable: bool) -> urllib3.Retry:
        again = self.retries if repeatable else 0
        return urllib3.Retry(
            total=self.retries, connect=self.retries, read=again, status=again, other=0,
            redirect=0, allowed_methods=None, status_forcelist=RETRY_STATUSES,
            backoff_factor=self.backoff_s, backoff_max=BACKOFF_MAX_S,
            backoff_jitter=self.backoff_s, respect_retry_after_header=True,
            raise_on_status=False, raise_on_redirect=False)

    def _call(self, request: Request) -> tuple[int, Any, Any]:
        try:
            response = self._http.request(
                request.method, self.server + request.path, fields=request.fields,
                body=None if request.body is None else dumps(request.body),
                # extra headers (a trace context) replace the pool's: send both
                headers={**self._http.headers, **request.headers} if request.headers else None,
                retries=self._retry(request.repeatable),
                timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT_S,
                                        read=self.timeout + request.extra_wait_s))
        except urllib3.exceptions.HTTPError as e:
            raise unavailable(self.server, _why(e)) from e
        return self._reply(request.path, response.status, response.data, response.headers)

    # -- producing ------------------------------------------------------------------------

    def enqueue(self, queue: str, payload: Any, **options: Any) -> EnqueueResult:
        """Adds one job. Options as for `Queue.enqueue` (type, priority, delay_ms or run_at,
        max_attempts, idempotency_key, timeout_ms, backoff_base_ms, backoff_cap_ms)."""
        return self._drive(self._enqueue(queue, payload, options))

    def enqueue_many(self, queue: str, jobs: Iterable[NewJob[Any] | Any]) -> list[EnqueueResult]:
        """Adds many jobs, in requests of up to 1000 (each all or nothing)."""
        return self._drive(self._enqueue_many(queue, jobs))

    def flow(self, *parts: Any) -> list[FlowResult]:
        """Makes a graph of jobs in one request (relayq.flow's parts: FlowJob, chain(...),
        group(...)), all or nothing on validation; each job's ref, id and state."""
        return self._drive(self._flow(parts))

    # -- reading --------------------------------------------------------------------------

    def get(self, job_id: str) -> Job[Any]:
        return self._drive(self._get(job_id))

    def wait(self, job_id: str, timeout: float = 30.0, *,
             on_change: Callable[[Job[Any]], None] | None = None,
             poll_s: float | None = None) -> Job[Any]:
        """The job once it is finished (succeeded, dead or cancelled); TimeoutError when it is
        not within `timeout` seconds. Waits on its queue's event stream (`events`), not by
        polling: the job is read when an event names it (and, as a backstop for a queue whose
        log is off, every WAIT_RECHECK_S). `on_change(job)` hears of each state and progress it
        sees. (`poll_s` is ignored: kept for callers of the polling version.)"""
        queue, _ = parse_job_id(job_id)
        # The stream is opened before the job is read: whatever happens after the read is in it.
        stream = _EventStream(self, queue, None)

        def step(step: Any) -> Any:
            return stream.next(step.seconds) if type(step) is NextEvent else self._step(step)
        try:
            return drive(until_finished_on_events(lambda: self._get(job_id), job_id, timeout,
                                                  on_change), step)
        finally:
            stream.close()

    def events(self, queue: str, since: str | None = None, *,
               timeout: float | None = None) -> Iterator[Event]:
        """The events of a queue's log (GET /api/events?queue=): every state change, progress
        and cancel request, in order, each with its `id` (a position), after `since` (an
        event's id; None: from now). A dropped connection is resumed after the last event
        seen, with no gap and no repeat while the log holds it (else a `reset` event comes
        first). Ends once no event came for `timeout` seconds (None: never)."""
        check_queue_name(queue)
        # opened here, not at the first next(): "from now" is the time of this call
        stream = _EventStream(self, queue, None if since is None else check_event_id(since))
        return _follow(stream, timeout)

    def stats(self, queue: str) -> QueueStats:
        return self._drive(self._stats(queue))

    def queues(self) -> list[QueueStats]:
        return self._drive(self._queues())

    # -- working --------------------------------------------------------------------------

    def claim(self, queue: str, count: int = 1, *, wait_ms: int = 0,
              visibility_ms: int | None = None, worker_id: str | None = None) -> ClaimResult:
        """Up to `count` jobs, each with its `lease`; waits up to `wait_ms` for one to come.
        Empty (with `retry_in_ms` when throttled) when nothing is claimable."""
        return self._drive(self._claim(queue, count, wait_ms, visibility_ms, worker_id))

    def ack(self, job_id: str, lease: str, result: Any = None) -> str:
        """The job's state after: 'succeeded', or 'cancelled' when its cancel was requested
        while it ran (as `Queue.ack`)."""
        return self._drive(self._ack(job_id, lease, result))

    def nack(self, job_id: str, lease: str, error: str = "", *, retry: bool = True,
             delay_ms: int | None = None) -> NackResult:
        return self._drive(self._nack(job_id, lease, error, retry, delay_ms))

    def heartbeat(self, job_id: str, lease: str, visibility_ms: int | None = None) -> int:
        """Extends the lease; returns the new deadline (epoch ms)."""
        return self._drive(self._heartbeat(job_id, lease, visibility_ms))

    def progress(self, job_id: str, lease: str, fraction: float, info: Any = None) -> bool:
        """Records a running job's progress (0..1, and optional JSON `info`), fenced by its
        lease; returns whether its cancel was requested (stop, then: it ends cancelled). The
        caller limits how often it reports (`current_job().progress` writes at most every
        PROGRESS_INTERVAL_MS)."""
        return self._drive(self._progress(job_id, lease, fraction, info))

    def settle(self, queue: str, outcomes: Sequence[Outcome], claim: int = 0, *,
               visibility_ms: int | None = None, worker_id: str | None = None
               ) -> tuple[list[str], ClaimResult | None]:
        """`Queue.settle` over HTTP: records `outcomes` (ack, nack or release) and claims up to
        `claim` jobs in one request. A status per outcome ('ok' | 'not_found' |
        'lease_lost'), and the claim's result (None without a claim). Repeated after a lost
        reply only without a claim (a repeated ack or nack by the lease holder answers the
        same; a repeated claim would take more jobs)."""
        return self._drive(self._settle(queue, outcomes, claim, visibility_ms, worker_id))

    def heartbeat_many(self, queue: str, leases: Iterable[tuple[str, str]],
                       visibility_ms: int | None = None) -> list[Heartbeat]:
        """Extends many leases of `queue` in one request: (status, new deadline in epoch ms
        or -1, whether its cancel was requested) per (job_id, lease), as
        `Queue.heartbeat_many`."""
        return self._drive(self._heartbeat_many(queue, leases, visibility_ms))

    def reap(self, queue: str) -> tuple[int, int]:
        """Puts the jobs of `queue` whose lease expired back (or dead): (requeued, dead)."""
        return self._drive(self._reap(queue))

    # -- operating ------------------------------------------------------------------------

    def cancel(self, job_id: str) -> str:
        """Cancels a job as `Queue.cancel` does: returns 'cancelled' (it was ready or scheduled)
        or 'running' (its cancel is requested: it ends cancelled once its handler stops).
        Conflict when it is finished, JobNotFound when there is none."""
        return self._drive(self._cancel(job_id))

    def pause(self, queue: str) -> None:
        self._drive(self._pause(queue, True))

    def resume(self, queue: str) -> None:
        self._drive(self._pause(queue, False))

    def set_rate_limit(self, queue: str, rate: float, burst: int | None = None) -> None:
        self._drive(self._set_rate_limit(queue, rate, burst))

    def clear_rate_limit(self, queue: str) -> None:
        self._drive(self._clear_rate_limit(queue))

    def settings(self, queue: str) -> dict[str, float]:
        """Every setting of the queue (see Queue.configure), as it has it now."""
        return self._drive(self._settings(queue))

    def configure(self, queue: str, **settings: float) -> dict[str, float]:
        """Changes the settings given (Queue.configure's), all or none; every setting after."""
        return self._drive(self._configure(queue, settings))

    # -- fair queues (docs/fair-queues.md) ----------------------------------------------------

    def groups(self, queue: str, limit: int = DEFAULT_PAGE, cursor: str | None = None
               ) -> GroupsPage:
        """A page of the queue's groups, the largest backlog first (see Queue.groups)."""
        return self._drive(self._groups(queue, limit, cursor))

    def set_group_limits(self, queue: str, group: str, *, max_running: int | None = None,
                         rate: float | None = None, burst: int | None = None) -> None:
        """Gives `group` limits of its own (see Queue.set_group_limits)."""
        self._drive(self._group_limits(queue, group, {"max_running": max_running, "rate": rate,
                                                      "burst": burst}))

    def clear_group_limits(self, queue: str, group: str) -> None:
        self._drive(self._group_limits(queue, group, None))

    # -- periodic schedules (docs/periodic.md); each is its JSON view -----------------------

    def schedule(self, queue: str, schedule_id: str, payload: Any, **fields: Any
                 ) -> dict[str, Any]:
        """Saves a schedule (an upsert): fields as for `Queue.schedule` (cron or every_ms, tz,
        start_at and end_at as datetime or epoch ms, misfire, paused, the jobs' options)."""
        return self._drive(self._save_schedule(queue, schedule_id, payload, fields))

    def schedules(self, queue: str) -> list[dict[str, Any]]:
        return self._drive(self._schedules(queue))

    def get_schedule(self, queue: str, schedule_id: str) -> dict[str, Any]:
        return self._drive(self._get_schedule(queue, schedule_id))

    def unschedule(self, queue: str, schedule_id: str) -> None:
        self._drive(self._unschedule(queue, schedule_id))

    def pause_schedule(self, queue: str, schedule_id: str) -> dict[str, Any]:
        return self._drive(self._pause_schedule(queue, schedule_id, True))

    def resume_schedule(self, queue: str, schedule_id: str) -> dict[str, Any]:
        return self._drive(self._pause_schedule(queue, schedule_id, False))

    def trigger_schedule(self, queue: str, schedule_id: str) -> str:
        """Makes one job of the schedule now; its id. Not retried (each call makes a job)."""
        return self._drive(self._trigger_schedule(queue, schedule_id))

    def jobs(self, queue: str, state: str, limit: int = DEFAULT_PAGE, cursor: str | None = None,
             search: str | None = None) -> tuple[list[Job[Any]], str | None]:
        """A page of the jobs of one state (ready in claim order, scheduled by due time,
        running by lease deadline, succeeded and dead newest first) and the cursor of the next
        page; `search`: only jobs whose id, type or last error contains it (a page may then
        hold fewer than `limit`: follow the cursor until None)."""
        return self._drive(self._jobs(queue, state, limit, cursor, search))

    def workers(self) -> list[WorkerEntry]:
        """The live worker processes, by id (their registry entries: host, pid, queues,
        concurrency, busy, jobs held, started_at and last_seen_at in epoch ms)."""
        return self._drive(self._workers())

    def register_worker(self, entry: WorkerEntry, ttl_ms: int) -> WorkerEntry:
        """Writes or refreshes a worker's registry entry, alive for `ttl_ms` unless refreshed
        (what `relayq-worker --server` does); the entry as written (times from the server)."""
        return self._drive(self._register_worker(entry, ttl_ms))

    def remove_worker(self, worker_id: str) -> None:
        """Takes a worker out of the registry."""
        self._drive(self._remove_worker(worker_id))

    def dead(self, queue: str, limit: int = DEFAULT_PAGE, cursor: str | None = None
             ) -> tuple[list[Job[Any]], str | None]:
        """A page of dead jobs (most recent first) and the cursor of the next page."""
        return self._drive(self._dead_page(queue, limit, cursor))

    def requeue_dead_job(self, job_id: str) -> None:
        """Requeues one dead job, attempts reset (JobNotFound if it is not dead)."""
        self._drive(self._requeue_dead(parse_job_id(job_id)[0], job_id))

    def requeue_all_dead(self, queue: str) -> int:
        """Requeues every dead job of `queue`; answers how many."""
        return self._drive(self._requeue_dead(queue, None))

    def purge_dead_job(self, job_id: str) -> None:
        """Deletes one dead job for good (JobNotFound if it is not dead)."""
        self._drive(self._purge_dead(parse_job_id(job_id)[0], job_id))

    def purge_all_dead(self, queue: str) -> int:
        """Deletes every dead job of `queue` for good; answers how many."""
        return self._drive(self._purge_dead(queue, None))

    def requeue_dead(self, queue: str, job_id: str | None = None) -> int:
        """Deprecated: `requeue_dead_job(id)` for one job, `requeue_all_dead(queue)` for all."""
        deprecated("Client.requeue_dead", "requeue_dead_job(id) or requeue_all_dead(queue)")
        return self._drive(self._requeue_dead(queue, job_id))

    def purge_dead(self, queue: str, job_id: str | None = None) -> int:
        """Deprecated: `purge_dead_job(id)` for one job, `purge_all_dead(queue)` for all."""
        deprecated("Client.purge_dead", "purge_dead_job(id) or purge_all_dead(queue)")
        return self._drive(self._purge_dead(queue, job_id))

    # -- API keys -------------------------------------------------------------------------

    def create_key(self, name: str, scopes: Iterable[str]) -> dict[str, Any]:
        """A new key: {id, name, scopes, created_at, key}. The `key` is shown only here."""
        return self._drive(self._create_key(name, scopes))

    def list_keys(self) -> list[dict[str, Any]]:
        return self._drive(self._list_keys())

    def revoke_key(self, key_id: str) -> None:
        self._drive(self._revoke_key(key_id))


def _follow(stream: _EventStream, timeout: float | None) -> Iterator[Event]:
    try:
        while (event := stream.next(timeout)) is not None:
            yield event
    finally:
        stream.close()


class _EventStream:
    """One queue's event stream, reconnecting by itself after the last event id it saw.
    `next(timeout)` gives the next log event, or None when none came within `timeout` seconds
    (None: wait for one). The parsing is relayq.event_stream's, shared with relayq.aio."""

    def __init__(self, client: Client, queue: str, since: str | None) -> None:
        self.client = client
        self.path = stream_path(queue)
        self.parser = EventStreamParser(since)
        self.pending: deque[Event] = deque()
        self.response: Any = None
        self.reconnects = Backoff(client.backoff_s, MAX_RECONNECT_S)
        self._connect()  # at once: the stream's start is fixed from here on

    def _connect(self) -> None:
        headers = dict(self.client._http.headers, **stream_headers(self.parser.last_id))
        try:
            response = self.client._http.request(
                "GET", self.client.server + self.path, headers=headers, preload_content=False,
                retries=self.client._retry(True),
                timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT_S, read=STREAM_READ_S))
        except urllib3.exceptions.HTTPError as e:
            raise unavailable(self.client.server, _why(e)) from e
        if response.status != 200:
            data = response.read()
            response.release_conn()
            try:
                body = json.loads(data) if data.strip() else None
            except ValueError:
                body = None
            raise self.client._error(self.path, response.status, body)
        self.response = response
        self.parser.restart()
        self.reconnects.reset()

    def close(self) -> None:
        if self.response is not None:
            # closed first: the stream is never read to its end, so its connection must not go
            # back to the pool open (the next request would read the rest of the stream)
            self.response.close()
            self.response.release_conn()
            self.response = None

    def next(self, timeout: float | None) -> Event | None:
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        while not self.pending:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            try:
                if self.response is None:
                    self._connect()
                # stats come about every second, so a read returns about that often: the
                # deadline is looked at between reads
                chunk = self.response.read1(READ_CHUNK)
                if not chunk:
                    raise urllib3.exceptions.ProtocolError("stream ended")
                self.pending.extend(self.parser.feed(chunk))
            except (urllib3.exceptions.HTTPError, OSError, ServerUnavailable):
                self.close()  # resume after the last event seen
                time.sleep(self.reconnects.next_delay() if left is None
                           else min(self.reconnects.next_delay(), max(0.0, left)))
        return self.pending.popleft()
