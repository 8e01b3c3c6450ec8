"""Dead letters of a queue: list (paged), requeue one or all, purge one or all."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from ..limits import DEFAULT_PAGE, MAX_PAGE
from .body import check_query, query_int
from .security import requires
from .services import services

bp = Blueprint("dead", __name__, url_prefix="/api/queues/<queue>/dead")


@bp.get("")
@requires("queues:admin")
def list_dead(queue: str) -> Any:
    q = services().queue(queue)
    check_query(("limit", "cursor"))
    jobs, next_cursor = q.dead(query_int("limit", 1, MAX_PAGE, DEFAULT_PAGE),
                               request.args.get("cursor"))
    return {"jobs": [job.to_dict() for job in jobs], "next_cursor": next_cursor}


@bp.post("/<job_id>/requeue")
@requires("queues:admin")
def requeue_one(queue: str, job_id: str) -> Any:
    services().queue(queue).requeue_dead_job(job_id)
    return {"requeued": 1}


@bp.post("/requeue")
@requires("queues:admin")
def requeue_all(queue: str) -> Any:
    return {"requeued": services().queue(queue).requeue_all_dead()}


@bp.delete("/<job_id>")
@requires("queues:admin")
def purge_one(queue: str, job_id: str) -> Any:
    services().queue(queue).purge_dead_job(job_id)
    return {"purged": 1}


@bp.delete("")
@requires("queues:admin")
def purge_all(queue: str) -> Any:
    return {"purged": services().queue(queue).purge_all_dead()}
