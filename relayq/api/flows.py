"""Flows (docs/workflows.md): `POST /api/flows` makes a whole graph of jobs in one call, all or
nothing on validation (relayq/flows.py): 201 {"jobs": [{"ref", "id", "state"}]} in the order
given; a cycle, an unknown ref, a bad job or more than MAX_FLOW_JOBS jobs: 400 naming the ref,
nothing written."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from .. import flows
from ..metrics import record_enqueued
from .body import json_body
from .security import requires
from .services import services

bp = Blueprint("flows", __name__, url_prefix="/api")


@bp.post("/flows")
@requires("jobs:write")
def create_flow() -> Any:
    items = json_body(("jobs",), ("jobs",))["jobs"]
    svc = services()
    driver = svc.queue("flows")  # only drives the calls: each job names its own queue
    made = driver._drive(flows.create(items, svc.config.max_payload_bytes))
    for job in made:
        record_enqueued(job["id"].rpartition(".")[0], 1)
    return {"jobs": made}, 201
