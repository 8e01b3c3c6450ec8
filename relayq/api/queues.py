"""Queues: list with stats, one queue's stats, pause/resume, the rate limit, and the settings
of `Queue.configure` (defaults of new jobs, retention, the event log's length, the fair-queue
limits)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from ..limits import FRACTIONAL_SETTINGS, SETTING_DEFAULTS
from .body import json_body, optional
from .security import requires
from .services import services

bp = Blueprint("queues", __name__, url_prefix="/api")


@bp.get("/queues")
@requires("jobs:read")
def list_all() -> Any:
    return {"queues": services().all_stats()}


@bp.get("/queues/<queue>")
@requires("jobs:read")
def stats(queue: str) -> Any:
    return services().queue(queue).stats().to_dict()


@bp.post("/queues/<queue>/pause")
@requires("queues:admin")
def pause(queue: str) -> Any:
    services().queue(queue).pause()
    return {"queue": queue, "paused": True}


@bp.post("/queues/<queue>/resume")
@requires("queues:admin")
def resume(queue: str) -> Any:
    services().queue(queue).resume()
    return {"queue": queue, "paused": False}


@bp.put("/queues/<queue>/rate-limit")
@requires("queues:admin")
def set_rate_limit(queue: str) -> Any:
    q = services().queue(queue)
    body = json_body(("rate", "burst"), ("rate",))
    q.set_rate_limit(optional(body, "rate", (int, float)), optional(body, "burst", int))
    return {"queue": queue, "rate_limit": q.stats().rate_limit}


@bp.delete("/queues/<queue>/rate-limit")
@requires("queues:admin")
def clear_rate_limit(queue: str) -> Any:
    services().queue(queue).clear_rate_limit()
    return {"queue": queue, "rate_limit": None}


@bp.get("/queues/<queue>/settings")
@requires("jobs:read")
def settings(queue: str) -> Any:
    return {"queue": queue, "settings": services().queue(queue).settings()}


@bp.patch("/queues/<queue>/settings")
@requires("queues:admin")
def configure(queue: str) -> Any:
    """Changes the settings given (at least one), all or none: the script checks each range."""
    q = services().queue(queue)
    body = json_body(SETTING_DEFAULTS)
    q.configure(**{name: optional(body, name, (int, float) if name in FRACTIONAL_SETTINGS else int)
                   for name in body})
    return {"queue": queue, "settings": q.settings()}
