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
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any
from urllib.parse import quote

import urllib3

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
from .job import Attempt, Job, parse_job_id
from .keys import check_queue_name
from .limits import BATCH_LIMIT, DEFAULT_PAGE
from .options import JobOptions, check_run_at, is_digits
from .results import ClaimResult, EnqueueResult, NackResult, NewJob, QueueStats
from .rfc3339 import format_ms, parse_ms, to_epoch_ms
from .schedules import check_schedule_id
from .worker_registry import WorkerEntry

DEFAULT_SERVER = "http://localhost:8080"
RETRY_STATUSES = (500, 502, 503, 504)
FINAL_STATES = ("succeeded", "dead", "cancelled")
MAX_POLL_S = 1.0  # the longest interval of `wait` between two reads of a job
# replies without a relayq error body (from a proxy, or the HTTP server itself): by status
NON_JSON_ERRORS: dict[int, type[RelayqError]] = {
    401: Unauthorized, 403: Forbidden, 404: NotFound, 413: PayloadTooLarge}
TIME_FIELDS = ("created_at", "run_at", "started_at", "finished_at", "lease_deadline")


def default_server() -> str:
    """The server when none is named: $RELAYQ_SERVER, else http://localhost:8080."""
    return os.environ.get("RELAYQ_SERVER") or DEFAULT_SERVER


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
                      view["totals"], view["latency_ms"])


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


