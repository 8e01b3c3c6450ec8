"""Every error relayq raises, each with a stable, machine-readable `code`; and `ERRORS`, the one
table from a code back to its exception class.

The core knows codes only. The Lua scripts answer a status string first, and a refusal's status
is one of these codes (`payload_too_large`, `invalid_payload`, ...): `error_for` turns it into
its exception, and the HTTP SDK does the same with the code of an error reply. The HTTP status
and headers of each code are the HTTP layer's business (relayq/api/statuses.py). Redis failures
are wrapped once, at the boundary (relayq/connection.py: `redis_errors`), as `RedisUnavailable`,
or `RedisBusy` when Redis is up but refuses commands for a state it is in.
"""

from __future__ import annotations


class RelayqError(Exception):
    """Base of all relayq errors. `code` is stable and machine-readable."""

    code = "error"

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.code)
        self.message = message or self.code


class InvalidArgument(RelayqError):
    """A value was out of range, of the wrong type or missing."""

    code = "invalid_argument"


class InvalidQueueName(InvalidArgument):
    code = "invalid_queue_name"


class InvalidJobId(InvalidArgument):
    code = "invalid_job_id"


class InvalidPayload(InvalidArgument):
    """A payload or result that is not JSON (or cannot be encoded as JSON)."""

    code = "invalid_payload"


class PayloadTooLarge(InvalidArgument):
    code = "payload_too_large"


class InvalidEventId(InvalidArgument):
    """A position in an event log (`since`, Last-Event-ID) that is not `<ms>-<seq>`."""

    code = "invalid_event_id"


class Cancelled(RelayqError):  # noqa: N818 - reads as `raise Cancelled`, like asyncio's
    """The running job's cancel was requested: `current_job().check_cancelled()` raises it in a
    handler; the job then ends `cancelled`, never retried (whatever the handler raises)."""

    code = "cancelled"


class NotFound(RelayqError):
    """No such job, API key or route."""

    code = "not_found"


class JobNotFound(NotFound):
    pass


class ScheduleNotFound(NotFound):
    """No periodic schedule of that id on the queue."""


class LeaseLost(RelayqError):
    """The caller no longer holds the job's lease: it expired and was reaped, or the job was
    claimed again. The caller must not assume its result was recorded."""

    code = "lease_lost"


class Conflict(RelayqError):
    """The job is in a state that does not allow the operation (e.g. cancelling a running job)."""

    code = "conflict"


class LastAdminKey(Conflict):
    """Revoking this key would leave no key with the `admin` scope (relayq.auth): refused, so
    that no request can lock every administrator out."""

    code = "last_admin_key"


class InvalidJson(InvalidArgument):
    """A request body that is not JSON."""

    code = "invalid_json"


class Unauthorized(RelayqError):
    """No API key, a malformed Authorization header, or a key that does not exist."""

    code = "unauthorized"


class Forbidden(RelayqError):
    """A valid API key without the scope the operation needs."""

    code = "forbidden"


class TooManyRequests(RelayqError):
    """Too many failed authentications from one client address: refused, key unchecked,
    until `retry_after_s` has passed (relayq.throttle)."""

    code = "too_many_requests"

    def __init__(self, message: str = "", retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class MethodNotAllowed(RelayqError):
    code = "method_not_allowed"


class ServerBusy(RelayqError):
    """The server has no room for another long-running request (long poll or event stream)."""

    code = "server_busy"


class ServerUnavailable(RelayqError):
    """The HTTP client could not reach the relayq server (after its retries)."""

    code = "server_unavailable"


class RedisUnavailable(RelayqError):
    """Redis could not be reached, or the connection broke mid-call."""

    code = "redis_unavailable"


class RedisBusy(RedisUnavailable):
    """Redis is up but refused the command for a state it is in: out of memory under
    `noeviction` (OOM), a read-only replica (READONLY), loading its data set (LOADING), running a
    long script (BUSY), a replica whose primary is down (MASTERDOWN) or a primary short of good
    replicas (NOREPLICAS). The command did not run; the state passes, so try again later."""

    code = "redis_busy"


class NotReplicated(RelayqError):
    """A write reached the primary, but fewer replicas than asked confirmed it in time (Redis
    `WAIT`): a failover now could lose it. `result` is what the call would have returned; the
    caller may retry (an enqueue safely so with an idempotency key) or accept the risk.
    `wanted` and `acked` are 0 when not known (an error rebuilt from its code)."""

    code = "not_replicated"

    def __init__(self, message: str = "", *, wanted: int = 0, acked: int = 0,
                 result: object = None) -> None:
        super().__init__(message)
        self.wanted = wanted
        self.acked = acked
        self.result = result


# The failures that pass: the same call may succeed later (Redis away or busy, a relayq server
# away or with no room). The worker's loops ride them out and try again with backoff, whether
# they reach their queues over Redis or over HTTP.
OUTAGES: tuple[type[RelayqError], ...] = (RedisUnavailable, ServerUnavailable, ServerBusy)


def outage_event(error: BaseException) -> str:
    """The log event of an outage: which side was away."""
    return "redis.unavailable" if isinstance(error, RedisUnavailable) else "server.unavailable"


def _codes() -> dict[str, type[RelayqError]]:
    """Every class of this module that names a code of its own, by that code (a subclass that
    only refines its parent, such as JobNotFound, shares the parent's code)."""
    classes = [v for v in globals().values() if isinstance(v, type) and issubclass(v, RelayqError)]
    return {cls.code: cls for cls in classes if "code" in vars(cls)}


# Error code (and script status) -> exception class: the one table.
ERRORS: dict[str, type[RelayqError]] = _codes()


def error_for(code: str, message: str = "", *, about_job: bool = False) -> RelayqError:
    """The exception for an error code: a script's refusal status, or the code of an HTTP error
    reply. `about_job`: a `not_found` is about a job (every script's is), so JobNotFound. A code
    this version does not know (a newer server) is a plain RelayqError that keeps it."""
    cls = ERRORS.get(code)
    if cls is None:
        error = RelayqError(message or f"error {code!r}")
        error.code = code
        return error
    if cls is NotFound and about_job:
        cls = JobNotFound
    return cls(message)
