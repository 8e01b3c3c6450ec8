"""What operators and their tools poll, public: /healthz answers while the process serves
requests (with how many long polls and event streams it holds); /readyz also needs Redis
reachable with every script loaded, else 503; /metrics is the Prometheus exposition
(relayq.metrics: this process's counters and every queue's state read from Redis now)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from .. import scripts
from ..metrics import render_server_metrics
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


@bp.get("/metrics")
@public
def metrics() -> Response:
    s = services()
    body, content_type = render_server_metrics(s.redis, request.headers.get("Accept"),
                                               s.queue_names())
    return Response(body, content_type=content_type)
