"""The HTTP side of relayq's errors: the one table from an error code to the HTTP status it is
answered with, and the headers that go with it (`Retry-After`, `WWW-Authenticate`).

The core's errors carry only their code (relayq/errors.py); statuses are this layer's business.
A code missing here is a 500, so `tests/api/test_statuses.py` checks that every code has one.
"""

from __future__ import annotations

from ..errors import RelayqError, TooManyRequests

STATUSES: dict[str, int] = {
    "invalid_argument": 400,
    "invalid_queue_name": 400,
    "invalid_job_id": 400,
    "invalid_payload": 400,
    "invalid_json": 400,
    "invalid_event_id": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "lease_lost": 409,
    "conflict": 409,
    "last_admin_key": 409,
    "cancelled": 409,  # raised in handlers, never over HTTP; a job cancelled is a conflict
    "precondition_failed": 412,  # relayq.export's
    "payload_too_large": 413,
    "invalid_manifest": 422,  # relayq.export's
    "invalid_snapshot": 422,  # relayq.export's
    "too_many_requests": 429,
    "error": 500,
    "redis_unavailable": 503,
    "redis_busy": 503,
    "not_replicated": 503,
    "server_busy": 503,
    "server_unavailable": 503,
    "store_unavailable": 503,  # relayq.export's
}
# How long a 503 asks the client to wait: Redis is away or busy, or the server is full, for a
# moment; a client retries a safe call then (relayq.Client honours it).
RETRY_AFTER_S = 1


def status_of(error: RelayqError) -> int:
    return STATUSES.get(error.code, 500)


def headers_of(error: RelayqError) -> dict[str, str]:
    """The headers an error reply carries besides its body."""
    status = status_of(error)
    if status == 401:
        return {"WWW-Authenticate": 'Bearer realm="relayq"'}
    if isinstance(error, TooManyRequests):
        return {"Retry-After": str(error.retry_after_s)}
    if status == 503:
        return {"Retry-After": str(RETRY_AFTER_S)}
    return {}