class Client:
    """A client of one relayq server. `server` defaults to $RELAYQ_SERVER or
    http://localhost:8080, `api_key` to $RELAYQ_API_KEY. `timeout` is each call's read timeout
    in seconds (long polls add their wait); `retries` bounds the retries of a safe call."""

    def __init__(self, server: str | None = None, api_key: str | None = None, *,
                 timeout: float = 30.0, retries: int = 3, backoff_s: float = 0.1,
                 pool_size: int = 10) -> None:
        self.server = (server or default_server()).rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("RELAYQ_API_KEY")
        self.timeout = timeout
        self.retries = retries
        self.backoff_s = backoff_s
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "User-Agent": "relayq-client"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        self._http = urllib3.PoolManager(maxsize=pool_size, headers=headers)

    def __repr__(self) -> str:
        return f"Client({self.server!r})"

    def close(self) -> None:
        self._http.clear()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------------

    def _retry(self, repeatable: bool) -> urllib3.Retry:
        again = self.retries if repeatable else 0
        return urllib3.Retry(
            total=self.retries, connect=self.retries, read=again, status=again, other=0,
            redirect=0, allowed_methods=None, status_forcelist=RETRY_STATUSES,
            backoff_factor=self.backoff_s, backoff_max=5.0, backoff_jitter=self.backoff_s,
            respect_retry_after_header=True, raise_on_status=False, raise_on_redirect=False)

    def _call(self, method: str, path: str, body: Any = None, *, repeatable: bool,
              fields: dict[str, Any] | None = None, extra_wait_s: float = 0.0
              ) -> tuple[int, Any, Any]:
        """(status, decoded JSON or None, headers) of a 2xx reply; raises for anything else."""
        try:
            response = self._http.request(
                method, self.server + path, fields=fields,
                body=None if body is None else dumps(body),
                retries=self._retry(repeatable),
                timeout=urllib3.Timeout(connect=5.0, read=self.timeout + extra_wait_s))
        except urllib3.exceptions.HTTPError as e:
            raise ServerUnavailable(
                f"relayq-server at {self.server} is not answering ({_why(e)}): is it running? "
                "set $RELAYQ_SERVER to use another") from e
        try:
            data = json.loads(response.data) if response.data.strip() else None
        except ValueError:  # not from relayq (a proxy's page, ...)
            data = None
        if 200 <= response.status < 300:
            return response.status, data, response.headers
        raise self._error(path, response.status, data)

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

    def _data(self, method: str, path: str, body: Any = None, *, repeatable: bool,
              fields: dict[str, Any] | None = None) -> Any:
        return self._call(method, path, body, repeatable=repeatable, fields=fields)[1]

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

    # -- producing ------------------------------------------------------------------------

    def enqueue(self, queue: str, payload: Any, **options: Any) -> EnqueueResult:
        """Adds one job. Options as for `Queue.enqueue` (type, priority, delay_ms or run_at,
        max_attempts, idempotency_key, timeout_ms, backoff_base_ms, backoff_cap_ms)."""
        job = NewJob(payload, JobOptions(**options))
        data = self._data("POST", self._queue(queue) + "/jobs", _job_body(job),
                          repeatable=job.options.idempotency_key is not None)
        return EnqueueResult(data["id"], data["state"], data["duplicate"])

    def enqueue_many(self, queue: str, jobs: Iterable[NewJob[Any] | Any]) -> list[EnqueueResult]:
        """Adds many jobs, in requests of up to 1000 (each all or nothing)."""
        items = [j if isinstance(j, NewJob) else NewJob(j) for j in jobs]
        results = []
        for start in range(0, len(items), BATCH_LIMIT):
            chunk = items[start:start + BATCH_LIMIT]
            data = self._data("POST", self._queue(queue) + "/jobs/batch",
                              {"jobs": [_job_body(j) for j in chunk]},
                              repeatable=all(j.options.idempotency_key for j in chunk))
            results += [EnqueueResult(r["id"], r["state"], r["duplicate"]) for r in data["jobs"]]
        return results

    # -- reading --------------------------------------------------------------------------

    def get(self, job_id: str) -> Job[Any]:
        return job_from_view(self._data("GET", self._job(job_id), repeatable=True))

    def wait(self, job_id: str, timeout: float = 30.0, *, poll_s: float = 0.05,
             on_change: Callable[[Job[Any]], None] | None = None) -> Job[Any]:
        """The job once it is finished (succeeded, dead or cancelled); TimeoutError when it is
        not within `timeout` seconds. Asks with a growing interval (from `poll_s` to 1 s);
        `on_change(job)` hears of each state it sees (e.g. to show progress)."""
        deadline = time.monotonic() + timeout
        polls = Backoff(poll_s, MAX_POLL_S, jitter=False)
        seen = None
        while True:
            job = self.get(job_id)
            if on_change is not None and job.state != seen:
                seen = job.state
                on_change(job)
            if job.state in FINAL_STATES:
                return job
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"job {job_id} is still {job.state} after {timeout:g}s")
            time.sleep(min(polls.next_delay(), left))

    def stats(self, queue: str) -> QueueStats:
        return stats_from_view(self._data("GET", self._queue(queue), repeatable=True))

    def queues(self) -> list[QueueStats]:
        data = self._data("GET", "/api/queues", repeatable=True)
        return [stats_from_view(v) for v in data["queues"]]

    # -- working --------------------------------------------------------------------------

    def claim(self, queue: str, count: int = 1, *, wait_ms: int = 0,
              visibility_ms: int | None = None, worker_id: str | None = None) -> ClaimResult:
        """Up to `count` jobs, each with its `lease`; waits up to `wait_ms` for one to come.
        Empty (with `retry_in_ms` when throttled) when nothing is claimable."""
        body: dict[str, Any] = {"count": count, "wait_ms": wait_ms}
        if visibility_ms is not None:
            body["visibility_ms"] = visibility_ms
        if worker_id is not None:
            body["worker_id"] = worker_id
        status, data, headers = self._call(
            "POST", self._queue(queue) + "/claim", body, repeatable=False,
            extra_wait_s=wait_ms / 1000 if isinstance(wait_ms, int) else 0.0)
        if status == 204:
            retry_after = headers.get("Retry-After")
            return ClaimResult((), "empty" if retry_after is None else "throttled",
                               int(retry_after) * 1000 if is_digits(retry_after) else None)
        return ClaimResult(job_from_view(v) for v in data["jobs"])

    def ack(self, job_id: str, lease: str, result: Any = None) -> None:
        self._data("POST", self._job(job_id) + "/ack", {"lease": lease, "result": result},
                   repeatable=True)

    def nack(self, job_id: str, lease: str, error: str = "", *, retry: bool = True,
             delay_ms: int | None = None) -> NackResult:
        body: dict[str, Any] = {"lease": lease, "error": error, "retry": retry}
        if delay_ms is not None:
            body["delay_ms"] = delay_ms
        data = self._data("POST", self._job(job_id) + "/nack", body, repeatable=True)
        return NackResult(data["state"], data["attempts"], _ms_or_none(data["run_at"]))

    def heartbeat(self, job_id: str, lease: str, visibility_ms: int | None = None) -> int:
        """Extends the lease; returns the new deadline (epoch ms)."""
        body: dict[str, Any] = {"lease": lease}
        if visibility_ms is not None:
            body["visibility_ms"] = visibility_ms
        data = self._data("POST", self._job(job_id) + "/heartbeat", body, repeatable=True)
        return _ms(data["lease_deadline"])

    # -- operating ------------------------------------------------------------------------

    def cancel(self, job_id: str) -> None:
        """Cancels a ready or scheduled job (Conflict when running or finished)."""
        self._data("DELETE", self._job(job_id), repeatable=False)

    def pause(self, queue: str) -> None:
        self._data("POST", self._queue(queue) + "/pause", repeatable=True)

    def resume(self, queue: str) -> None:
        self._data("POST", self._queue(queue) + "/resume", repeatable=True)

    def set_rate_limit(self, queue: str, rate: float, burst: int | None = None) -> None:
        body: dict[str, Any] = {"rate": rate}
        if burst is not None:
            body["burst"] = burst
        self._data("PUT", self._queue(queue) + "/rate-limit", body, repeatable=True)

    def clear_rate_limit(self, queue: str) -> None:
        self._data("DELETE", self._queue(queue) + "/rate-limit", repeatable=True)

    # -- periodic schedules (docs/periodic.md); each is its JSON view -----------------------

    def _schedule(self, queue: str, schedule_id: str) -> str:
        return f"{self._queue(queue)}/schedules/{check_schedule_id(schedule_id)}"

    def schedule(self, queue: str, schedule_id: str, payload: Any, **fields: Any
                 ) -> dict[str, Any]:
        """Saves a schedule (an upsert): fields as for `Queue.schedule` (cron or every_ms, tz,
        start_at and end_at as datetime or epoch ms, misfire, paused, the jobs' options)."""
        body: dict[str, Any] = {"payload": payload}
        for name, value in fields.items():
            if value is None:
                continue
            if name in ("start_at", "end_at") and not isinstance(value, str):
                value = format_ms(to_epoch_ms(value) if isinstance(value, datetime) else value)
            body[name] = value
        return self._data("PUT", self._schedule(queue, schedule_id), body, repeatable=True)

    def schedules(self, queue: str) -> list[dict[str, Any]]:
        return self._data("GET", self._queue(queue) + "/schedules", repeatable=True)["schedules"]

    def get_schedule(self, queue: str, schedule_id: str) -> dict[str, Any]:
        return self._data("GET", self._schedule(queue, schedule_id), repeatable=True)

    def unschedule(self, queue: str, schedule_id: str) -> None:
        self._data("DELETE", self._schedule(queue, schedule_id), repeatable=False)

    def pause_schedule(self, queue: str, schedule_id: str) -> dict[str, Any]:
        return self._data("POST", self._schedule(queue, schedule_id) + "/pause",
                          repeatable=True)

    def resume_schedule(self, queue: str, schedule_id: str) -> dict[str, Any]:
        return self._data("POST", self._schedule(queue, schedule_id) + "/resume",
                          repeatable=True)

    def trigger_schedule(self, queue: str, schedule_id: str) -> str:
        """Makes one job of the schedule now; its id. Not retried (each call makes a job)."""
        return self._data("POST", self._schedule(queue, schedule_id) + "/trigger",
                          repeatable=False)["job_id"]

    def jobs(self, queue: str, state: str, limit: int = DEFAULT_PAGE, cursor: str | None = None,
             search: str | None = None) -> tuple[list[Job[Any]], str | None]:
        """A page of the jobs of one state (ready in claim order, scheduled by due time,
        running by lease deadline, succeeded and dead newest first) and the cursor of the next
        page; `search`: only jobs whose id, type or last error contains it (a page may then
        hold fewer than `limit`: follow the cursor until None)."""
        fields: dict[str, Any] = {"state": state, "limit": str(limit)}
        if cursor is not None:
            fields["cursor"] = cursor
        if search is not None:
            fields["q"] = search
        data = self._data("GET", self._queue(queue) + "/jobs", repeatable=True, fields=fields)
        return [job_from_view(v) for v in data["jobs"]], data["next_cursor"]

    def workers(self) -> list[WorkerEntry]:
        """The live worker processes, by id (their registry entries: host, pid, queues,
        concurrency, busy, jobs held, started_at and last_seen_at in epoch ms)."""
        views = self._data("GET", "/api/workers", repeatable=True)["workers"]
        return [WorkerEntry(**{**v, "started_at": _ms(v["started_at"]),
                               "last_seen_at": _ms(v["last_seen_at"])}) for v in views]

    def dead(self, queue: str, limit: int = DEFAULT_PAGE, cursor: str | None = None
             ) -> tuple[list[Job[Any]], str | None]:
        """A page of dead jobs (most recent first) and the cursor of the next page."""
        fields: dict[str, Any] = {"limit": str(limit)}
        if cursor is not None:
            fields["cursor"] = cursor
        data = self._data("GET", self._queue(queue) + "/dead", repeatable=True, fields=fields)
        return [job_from_view(v) for v in data["jobs"]], data["next_cursor"]

    def requeue_dead_job(self, job_id: str) -> None:
        """Requeues one dead job, attempts reset (JobNotFound if it is not dead)."""
        self._data("POST", self._dead(parse_job_id(job_id)[0], job_id) + "/requeue",
                   repeatable=False)

    def requeue_all_dead(self, queue: str) -> int:
        """Requeues every dead job of `queue`; answers how many."""
        return self._data("POST", self._dead(queue, None) + "/requeue",
                          repeatable=False)["requeued"]

    def purge_dead_job(self, job_id: str) -> None:
        """Deletes one dead job for good (JobNotFound if it is not dead)."""
        self._data("DELETE", self._dead(parse_job_id(job_id)[0], job_id), repeatable=False)

    def purge_all_dead(self, queue: str) -> int:
        """Deletes every dead job of `queue` for good; answers how many."""
        return self._data("DELETE", self._dead(queue, None), repeatable=False)["purged"]

    def requeue_dead(self, queue: str, job_id: str | None = None) -> int:
        """Deprecated: `requeue_dead_job(id)` for one job, `requeue_all_dead(queue)` for all."""
        deprecated("Client.requeue_dead", "requeue_dead_job(id) or requeue_all_dead(queue)")
        return self._data("POST", self._dead(queue, job_id) + "/requeue",
                          repeatable=False)["requeued"]

    def purge_dead(self, queue: str, job_id: str | None = None) -> int:
        """Deprecated: `purge_dead_job(id)` for one job, `purge_all_dead(queue)` for all."""
        deprecated("Client.purge_dead", "purge_dead_job(id) or purge_all_dead(queue)")
        return self._data("DELETE", self._dead(queue, job_id), repeatable=False)["purged"]

    # -- API keys -------------------------------------------------------------------------

    def create_key(self, name: str, scopes: Iterable[str]) -> dict[str, Any]:
        """A new key: {id, name, scopes, created_at, key}. The `key` is shown only here."""
        if isinstance(scopes, str):
            raise InvalidArgument("scopes must be a list of scope names")
        return self._data("POST", "/api/keys", {"name": name, "scopes": list(scopes)},
                          repeatable=False)

    def list_keys(self) -> list[dict[str, Any]]:
        return self._data("GET", "/api/keys", repeatable=True)["keys"]

    def revoke_key(self, key_id: str) -> None:
        self._data("DELETE", f"/api/keys/{quote(key_id, safe='')}", repeatable=False)
