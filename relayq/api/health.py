"""Liveness and readiness, public: /healthz answers while the process serves requests (with
how many long polls and event streams it holds); /readyz also needs Redis reachable with every
script loaded, else 503."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from .. import scripts
from .security import public
from .services import services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@public
def healthz() -> Any:
    s = services()
    return {"status": "ok", "long_polls": s.wake_hub.waiting,
            "event_streams": s.event_hub.clients}


@bp.get("/readyz")
@public
def readyz() -> Any:
    scripts.load_all(services().redis)  # RedisUnavailable -> 503
    return {"status": "ready"}
