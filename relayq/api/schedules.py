"""Periodic schedules of a queue: save (PUT, an upsert), list, read, delete, pause, resume and
trigger. Every view calls the one `Queue` operation of its verb (relayq/queue.py); checks and
limits are relayq/schedules.py's, so a bad definition is a 400 with its code and nothing is
written."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from ..errors import InvalidArgument
from ..rfc3339 import parse_ms
from ..schedules import TEMPLATE_OPTIONS
from .body import json_body
from .security import requires
from .services import services

bp = Blueprint("schedules", __name__, url_prefix="/api/queues/<queue>/schedules")

FIELDS = ("payload", "cron", "every_ms", "tz", "start_at", "end_at", "misfire", "paused",
          *TEMPLATE_OPTIONS)


@bp.put("/<schedule_id>")
@requires("queues:admin")
def save(queue: str, schedule_id: str) -> Any:
    """201 when the schedule is new, 200 when it existed (changed or not)."""
    body = json_body(FIELDS, ("payload",))
    for name, value in body.items():
        if value is None and name != "payload":
            raise InvalidArgument(f"{name} must not be null (leave it out instead)")
    for name in ("start_at", "end_at"):
        if name in body:
            body[name] = parse_ms(body[name], name)
    payload = body.pop("payload")
    saved = services().queue(queue).schedule(schedule_id, payload, **body)
    return saved.to_dict(), 201 if saved.outcome == "created" else 200


@bp.get("")
@requires("jobs:read")
def list_all(queue: str) -> Any:
    return {"schedules": [s.to_dict() for s in services().queue(queue).schedules()]}


@bp.get("/<schedule_id>")
@requires("jobs:read")
def get(queue: str, schedule_id: str) -> Any:
    return services().queue(queue).get_schedule(schedule_id).to_dict()


@bp.delete("/<schedule_id>")
@requires("queues:admin")
def delete(queue: str, schedule_id: str) -> Any:
    services().queue(queue).unschedule(schedule_id)
    return {"queue": queue, "id": schedule_id, "deleted": True}


@bp.post("/<schedule_id>/pause")
@requires("queues:admin")
def pause(queue: str, schedule_id: str) -> Any:
    return services().queue(queue).pause_schedule(schedule_id).to_dict()


@bp.post("/<schedule_id>/resume")
@requires("queues:admin")
def resume(queue: str, schedule_id: str) -> Any:
    return services().queue(queue).resume_schedule(schedule_id).to_dict()


@bp.post("/<schedule_id>/trigger")
@requires("queues:admin")
def trigger(queue: str, schedule_id: str) -> Any:
    """One job of the schedule now: 201 with its id."""
    job_id = services().queue(queue).trigger_schedule(schedule_id)
    return {"queue": queue, "schedule_id": schedule_id, "job_id": job_id}, 201
