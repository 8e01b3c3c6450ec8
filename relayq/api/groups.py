"""Fair queues: a queue's groups (paged, the largest backlog first, with their ready and running
counts, limits and state) and one group's own limits (docs/fair-queues.md). The queue-wide
group settings are `Queue.configure`'s (the CLI's `relayq configure`)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from ..errors import InvalidArgument
from ..limits import DEFAULT_PAGE, MAX_GROUPS_PAGE
from ..options import check_group
from .body import check_query, json_body, optional, query_int
from .security import requires
from .services import services

bp = Blueprint("groups", __name__, url_prefix="/api")

LIMIT_FIELDS = ("max_running", "rate", "burst")


@bp.get("/queues/<queue>/groups")
@requires("jobs:read")
def list_groups(queue: str) -> Any:
    check_query(("limit", "cursor"))
    limit = query_int("limit", 1, MAX_GROUPS_PAGE, DEFAULT_PAGE)
    return services().queue(queue).groups(limit, request.args.get("cursor")).to_dict()


@bp.put("/queues/<queue>/groups/<group>/limits")
@requires("queues:admin")
def set_limits(queue: str, group: str) -> Any:
    q = services().queue(queue)
    check_group(group)
    body = json_body(LIMIT_FIELDS)
    limits = {
        name: optional(body, name, (int, float) if name == "rate" else int) for name in LIMIT_FIELDS
    }
    for name in LIMIT_FIELDS:
        if name in body and body[name] is None:
            raise InvalidArgument(f"{name} must not be null (leave it out instead)")
    q.set_group_limits(group, **limits)
    return {"queue": queue, "group": group, "limits": limits}


@bp.delete("/queues/<queue>/groups/<group>/limits")
@requires("queues:admin")
def clear_limits(queue: str, group: str) -> Any:
    q = services().queue(queue)
    q.clear_group_limits(check_group(group))
    return {"queue": queue, "group": group, "limits": None}
