"""Workers: the live worker processes, from the workers registry (relayq.worker_registry), and
the entry of a worker that reaches relayq over HTTP alone (`relayq-worker --server`), which
keeps it alive through PUT and deletes it at a graceful stop."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from ..errors import InvalidArgument
from ..job import parse_job_id
from ..keys import check_queue_name
from ..limits import (
    MAX_HOST_BYTES,
    MAX_HTTP_OUTCOMES,
    MAX_VISIBILITY_MS,
    MAX_WORKER_ID_BYTES,
    WORKER_TTL_MS,
)
from ..options import check_int, check_str
from ..rfc3339 import parse_ms
from ..worker_registry import WorkerEntry, list_workers, remove_entry, write_entry
from .body import json_body, optional, optional_int, required_str
from .security import requires
from .services import services

bp = Blueprint("workers", __name__, url_prefix="/api")

ENTRY_FIELDS = ("host", "pid", "queues", "concurrency", "busy", "jobs", "started_at", "ttl_ms")


@bp.get("/workers")
@requires("jobs:read")
def list_all() -> Any:
    return {"workers": list_workers(services().redis)}


def _strings(body: dict[str, Any], name: str, check: Any) -> list[str]:
    items = optional(body, name, list, [])
    if len(items) > MAX_HTTP_OUTCOMES:
        raise InvalidArgument(f"{name} must hold at most {MAX_HTTP_OUTCOMES} items")
    for item in items:
        if not isinstance(item, str):
            raise InvalidArgument(f"{name} must be a list of strings")
        check(item)
    return items


@bp.put("/workers/<worker_id>")
@requires("jobs:work")
def register(worker_id: str) -> Any:
    """Writes or refreshes the entry of a worker, alive for `ttl_ms` unless refreshed."""
    check_str(worker_id, "worker id", MAX_WORKER_ID_BYTES)
    body = json_body(ENTRY_FIELDS, ("host", "pid", "queues", "concurrency"))
    entry = WorkerEntry(
        worker_id, required_str(body, "host", MAX_HOST_BYTES),
        check_int(optional(body, "pid", int), "pid", 0, 2**31),
        _strings(body, "queues", check_queue_name),
        check_int(optional(body, "concurrency", int), "concurrency", 1, 2**31),
        optional_int(body, "busy", 0, 2**31, 0),
        _strings(body, "jobs", parse_job_id),
        parse_ms(body["started_at"], "started_at") if "started_at" in body else 0)
    write_entry(services().redis, entry,
                optional_int(body, "ttl_ms", 1, MAX_VISIBILITY_MS, WORKER_TTL_MS))
    return entry.to_dict()


@bp.delete("/workers/<worker_id>")
@requires("jobs:work")
def remove(worker_id: str) -> Any:
    """Takes a worker out of the registry (it stopped)."""
    check_str(worker_id, "worker id", MAX_WORKER_ID_BYTES)
    remove_entry(services().redis, worker_id)
    return {"id": worker_id, "removed": True}
