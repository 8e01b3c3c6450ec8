"""Workers: the live worker processes, from the workers registry (relayq.worker_registry)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from ..worker_registry import list_workers
from .security import requires
from .services import services

bp = Blueprint("workers", __name__, url_prefix="/api")


@bp.get("/workers")
@requires("jobs:read")
def list_all() -> Any:
    return {"workers": list_workers(services().redis)}
