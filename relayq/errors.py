"""Every error relayq raises, each with the stable `code` that the HTTP API answers.

The Lua scripts answer a status string first; `STATUS_ERRORS` is the one table that maps those
statuses to exceptions, and the API maps each exception's `code` and `http_status` to its reply.
Redis connection failures are wrapped once, at the boundary, as `RedisUnavailable`.
"""

from __future__ import annotations


class RelayqError(Exception):
    """Base of all relayq errors. `code` is stable and machine-readable."""

    code = "error"
    http_status = 500

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.code)
        self.message = message or self.code


class InvalidArgument(RelayqError):
    """A value was out of range, of the wrong type or missing."""

    code = "invalid_argument"
    http_status = 400


class InvalidQueueName(InvalidArgument):
    code = "invalid_queue_name"


class InvalidJobId(InvalidArgument):
    code = "invalid_job_id"


class InvalidPayload(InvalidArgument):
    """A payload or result that is not JSON (or cannot be encoded as JSON)."""

    code = "invalid_payload"


class PayloadTooLarge(InvalidArgument):
    code = "payload_too_large"
    http_status = 413


class NotFound(RelayqError):
    """No such job, API key or route."""

    code = "not_found"
    http_status = 404


class JobNotFound(NotFound):
    pass


class LeaseLost(RelayqError):
    """The caller no longer holds the job's lease: it expired and was reaped, or the job was
    claimed again. The caller must not assume its result was recorded."""

    code = "lease_lost"
    http_status = 409


class Conflict(RelayqError):
    """The job is in a state that does not allow the operation (e.g. cancelling a running job)."""

    code = "conflict"
    http_status = 409


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
    http_status = 401


class Forbidden(RelayqError):
    """A valid API key without the scope the operation needs."""

    code = "forbidden"
    http_status = 403


class TooManyRequests(RelayqError):
    """Too many failed authentications from one client address: refused, key unchecked,
    until `retry_after_s` has passed (relayq.api.throttle)."""

    code = "too_many_requests"
    http_status = 429

    def __init__(self, message: str = "", retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class MethodNotAllowed(RelayqError):
    code = "method_not_allowed"
    http_status = 405


class ServerBusy(RelayqError):
    """The server has no room for another long-running request (long poll or event stream)."""

    code = "server_busy"
    http_status = 503


class ServerUnavailable(RelayqError):
    """The HTTP client could not reach the relayq server (after its retries)."""

    code = "server_unavailable"
    http_status = 503


class RedisUnavailable(RelayqError):
    """Redis could not be reached, or the connection broke mid-call."""

    code = "redis_unavailable"
    http_status = 503


class NotReplicated(RelayqError):
    """A write reached the primary, but fewer replicas than asked confirmed it in time (Redis
    `WAIT`): a failover now could lose it. `result` is what the call would have returned; the
    caller may retry (an enqueue safely so with an idempotency key) or accept the risk."""

    code = "not_replicated"
    http_status = 503

    def __init__(self, message: str, *, wanted: int, acked: int, result: object = None) -> None:
        super().__init__(message)
        self.wanted = wanted
        self.acked = acked
        self.result = result


# Script status -> exception class. `ok`-like statuses are handled by the callers.
STATUS_ERRORS: dict[str, type[RelayqError]] = {
    "invalid_argument": InvalidArgument,
    "not_found": JobNotFound,
    "lease_lost": LeaseLost,
    "conflict": Conflict,
}


# HTTP error code -> exception class: what the HTTP client raises for an error reply.
HTTP_ERRORS: dict[str, type[RelayqError]] = {cls.code: cls for cls in (
    InvalidArgument, InvalidQueueName, InvalidJobId, InvalidPayload, InvalidJson,
    PayloadTooLarge, NotFound, LeaseLost, Conflict, Unauthorized, Forbidden, MethodNotAllowed,
    TooManyRequests, ServerBusy, ServerUnavailable, RedisUnavailable, LastAdminKey,
)}


def error_for_status(status: str, message: str = "") -> RelayqError:
    """The exception for a script's refusal status."""
    cls = STATUS_ERRORS.get(status)
    if cls is None:
        return RelayqError(f"unexpected script status {status!r} {message}".strip())
    if cls is InvalidArgument:
        if "over the limit" in message:
            return PayloadTooLarge(message)
        if "not valid JSON" in message:
            return InvalidPayload(message)
    return cls(message)
